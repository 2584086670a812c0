package dsn

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var jst = time.FixedZone("JST", 9*3600)

// at is the fixed clock of the golden files: 2025-01-06 09:MM:SS JST.
func at(min, sec int) time.Time { return time.Date(2025, 1, 6, 9, min, sec, 0, jst) }

const iso2022Header = "Received: from lg.example.jp (lg.example.jp [192.0.2.7])\r\n" +
	"\tby gw.city.example.lg.jp with ESMTP id 01J9\r\n" +
	"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@city.example.lg.jp>\r\n" +
	"To: taro@example.jp\r\n" +
	"Subject: =?ISO-2022-JP?B?GyRCMnE1RCROJCpDTiRpJDsbKEI=?=\r\n" +
	"Message-ID: <orig-1@city.example.lg.jp>\r\n" +
	"\r\n" +
	"body that must not appear\r\n"

// goldenCases are the notifications kept in testdata/NAME.golden.
var goldenCases = []struct {
	name string
	p    Params
}{
	{"failed", Params{
		ReportingMTA: "gw.city.example.lg.jp",
		To:           "yamada@city.example.lg.jp",
		OrigEnvID:    "QQ314159",
		ArrivalDate:  at(0, 0),
		Recipients: []Recipient{{
			Final:          "taro@example.jp",
			Original:       "rfc822;taro@example.jp",
			Action:         Failed,
			Status:         "5.1.1",
			RemoteMTA:      "mx.example.jp",
			DiagnosticCode: "smtp; 550 5.1.1 <taro@example.jp>: Recipient address rejected: User unknown in local recipient table",
			LastAttempt:    at(0, 1),
		}},
		OriginalHeader: []byte(iso2022Header),
		MessageID:      "<dsn-1@gw.city.example.lg.jp>",
		Date:           at(0, 2),
	}},
	{"delayed", Params{
		ReportingMTA: "gw.city.example.lg.jp",
		To:           "john doe@city.example.lg.jp",
		ArrivalDate:  at(0, 0),
		Recipients: []Recipient{{
			Final:          "hanako@lg.example.jp",
			Action:         Delayed,
			Status:         "4.4.1",
			DiagnosticCode: "connect to 192.0.2.25:25: connection refused",
			LastAttempt:    at(30, 0),
			WillRetryUntil: time.Date(2025, 1, 7, 9, 0, 0, 0, jst),
		}},
		OriginalHeader: []byte("From: \"john doe\"@city.example.lg.jp\nSubject: plain ascii\n"),
		MessageID:      "dsn-2@gw.city.example.lg.jp",
		Date:           at(30, 5),
	}},
	{"mixed_utf8", Params{
		ReportingMTA: "gw.city.example.lg.jp",
		From:         "postmaster@gw.city.example.lg.jp",
		To:           "sender@city.example.lg.jp",
		ArrivalDate:  at(0, 0),
		Recipients: []Recipient{
			{
				Final:          "ユーザー@例え.jp",
				Original:       "utf-8;ユーザー@例え.jp",
				Action:         Failed,
				Status:         "5.6.7",
				RemoteMTA:      "dns; mx.xn--r8jz45g.jp",
				DiagnosticCode: "smtp; 553 5.6.7 SMTPUTF8 required\nsecond line: 受け付けできません",
			},
			{
				Final:          "ok+tag@example.jp",
				Action:         Delayed,
				Status:         "4.2.2",
				RemoteMTA:      "mx.example.jp",
				DiagnosticCode: "452 4.2.2 mailbox full",
			},
		},
		// Raw Shift_JIS in a header: not allowed, but seen in the wild.
		OriginalHeader: []byte("Subject: \x82\xa0\x82\xa2\r\nX-Long: " + strings.Repeat("a", 1200) + "\r\n\r\n"),
		MessageID:      "<dsn-3@gw.city.example.lg.jp>",
		Date:           at(5, 0),
	}},
	{"relayed", Params{
		ReportingMTA: "gw.city.example.lg.jp",
		To:           "yamada@city.example.lg.jp",
		OrigEnvID:    "env-7",
		Recipients: []Recipient{{
			Final:          "sato@partner.example.jp",
			Original:       "rfc822;sato@partner.example.jp",
			Action:         Relayed,
			Status:         "2.0.0",
			RemoteMTA:      "192.0.2.25",
			DiagnosticCode: "smtp; 250 2.0.0 queued as 4711",
			LastAttempt:    at(0, 1),
		}},
		OriginalHeader: []byte("From: yamada@city.example.lg.jp\r\nSubject: receipt please\r\n\r\n"),
		MessageID:      "<dsn-5@gw.city.example.lg.jp>",
		Date:           at(0, 2),
	}},
	{"no_header", Params{
		ReportingMTA: "gw.city.example.lg.jp",
		To:           "yamada@city.example.lg.jp",
		Recipients: []Recipient{{
			Final:  "x@example.jp",
			Action: Failed,
			Status: "5.4.7",
		}},
		MessageID: "<dsn-4@gw.city.example.lg.jp>",
		Date:      at(0, 0),
	}},
}

func TestBuildGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Build(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", path, got)
			}
			// The same Params give the same bytes.
			again, _ := Build(tc.p)
			if !bytes.Equal(got, again) {
				t.Error("Build is not deterministic with a fixed Date and MessageID")
			}
		})
	}
}

// report is a notification parsed back with go-message.
type report struct {
	header     mail.Header
	reportType string
	text       string
	perMessage map[string]string
	perRcpt    []map[string]string
	headers    string // decoded text/rfc822-headers, "" when absent
	partTypes  []string
}

func parseReport(t testing.TB, raw []byte) report {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v\n%s", err, raw)
	}
	var r report
	r.header = mail.Header{Header: e.Header}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" {
		t.Fatalf("Content-Type %q, %v", mt, err)
	}
	r.reportType = params["report-type"]
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v\n%s", err, raw)
		}
		pt, _, _ := p.Header.ContentType()
		r.partTypes = append(r.partTypes, pt)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("reading %s: %v", pt, err)
		}
		switch pt {
		case "text/plain":
			r.text = string(body)
		case "message/delivery-status":
			blocks := parseStatusBlocks(t, string(body))
			r.perMessage, r.perRcpt = blocks[0], blocks[1:]
		case "text/rfc822-headers":
			r.headers = string(body)
		}
	}
	return r
}

// parseStatusBlocks splits a delivery-status body into field blocks and
// unfolds each field. Names are lower-cased.
func parseStatusBlocks(t testing.TB, body string) []map[string]string {
	t.Helper()
	var blocks []map[string]string
	for _, block := range strings.Split(strings.TrimRight(body, "\r\n"), "\r\n\r\n") {
		fields := map[string]string{}
		last := ""
		for _, line := range strings.Split(block, "\r\n") {
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				fields[last] += line
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("delivery-status line %q has no colon", line)
			}
			for i := 0; i < len(line); i++ {
				if line[i] >= 0x80 {
					t.Fatalf("delivery-status line %q is not US-ASCII", line)
				}
			}
			last = strings.ToLower(name)
			fields[last] = strings.TrimSpace(value)
		}
		blocks = append(blocks, fields)
	}
	return blocks
}

