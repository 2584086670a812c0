package milter

import (
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// fakeMilter answers every stage with continue except the one named in
// stage, where it gives resp; at the end of the body it applies mods.
type fakeMilter struct {
	stage string
	resp  gomilter.Response
	mods  func(m *gomilter.Modifier)

	mu   *sync.Mutex
	seen *strings.Builder
}

func (f *fakeMilter) at(stage string) (gomilter.Response, error) {
	if stage == f.stage && f.resp == nil {
		// The milter dies here: the server drops the connection.
		return nil, errors.New("crash at " + stage)
	}
	if stage == f.stage {
		return f.resp, nil
	}
	return gomilter.RespContinue, nil
}

func (f *fakeMilter) log(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen.WriteString(strings.TrimSpace(strings.ReplaceAll(sprintf(format, a...), "\r\n", "|")) + "\n")
}

func (f *fakeMilter) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("connect %s %s %d %s j=%s", host, family, port, addr, m.Macros["j"])
	f.log("macros %s", macroList(m, "{daemon_name}", "v", "_", "{client_addr}", "{client_port}", "{client_name}"))
	return f.at("connect")
}
func (f *fakeMilter) Helo(name string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("helo %s", name)
	f.log("macros %s", macroList(m, "{tls_version}", "{cipher}", "{cipher_bits}"))
	return f.at("helo")
}
func (f *fakeMilter) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("mail %s i=%s auth=%s", from, m.Macros["i"], m.Macros["{auth_authen}"])
	f.log("macros %s", macroList(m, "{mail_addr}", "{auth_type}"))
	return f.at("mail")
}
func (f *fakeMilter) RcptTo(rcpt string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("rcpt %s", rcpt)
	f.log("macros %s", macroList(m, "{rcpt_addr}", "i"))
	return f.at("rcpt")
}
func (f *fakeMilter) Header(name, value string, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("header %s=%q", name, value)
	return f.at("header")
}
func (f *fakeMilter) Headers(h textproto.MIMEHeader, m *gomilter.Modifier) (gomilter.Response, error) {
	return f.at("eoh")
}
func (f *fakeMilter) BodyChunk(chunk []byte, m *gomilter.Modifier) (gomilter.Response, error) {
	f.log("body %q", chunk)
	return f.at("body")
}
func (f *fakeMilter) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	if f.mods != nil {
		f.mods(m)
	}
	return f.at("eom")
}
func (f *fakeMilter) Abort(m *gomilter.Modifier) error { return nil }

// macroList writes the named macros that are set, "name=value" each.
func macroList(m *gomilter.Modifier, names ...string) string {
	var out []string
	for _, n := range names {
		if v, ok := m.Macros[n]; ok {
			out = append(out, n+"="+v)
		}
	}
	return strings.Join(out, " ")
}

