package gateway

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/routing/dnstest"
)

// subjectMilter acts on the Subject: "discard", "quarantine", "reject",
// "tempfail"; anything else is tagged and accepted. It records the Subject
// it saw, to show milters get the header as received.
type subjectMilter struct {
	gomilter.NoOpMilter
	subject string
	seen    chan<- string
}

func (m *subjectMilter) Header(name, value string, _ *gomilter.Modifier) (gomilter.Response, error) {
	if strings.EqualFold(name, "Subject") {
		m.subject = value
	}
	if strings.EqualFold(name, "To") {
		m.seen <- value
	}
	return gomilter.RespContinue, nil
}

func (m *subjectMilter) Body(mod *gomilter.Modifier) (gomilter.Response, error) {
	switch m.subject {
	case "discard":
		return gomilter.RespDiscard, nil
	case "reject":
		return gomilter.RespReject, nil
	case "tempfail":
		return gomilter.RespTempFail, nil
	case "quarantine":
		mod.Quarantine("looks odd")
	}
	mod.AddHeader("X-Scanned", "yes")
	return gomilter.RespAccept, nil
}

func startSubjectMilter(t *testing.T) (addr string, seen <-chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 16)
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return &subjectMilter{seen: ch} },
		Actions: gomilter.OptAddHeader | gomilter.OptQuarantine}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "inet:" + l.Addr().String(), ch
}

// The verdicts in the live session: reject and tempfail answer the
// client, discard answers 250 and queues nothing, quarantine queues the
// message held, accept queues it with the milter's header edit; the
// milter sees the header as received, the queue gets it rewritten.
func TestSessionInspectionVerdicts(t *testing.T) {
	addr, seen := startSubjectMilter(t)
	sec, dir := testSections(t)
	sec.Relay.Inspect.Milters = []milter.Config{{Name: "subject", Address: addr}}
	e := startEngine(t, sec)
	send := func(subject string, code int) string {
		d := dial(t, "127.0.0.1", e.Addrs()[0].String())
		d.do("EHLO client.example", 250)
		d.do("MAIL FROM:<someone@example.com>", 250)
		d.do("RCPT TO:<Tanaka@City.Toyokawa.LG.JP>", 250)
		d.do("DATA", 354)
		d.raw("From: someone@example.com\r\nTo: Tanaka@City.Toyokawa.LG.JP\r\nSubject: " + subject + "\r\n\r\nhello\r\n.\r\n")
		msg := d.expect(code)
		d.do("QUIT", 221)
		return msg
	}
	for _, tc := range []struct {
		subject string
		code    int
		reply   string
	}{
		{"reject", 550, "5.7.1"},
		{"tempfail", 451, "4.7.1"},
		{"discard", 250, "2.0.0 OK"},
		{"quarantine", 250, "queued as"},
	} {
		if msg := send(tc.subject, tc.code); !strings.Contains(msg, tc.reply) {
			t.Errorf("%s: reply %q, want %q", tc.subject, msg, tc.reply)
		}
		if got := <-seen; got != "Tanaka@City.Toyokawa.LG.JP" {
			t.Errorf("%s: the milter saw To %q, want it as received", tc.subject, got)
		}
	}
	if st := e.queue.Stats(); st.Messages != 1 || st.Held != 1 {
		t.Errorf("queue after reject, tempfail, discard, quarantine: %+v, want only the quarantined message, held", st)
	}
	send("clean", 250)
	<-seen
	files := waitFiles(t, filepath.Join(dir, "inner"), 1)
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Subject: clean\r\nX-Scanned: yes\r\n\r\nhello\r\n") {
		t.Errorf("delivered message lacks the milter's header:\n%s", b)
	}
	time.Sleep(100 * time.Millisecond) // the held message must stay: give the runner a chance to go wrong
	if n, _ := filepath.Glob(filepath.Join(dir, "inner", "*.eml")); len(n) != 1 {
		t.Errorf("%d messages delivered, want 1 (the quarantined one is held)", len(n))
	}
}

// A milter that cannot be reached: 451 under on_failure: tempfail and
// nothing queued.
func TestSessionInspectionDeadMilter(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "inet:" + l.Addr().String()
	l.Close()
	sec, _ := testSections(t)
	sec.Relay.Inspect.Milters = []milter.Config{{Name: "dead", Address: dead, ConnectTimeout: time.Second}}
	e := startEngine(t, sec)
	d := dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("EHLO client.example", 250)
	d.do("MAIL FROM:<someone@example.com>", 250)
	d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)
	d.do("DATA", 354)
	d.raw("Subject: x\r\n\r\nhello\r\n.\r\n")
	if msg := d.expect(451); !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("reply %q", msg)
	}
	if st := e.queue.Stats(); st.Messages != 0 {
		t.Errorf("queued %d messages", st.Messages)
	}
}