func TestBuildParsesBack(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := Build(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range raw {
				if c >= 0x80 {
					t.Fatalf("8-bit byte at offset %d: the notification must be 7-bit", i)
				}
			}
			r := parseReport(t, raw)
			if r.reportType != "delivery-status" {
				t.Errorf("report-type = %q", r.reportType)
			}
			wantParts := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
			if len(tc.p.OriginalHeader) == 0 {
				wantParts = wantParts[:2]
			}
			if fmt.Sprint(r.partTypes) != fmt.Sprint(wantParts) {
				t.Errorf("parts = %v, want %v", r.partTypes, wantParts)
			}
			if got := r.header.Get("Auto-Submitted"); got != "auto-replied" {
				t.Errorf("Auto-Submitted = %q", got)
			}
			to, err := r.header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != tc.p.To {
				t.Errorf("To = %v, %v; want %q", to, err, tc.p.To)
			}
			subject, _ := r.header.Subject()
			if !strings.Contains(subject, "のお知らせ / ") {
				t.Errorf("Subject %q lacks the Japanese and English text", subject)
			}
			if r.perMessage["reporting-mta"] != "dns; "+tc.p.ReportingMTA {
				t.Errorf("Reporting-MTA = %q", r.perMessage["reporting-mta"])
			}
			if len(r.perRcpt) != len(tc.p.Recipients) {
				t.Fatalf("%d recipient blocks, want %d", len(r.perRcpt), len(tc.p.Recipients))
			}
			for i, want := range tc.p.Recipients {
				got := r.perRcpt[i]
				if got["action"] != string(want.Action) || got["status"] != want.Status {
					t.Errorf("recipient %d: Action %q Status %q, want %q %q", i, got["action"], got["status"], want.Action, want.Status)
				}
				if got["final-recipient"] != addressField(want.Final) {
					t.Errorf("recipient %d: Final-Recipient %q", i, got["final-recipient"])
				}
				// Folding must unfold to the same value.
				if wantDiag := typedValue(want.DiagnosticCode, diagnosticType(want.DiagnosticCode)); got["diagnostic-code"] != wantDiag {
					t.Errorf("recipient %d: Diagnostic-Code %q, want %q", i, got["diagnostic-code"], wantDiag)
				}
				if !strings.Contains(r.text, "<"+sanitizeText(wireAddress(want.Final))+">") {
					t.Errorf("recipient %s missing from the text part", want.Final)
				}
			}
			for _, s := range []string{"お送りいただいたメール", "This is the mail system at host " + tc.p.ReportingMTA} {
				if !strings.Contains(r.text, s) {
					t.Errorf("text part lacks %q", s)
				}
			}
			if len(tc.p.OriginalHeader) > 0 {
				wantHdr, _ := originalHeader(tc.p.OriginalHeader)
				if qp := strings.Contains(string(raw), "Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: quoted-printable"); qp {
					wantHdr = normalizedHeader(tc.p.OriginalHeader)
				}
				if r.headers != string(wantHdr) {
					t.Errorf("rfc822-headers part = %q, want %q", r.headers, wantHdr)
				}
				if strings.Contains(r.headers, "body that must not appear") {
					t.Error("the original body leaked into the headers part")
				}
			}
		})
	}
}