// startFake serves f on a loopback port and returns "inet:ADDR".
func startFake(t testing.TB, f fakeMilter) (addr string, seen func() string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mu := &sync.Mutex{}
	b := &strings.Builder{}
	srv := &gomilter.Server{
		NewMilter: func() gomilter.Milter { g := f; g.mu, g.seen = mu, b; return &g },
		Actions:   gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "inet:" + l.Addr().String(), func() string { mu.Lock(); defer mu.Unlock(); return b.String() }
}

func testTxn() Transaction {
	return Transaction{
		ClientIP:   netip.MustParseAddr("192.0.2.7"),
		ClientPort: 40000,
		Helo:       "mx.example.com",
		From:       "alice@example.com",
		Rcpts:      []string{"bob@city.lg.jp", "carol@city.lg.jp"},
		Source:     rewrite.SourceInternet,
		QueueID:    "Q1",
		Header:     []byte("From: alice@example.com\r\nSubject: hello\r\n world\r\n"),
		Body:       bytes.NewReader([]byte("line one\r\nline two\r\n")),
	}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name  string
		fake  fakeMilter
		want  Action
		reply smtpd.Reply
		edits []HeaderEdit
		why   string
	}{
		{name: "continue", fake: fakeMilter{}, want: Accept},
		{name: "accept early", fake: fakeMilter{stage: "helo", resp: gomilter.RespAccept}, want: Accept},
		{name: "reject", fake: fakeMilter{stage: "eom", resp: gomilter.RespReject}, want: Reject, reply: smtpd.R(550, "5.7.1", "Message rejected by content filter")},
		{name: "reject at rcpt", fake: fakeMilter{stage: "rcpt", resp: gomilter.RespReject}, want: Reject, reply: smtpd.R(550, "5.7.1", "Message rejected by content filter")},
		{name: "tempfail", fake: fakeMilter{stage: "body", resp: gomilter.RespTempFail}, want: TempFail, reply: smtpd.R(451, "4.7.1", "Message deferred by content filter, try again later")},
		{name: "discard", fake: fakeMilter{stage: "eom", resp: gomilter.RespDiscard}, want: Discard},
		{name: "own reply", fake: fakeMilter{stage: "eom", resp: gomilter.NewResponseStr('y', "554 5.7.0 Virus found: Eicar")}, want: Reject, reply: smtpd.R(554, "5.7.0", "Virus found: Eicar")},
		{name: "own 4xx without enhanced", fake: fakeMilter{stage: "eom", resp: gomilter.NewResponseStr('y', "452 busy")}, want: TempFail, reply: smtpd.R(452, "4.7.1", "busy")},
		{name: "headers", fake: fakeMilter{mods: func(m *gomilter.Modifier) {
			m.AddHeader("X-Spam", "no")
			m.ChangeHeader(1, "Subject", "[ok] hello")
			m.InsertHeader(0, "X-Top", "1")
		}}, want: Accept, edits: []HeaderEdit{
			{Op: AddHeader, Name: "X-Spam", Value: "no"},
			{Op: ChangeHeader, Name: "Subject", Value: "[ok] hello", Index: 1},
			{Op: InsertHeader, Name: "X-Top", Value: "1"},
		}},
		{name: "quarantine", fake: fakeMilter{mods: func(m *gomilter.Modifier) { m.Quarantine("suspicious") }}, want: Quarantine, why: "suspicious"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startFake(t, tc.fake)
			c := New("gw.city.lg.jp", []Config{{Name: "fake", Address: addr}})
			r := c.Check(context.Background(), testTxn())
			if len(r.Failed) > 0 {
				t.Fatalf("failed: %v", r.Failed)
			}
			if r.Action != tc.want || r.Reply != tc.reply || r.Reason != tc.why {
				t.Errorf("got %v %+v %q, want %v %+v %q", r.Action, r.Reply, r.Reason, tc.want, tc.reply, tc.why)
			}
			if tc.want != Accept && r.Milter != "fake" {
				t.Errorf("Milter = %q", r.Milter)
			}
			if !equalEdits(r.Edits, tc.edits) {
				t.Errorf("edits %+v, want %+v", r.Edits, tc.edits)
			}
		})
	}
}