// The connect checks answer at the greeting: a client on a block list
// gets 554, one without reverse DNS 554 5.7.25 under reverse_dns: ptr.
func TestSessionInspectionConnect(t *testing.T) {
	d := dnstest.New(t)
	d.Add("1.2.0.192.bl.example. IN A 127.0.0.2", "2.2.0.192.in-addr.arpa. IN PTR mx.example.org.")
	for _, tc := range []struct {
		ip, reverse, want, rule string
	}{
		{"192.0.2.1", msgauth.ReverseOff, "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.example", "listed=bl.example"},
		{"192.0.2.3", msgauth.ReversePTR, "554 5.7.25 ", "rule=builtin:inspect"},
		{"192.0.2.2", msgauth.ReversePTR, "220 ", ""},
	} {
		sec, _ := testSections(t)
		sec.Relay.Inspect.Auth.Blocklists = []string{"bl.example"}
		sec.Relay.Inspect.Auth.DNSServers = []string{d.Addr}
		sec.Relay.Inspect.Auth.ReverseDNS = tc.reverse
		var logs, out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		if err := Session(sec, netip.MustParseAddr(tc.ip), "mx", strings.NewReader("QUIT\r\n"), &out, log); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), tc.want) {
			t.Errorf("%s: %q, want %q", tc.ip, out.String(), tc.want)
		}
		if tc.rule != "" && !logHas(logs.String(), "msg=refused", "stage=connect", tc.rule) {
			t.Errorf("%s: refusal not logged:\n%s", tc.ip, logs.String())
		}
	}
}

// envelopeMilter records the recipients, the first header field and the
// macros it is given.
type envelopeMilter struct {
	gomilter.NoOpMilter
	client string
	first  string
	rcpts  []string
	seen   chan<- []string
}

func (m *envelopeMilter) Connect(host, family string, port uint16, addr net.IP, mod *gomilter.Modifier) (gomilter.Response, error) {
	m.client = "{client_addr}=" + mod.Macros["{client_addr}"]
	return gomilter.RespContinue, nil
}

func (m *envelopeMilter) RcptTo(rcpt string, mod *gomilter.Modifier) (gomilter.Response, error) {
	m.rcpts = append(m.rcpts, rcpt+" {rcpt_addr}="+mod.Macros["{rcpt_addr}"])
	return gomilter.RespContinue, nil
}

func (m *envelopeMilter) Header(name, value string, _ *gomilter.Modifier) (gomilter.Response, error) {
	if m.first == "" {
		m.first = name + ": " + value
	}
	return gomilter.RespContinue, nil
}

func (m *envelopeMilter) Body(mod *gomilter.Modifier) (gomilter.Response, error) {
	m.seen <- append(m.rcpts, m.first, m.client)
	mod.InsertHeader(1, "X-After-Received", "yes")
	return gomilter.RespAccept, nil
}

// Milters get the recipients as the client gave them at RCPT (an alias,
// not its target), our Received field first, Postfix's macros; their
// edits count our Received field. A milter failure says what became of
// the message.
func TestSessionMilterSeesTheTransactionAsGiven(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []string, 4)
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return &envelopeMilter{seen: ch} },
		Actions: gomilter.OptAddHeader | gomilter.OptChangeHeader}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := "inet:" + dead.Addr().String()
	dead.Close()

	sec, dir := testSections(t)
	sec.Accounts.Aliases = append(sec.Accounts.Aliases, accounts.AliasConfig{Alias: "info@city.toyokawa.lg.jp", Target: "tanaka@city.toyokawa.lg.jp"})
	sec.Relay.Inspect.Milters = []milter.Config{
		{Name: "gone", Address: deadAddr, OnFailure: milter.OnFailureAccept},
		{Name: "envelope", Address: "inet:" + l.Addr().String()},
	}
	var logs lockedBuffer
	e := startEngineWith(t, sec, slog.New(slog.NewTextHandler(&logs, nil)), ops.NewMetrics())
	d := dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("EHLO client.example", 250)
	d.do("MAIL FROM:<someone@example.com>", 250)
	d.do("RCPT TO:<info@city.toyokawa.lg.jp>", 250)
	d.do("DATA", 354)
	d.raw("From: someone@example.com\r\nSubject: x\r\n\r\nhello\r\n.\r\n")
	d.expect(250)
	got := <-ch
	want := []string{"info@city.toyokawa.lg.jp {rcpt_addr}=info@city.toyokawa.lg.jp"}
	if len(got) != 3 || got[0] != want[0] || !strings.HasPrefix(got[1], "Received: from client.example ([127.0.0.1])") ||
		!strings.Contains(got[1], "by gw.test (sekisho)") || got[2] != "{client_addr}=127.0.0.1" {
		t.Errorf("the milter saw %q", got)
	}
	files := waitFiles(t, filepath.Join(dir, "inner"), 1)
	b, _ := os.ReadFile(files[0])
	if !regexp.MustCompile(`(?m)^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby gw\.test \(sekisho\)[^\n]*\n(\t[^\n]*\n)*X-After-Received: yes\r\nFrom: someone@example\.com\r\n`).Match(b) {
		t.Errorf("the milter's insert at 1 is not right after our Received field:\n%s", b)
	}
	if !logHas(logs.String(), `msg="milter failed; passed over (on_failure: accept)"`, "milter=gone") {
		t.Errorf("no passed-over line:\n%s", logs.String())
	}

	// The same dead milter under on_failure: tempfail: the log says 451.
	sec.Relay.Inspect.Milters = []milter.Config{{Name: "gone", Address: deadAddr}}
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	d = dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("EHLO client.example", 250)
	d.do("MAIL FROM:<someone@example.com>", 250)
	d.do("RCPT TO:<info@city.toyokawa.lg.jp>", 250)
	d.do("DATA", 354)
	d.raw("Subject: x\r\n\r\nhello\r\n.\r\n")
	d.expect(451)
	if !logHas(logs.String(), `msg="milter failed; message deferred with 451 4.7.0 (on_failure: tempfail)"`, "milter=gone") ||
		strings.Count(logs.String(), "passed over") != 1 {
		t.Errorf("the deferral is not logged as such:\n%s", logs.String())
	}
}