// normalizedHeader is the header with CRLF line ends, before any transfer
// encoding: what a reader sees after decoding quoted-printable.
func normalizedHeader(raw []byte) []byte {
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	s, _, _ = strings.Cut(s, "\n\n")
	return []byte(strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\r\n") + "\r\n")
}

func TestBuildText(t *testing.T) {
	raw, err := Build(goldenCases[0].p)
	if err != nil {
		t.Fatal(err)
	}
	r := parseReport(t, raw)
	for _, want := range []string{
		"件名: 会議のお知らせ", // ISO-2022-JP subject decoded
		"理由: 宛先のメールアドレスが存在しません (5.1.1)",
		"Reason: the recipient's mailbox does not exist (5.1.1)",
		"Remote server: mx.example.jp",
		"相手サーバーの応答: 550 5.1.1 <taro@example.jp>",
		"Received: 2025-01-06 09:00:00 +0900",
	} {
		if !strings.Contains(r.text, want) {
			t.Errorf("text lacks %q:\n%s", want, r.text)
		}
	}
	if got := r.perMessage["original-envelope-id"]; got != "QQ314159" {
		t.Errorf("Original-Envelope-Id = %q", got)
	}
	if got := r.perRcpt[0]["original-recipient"]; got != "rfc822; taro@example.jp" {
		t.Errorf("Original-Recipient = %q", got)
	}

	mixed, err := Build(goldenCases[2].p)
	if err != nil {
		t.Fatal(err)
	}
	m := parseReport(t, mixed)
	if got, want := m.perRcpt[0]["final-recipient"], `utf-8; \x{30E6}\x{30FC}\x{30B6}\x{30FC}@\x{4F8B}\x{3048}.jp`; got != want {
		t.Errorf("UTF-8 Final-Recipient = %q, want %q", got, want)
	}
	if got := m.perRcpt[1]["final-recipient"]; got != "rfc822; ok+tag@example.jp" {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := m.perRcpt[0]["diagnostic-code"]; got != "smtp; 553 5.6.7 SMTPUTF8 required second line: ?????????" {
		t.Errorf("sanitized Diagnostic-Code = %q", got)
	}
	if !strings.Contains(m.text, "second line: 受け付けできません") {
		t.Error("the UTF-8 remote reply should stay readable in the text part")
	}
	if !strings.Contains(m.text, "残りの宛先への配送は遅れています") {
		t.Error("mixed failed/delayed wording missing")
	}
	if got, _ := m.header.Subject(); !strings.HasPrefix(got, "配送不能のお知らせ") {
		t.Errorf("Subject %q: any failed recipient makes it a failure notice", got)
	}
	if f := m.header.Get("From"); f != "Mail Delivery System <postmaster@gw.city.example.lg.jp>" {
		t.Errorf("From = %q", f)
	}

	delayed, _ := Build(goldenCases[1].p)
	d := parseReport(t, delayed)
	if got := d.perRcpt[0]["will-retry-until"]; got != "Tue, 07 Jan 2025 09:00:00 +0900" {
		t.Errorf("Will-Retry-Until = %q", got)
	}
	if got := d.perRcpt[0]["diagnostic-code"]; got != "x-sekisho; connect to 192.0.2.25:25: connection refused" {
		t.Errorf("local Diagnostic-Code = %q: a text without a reply code is ours, not smtp", got)
	}
	if !strings.Contains(d.text, "  詳細: connect to 192.0.2.25:25") || !strings.Contains(d.text, "  Details: connect to") || strings.Contains(d.text, "Remote reply") {
		t.Errorf("a local failure must not be shown as a remote reply:\n%s", d.text)
	}
	if got := d.header.Get("To"); got != `<"john doe"@city.example.lg.jp>` {
		t.Errorf("To = %q: the local part must be re-quoted", got)
	}
	if got, _ := d.header.Subject(); !strings.HasPrefix(got, "配送遅延のお知らせ") {
		t.Errorf("Subject = %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	ok := func() Params {
		return Params{
			ReportingMTA: "gw.example.jp",
			To:           "a@example.jp",
			Recipients:   []Recipient{{Final: "b@example.jp", Action: Failed, Status: "5.1.1"}},
		}
	}
	tests := []struct {
		name   string
		change func(*Params)
		want   string
	}{
		{"null sender", func(p *Params) { p.To = "" }, "never sent to the null sender"},
		{"angle null sender", func(p *Params) { p.To = "<>" }, "never sent to the null sender"},
		{"sender without domain", func(p *Params) { p.To = "postmaster" }, `To: "postmaster" is not of the form`},
		{"CR in sender", func(p *Params) { p.To = "a\r@example.jp" }, "control character 0x0d"},
		{"no recipients", func(p *Params) { p.Recipients = nil }, "Recipients: none"},
		{"bad action", func(p *Params) { p.Recipients[0].Action = "bounced" }, `Recipients[0].Action "bounced"`},
		{"bad status", func(p *Params) { p.Recipients[0].Status = "550" }, `Recipients[0].Status: "550" is not an enhanced status code`},
		{"success status on failure", func(p *Params) { p.Recipients[0].Status = "2.0.0" }, "cannot report a failure"},
		{"bad final", func(p *Params) { p.Recipients[0].Final = "nobody" }, `Recipients[0].Final: "nobody"`},
		{"bad host", func(p *Params) { p.ReportingMTA = "gw example" }, `ReportingMTA: "gw example" is not a host name`},
		{"empty host", func(p *Params) { p.ReportingMTA = "" }, "ReportingMTA: empty host name"},
		{"bad message id", func(p *Params) { p.MessageID = "<no-at-sign>" }, "MessageID"},
		{"bad from", func(p *Params) { p.From = "daemon" }, "From:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok()
			tc.change(&p)
			_, err := Build(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Build(ok()); err != nil {
		t.Fatalf("valid params: %v", err)
	}
}

func TestBuildGeneratesMessageIDAndDate(t *testing.T) {
	p := goldenCases[3].p
	p.MessageID, p.Date = "", time.Time{}
	a, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Build(p)
	ra, rb := parseReport(t, a), parseReport(t, b)
	ida, rb2 := ra.header.Get("Message-Id"), rb.header.Get("Message-Id")
	if !strings.HasSuffix(ida, "@gw.city.example.lg.jp>") || ida == rb2 {
		t.Errorf("generated Message-IDs %q and %q: want unique ids at the reporting host", ida, rb2)
	}
	if d, err := ra.header.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %v, %v; want now", d, err)
	}
}

func TestBoundaryAvoidsCollision(t *testing.T) {
	p := goldenCases[3].p
	msgID, _ := messageID(p.MessageID, p.ReportingMTA, p.Date)
	first := pickBoundary(msgID)
	p.OriginalHeader = []byte("X-Trap: x\r\n--" + first + "--\r\n")
	raw, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `boundary="`+first+`"`) {
		t.Fatal("the boundary found in the original header was still used")
	}
	r := parseReport(t, raw)
	if len(r.partTypes) != 3 || !strings.Contains(r.headers, "--"+first+"--") {
		t.Errorf("parts %v, headers %q", r.partTypes, r.headers)
	}
}

func TestShouldBounce(t *testing.T) {
	tests := []struct {
		name   string
		from   string
		header string
		want   bool
	}{
		{"ordinary", "taro@example.jp", "Subject: hi\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n", true},
		{"no content type", "taro@example.jp", "Subject: hi\r\n", true},
		{"null sender", "", "Subject: hi\r\n", false},
		{"angle null sender", "<>", "Subject: hi\r\n", false},
		{"dsn", "taro@example.jp", "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=x\r\n", false},
		{"mdn folded", "taro@example.jp", "Subject: x\nContent-Type:\n\tMultipart/Report; report-type=disposition-notification\n", false},
		{"broken params", "taro@example.jp", "content-type: multipart/report; ;;==\r\n", false},
		{"bare delivery-status", "taro@example.jp", "Content-Type: message/delivery-status\r\n", false},
		{"report in body only", "taro@example.jp", "Subject: x\r\n\r\nContent-Type: multipart/report\r\n", true},
		{"x- prefixed field", "taro@example.jp", "X-Content-Type: multipart/report\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShouldBounce(tc.from, []byte(tc.header)); got != tc.want {
				t.Errorf("ShouldBounce(%q, %q) = %v, want %v", tc.from, tc.header, got, tc.want)
			}
		})
	}
	// A notification we built is never bounced, even with a non-null sender.
	raw, _ := Build(goldenCases[0].p)
	if ShouldBounce("someone@example.jp", raw) {
		t.Error("our own notification would be bounced")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("a@example.jp", "b@example.jp", "rfc822;b@example.jp", "smtp; 550 5.1.1 no", "mx.example.jp", "ENV", []byte(iso2022Header), "5.1.1", true)
	f.Add("john doe@例え.jp", "x\"y@z", "utf-8;ü@x", "4\n5\r\x00\xff", "dns;", "\x7f", []byte("\xff\xfe\r\r\n\n"), "4.4.7", false)
	f.Add("a@b", "c@d", ";", ";;", ";x", "", []byte("--=_sekisho_dsn_\r\n"), "5.999.999", true)
	f.Fuzz(func(t *testing.T, to, final, orig, diag, remote, envid string, header []byte, status string, failed bool) {
		action := Delayed
		if failed {
			action = Failed
		}
		p := Params{
			ReportingMTA:   "gw.example.jp",
			To:             to,
			OrigEnvID:      envid,
			ArrivalDate:    at(0, 0),
			Recipients:     []Recipient{{Final: final, Original: orig, Action: action, Status: status, RemoteMTA: remote, DiagnosticCode: diag, LastAttempt: at(1, 0)}, {Final: "second@example.jp", Action: Failed, Status: "5.0.0", DiagnosticCode: diag}},
			OriginalHeader: header,
			MessageID:      "<fuzz@gw.example.jp>",
			Date:           at(2, 0),
		}
		raw, err := Build(p)
		if err != nil {
			return
		}
		// Only a UTF-8 sender address (RFC 6532, in the To field) makes
		// the notification 8-bit.
		for i, c := range raw {
			if c >= 0x80 && isASCII(to) {
				t.Fatalf("8-bit byte at %d", i)
			}
		}
		r := parseReport(t, raw)
		if r.reportType != "delivery-status" || len(r.perRcpt) != 2 {
			t.Fatalf("report-type %q, %d recipient blocks", r.reportType, len(r.perRcpt))
		}
		if r.perRcpt[0]["status"] != status || r.perRcpt[1]["final-recipient"] != "rfc822; second@example.jp" {
			t.Fatalf("recipient fields %v", r.perRcpt)
		}
		if ShouldBounce("x@example.jp", raw) {
			t.Fatal("a built notification must not be bounceable")
		}
	})
}

func FuzzShouldBounce(f *testing.F) {
	f.Add("a@b", []byte("Content-Type: multipart/report\r\n"))
	f.Add("", []byte("Subject: x\r\n"))
	f.Add("a@b", []byte("Content-Type:\r\n \"\r\n\r\n"))
	f.Fuzz(func(t *testing.T, from string, header []byte) {
		got := ShouldBounce(from, header)
		if strings.TrimSpace(from) == "" && got {
			t.Fatal("null sender bounced")
		}
	})
}

// Notifications are 7-bit unless the sender's address is UTF-8: queuing
// them as 8BITMIME made a next hop without 8BITMIME refuse them for good.
func TestBodyType(t *testing.T) {
	for _, tc := range goldenCases {
		raw, err := Build(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		want := "7BIT"
		if !isASCII(tc.p.To) {
			want = "8BITMIME"
		}
		if got := BodyType(raw); got != want {
			t.Errorf("%s: BodyType = %s, want %s", tc.name, got, want)
		}
	}
}

// A copy for the postmaster may carry the whole original message: a
// message/rfc822 part with the body, 8-bit when the message is.
func TestBuildWholeMessage(t *testing.T) {
	p := goldenCases[0].p
	p.OriginalMessage = []byte("From: a@example.jp\nSubject: whole\n\n本文です\n")
	raw, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	r := parseReport(t, raw)
	if fmt.Sprint(r.partTypes) != "[text/plain message/delivery-status message/rfc822]" {
		t.Errorf("parts %v", r.partTypes)
	}
	if !bytes.Contains(raw, []byte("Subject: whole\r\n\r\n本文です\r\n")) || !bytes.Contains(raw, []byte("Content-Transfer-Encoding: 8bit")) {
		t.Errorf("the original message is not attached whole, with CRLF and 8bit:\n%s", raw)
	}
	if BodyType(raw) != "8BITMIME" {
		t.Errorf("BodyType = %s, want 8BITMIME", BodyType(raw))
	}
	if !strings.Contains(r.text, "The original message\nis attached.") && !strings.Contains(r.text, "The original message\r\nis attached.") {
		t.Errorf("text part does not say the message is attached:\n%s", r.text)
	}
}