func equalEdits(a, b []HeaderEdit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The milter sees the whole transaction as given, folded header values
// kept.
func TestMilterSeesTransaction(t *testing.T) {
	addr, seen := startFake(t, fakeMilter{})
	c := New("gw.city.lg.jp", []Config{{Name: "fake", Address: addr}})
	txn := testTxn()
	txn.AuthUser, txn.AuthType = "alice", "PLAIN"
	txn.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
	txn.Trace = "Received: from mx.example.com ([192.0.2.7])\r\n\tby gw.city.lg.jp (sekisho) with ESMTPSA id S.1; Sun, 1 Nov 2026 00:00:00 +0900\r\n"
	// Twice over the same body: the second run must start from the top.
	for range 2 {
		if r := c.Check(context.Background(), txn); r.Action != Accept || len(r.Failed) > 0 {
			t.Fatalf("got %+v", r)
		}
	}
	want := `connect [192.0.2.7] tcp4 40000 192.0.2.7 j=gw.city.lg.jp
macros {daemon_name}=sekisho v=sekisho _=unknown [192.0.2.7] {client_addr}=192.0.2.7 {client_port}=40000 {client_name}=unknown
helo mx.example.com
macros {tls_version}=TLSv1.3 {cipher}=TLS_AES_128_GCM_SHA256 {cipher_bits}=128
mail alice@example.com i=Q1 auth=alice
macros {mail_addr}=alice@example.com {auth_type}=PLAIN
rcpt bob@city.lg.jp
macros {rcpt_addr}=bob@city.lg.jp i=Q1
rcpt carol@city.lg.jp
macros {rcpt_addr}=carol@city.lg.jp i=Q1
header Received="from mx.example.com ([192.0.2.7])\r\n\tby gw.city.lg.jp (sekisho) with ESMTPSA id S.1; Sun, 1 Nov 2026 00:00:00 +0900"
header From="alice@example.com"
header Subject="hello\r\n world"
body "line one\r\nline two\r\n"
`
	if got := seen(); got != want+want {
		t.Errorf("milter saw\n%s\nwant\n%s", got, want+want)
	}
}

func TestChain(t *testing.T) {
	tag, _ := startFake(t, fakeMilter{mods: func(m *gomilter.Modifier) { m.AddHeader("X-First", "1") }})
	tag2, _ := startFake(t, fakeMilter{mods: func(m *gomilter.Modifier) { m.AddHeader("X-Second", "2") }})
	rej, _ := startFake(t, fakeMilter{stage: "eom", resp: gomilter.RespReject})
	both := New("gw", []Config{{Name: "a", Address: tag}, {Name: "b", Address: tag2}}).Check(context.Background(), testTxn())
	if both.Action != Accept || len(both.Edits) != 2 || both.Edits[1].Name != "X-Second" {
		t.Errorf("two accepting milters: %+v", both)
	}
	r := New("gw", []Config{{Name: "a", Address: tag}, {Name: "r", Address: rej}}).Check(context.Background(), testTxn())
	if r.Action != Reject || r.Milter != "r" || len(r.Edits) != 0 {
		t.Errorf("tag then reject: %+v", r)
	}
	// A milter with a size limit is skipped for larger messages.
	r = New("gw", []Config{{Name: "r", Address: rej, MaxMessageBytes: 40}}).Check(context.Background(), testTxn())
	if r.Action != Accept {
		t.Errorf("size-limited milter on a larger message: %+v", r)
	}
	r = New("gw", []Config{{Name: "r", Address: rej, MaxMessageBytes: 1000}}).Check(context.Background(), testTxn())
	if r.Action != Reject {
		t.Errorf("size-limited milter on a smaller message: %+v", r)
	}
	// A milter limited to internet mail does not see inner mail.
	txn := testTxn()
	txn.Source = rewrite.SourceInner
	r = New("gw", []Config{{Name: "a", Address: tag}, {Name: "r", Address: rej, Sources: []string{"internet"}}}).Check(context.Background(), txn)
	if r.Action != Accept || len(r.Edits) != 1 {
		t.Errorf("internet-only milter on inner mail: %+v", r)
	}
}

// A dead or silent milter gives 451 under on_failure: tempfail and is
// passed over under accept, within the configured timeout.
func TestFailurePolicy(t *testing.T) {
	dead := deadAddress(t)
	silent := silentMilter(t)
	crash, _ := startFake(t, fakeMilter{stage: "body"})
	tests := []struct {
		name, addr, policy string
		want               Action
	}{
		{"dead tempfail", dead, OnFailureTempfail, TempFail},
		{"dead accept", dead, OnFailureAccept, Accept},
		{"silent tempfail", silent, OnFailureTempfail, TempFail},
		{"silent accept", silent, OnFailureAccept, Accept},
		{"unix path missing", "unix:/nonexistent/milter.sock", "", TempFail},
		{"dies in the body tempfail", crash, OnFailureTempfail, TempFail},
		{"dies in the body accept", crash, OnFailureAccept, Accept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New("gw", []Config{{Name: "m", Address: tc.addr, Timeout: 200 * time.Millisecond, OnFailure: tc.policy}})
			r := c.Check(context.Background(), testTxn())
			if r.Action != tc.want || len(r.Failed) != 1 || r.Failed[0].Deferred != (tc.want == TempFail) || r.Failed[0].Milter != "m" {
				t.Fatalf("got %+v", r)
			}
			if tc.want == TempFail && (r.Reply.Code != 451 || r.Reply.Enhanced != "4.7.0") {
				t.Errorf("reply %+v", r.Reply)
			}
		})
	}
}

// The caller's context bounds Check even when the per-reply timeout is
// long.
func TestContextEndsConversation(t *testing.T) {
	c := New("gw", []Config{{Name: "m", Address: silentMilter(t), Timeout: time.Hour}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan Result)
	go func() { done <- c.Check(ctx, testTxn()) }()
	select {
	case r := <-done:
		if r.Action != TempFail || len(r.Failed) != 1 || !strings.Contains(r.Failed[0].Err.Error(), "deadline") {
			t.Errorf("got %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Check did not return after its context ended")
	}
}

func deadAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return "inet:" + a
}

// silentMilter accepts connections and never answers.
func silentMilter(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "inet:" + l.Addr().String()
}

// Negotiation has connect_timeout, not the per-reply timeout: a milter
// that accepts the connection and never answers fails as soon as
// connect_timeout allows, not after timeout.
func TestNegotiationHasConnectTimeout(t *testing.T) {
	c := New("gw", []Config{{Name: "m", Address: silentMilter(t), ConnectTimeout: 200 * time.Millisecond,
		Timeout: time.Hour, TotalTimeout: time.Hour}})
	done := make(chan Result)
	go func() { done <- c.Check(context.Background(), testTxn()) }()
	select {
	case r := <-done:
		var ne net.Error
		if r.Action != TempFail || len(r.Failed) != 1 || !errors.As(r.Failed[0].Err, &ne) || !ne.Timeout() {
			t.Errorf("got %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("negotiation waited past connect_timeout")
	}
}

// A header edit that cannot be written as a field is a broken milter,
// failed under its on_failure policy; a value with line breaks is
// folded so it never starts a field or ends the header.
func TestHeaderEditsValidated(t *testing.T) {
	bad, _ := startFake(t, fakeMilter{mods: func(m *gomilter.Modifier) { m.AddHeader("X Bad", "v") }})
	r := New("gw", []Config{{Name: "bad", Address: bad, OnFailure: OnFailureAccept}}).Check(context.Background(), testTxn())
	if r.Action != Accept || len(r.Failed) != 1 || r.Failed[0].Deferred || len(r.Edits) != 0 ||
		!strings.Contains(r.Failed[0].Err.Error(), "invalid field name") {
		t.Errorf("invalid name: %+v", r)
	}
	inj, _ := startFake(t, fakeMilter{mods: func(m *gomilter.Modifier) {
		m.AddHeader("X-Spam-Report", "score 1\n\nBcc: victim@example.com\nX-Injected: yes")
	}})
	r = New("gw", []Config{{Name: "inj", Address: inj}}).Check(context.Background(), testTxn())
	if r.Action != Accept || len(r.Edits) != 1 {
		t.Fatalf("folded value: %+v", r)
	}
	got := string(ApplyEdits([]byte("Subject: s\r\n\r\n"), r.Edits))
	want := "Subject: s\r\nX-Spam-Report: score 1\r\n\tBcc: victim@example.com\r\n\tX-Injected: yes\r\n\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
