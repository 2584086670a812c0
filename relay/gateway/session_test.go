package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// testSections is a small gateway: one mirrored domain, the inner network
// 127.0.0.2, everything delivered into a folder.
func testSections(t testing.TB) (Sections, string) {
	t.Helper()
	dir := t.TempDir()
	acc := accounts.DefaultConfig()
	acc.Domains = []accounts.DomainConfig{{Name: "city.toyokawa.lg.jp"}}
	acc.Accounts = []accounts.AccountConfig{
		{Address: "tanaka@city.toyokawa.lg.jp"},
		{Address: "baito@city.toyokawa.lg.jp", OutboundBlocked: true},
		{Address: "sato@city.toyokawa.lg.jp", Secret: "{PLAIN}secret"},
	}
	rt := routing.DefaultConfig()
	rt.Routes = []routing.RouteConfig{{Name: "inner", Domain: "city.toyokawa.lg.jp",
		TargetConfig: routing.TargetConfig{Targets: []string{"dir:" + filepath.Join(dir, "inner")}}}}
	rt.SmartHost = routing.TargetConfig{Targets: []string{"dir:" + filepath.Join(dir, "out")}}
	rc := DefaultConfig()
	rc.Hostname = "gw.test"
	rc.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", Mode: "mx"}, {Address: "127.0.0.1:0", Mode: "submission"}}
	rc.Guard.InnerNetworks = []string{"127.0.0.2/32"}
	rc.Auth.AllowInsecure = true
	rc.Queue.Dir = filepath.Join(dir, "queue")
	rc.Delivery.RetryInterval = time.Second
	rc.Limits.MaxMessageBytes = 64 << 10
	return Sections{Accounts: acc, Rewrite: rewrite.DefaultConfig(), Routing: rt, Relay: rc}, dir
}

func startEngine(t testing.TB, sec Sections) *Engine {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return startEngineWith(t, sec, log, ops.NewMetrics())
}

// startEngineWith is startEngine with the test's own log and metrics.
func startEngineWith(t testing.TB, sec Sections, log *slog.Logger, m *ops.Metrics) *Engine {
	t.Helper()
	e, err := New(sec, log, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return e
}

// dialog is a raw SMTP client that checks reply codes.
type dialog struct {
	t *testing.T
	c *textproto.Conn
}

func dial(t *testing.T, from, addr string) *dialog {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	dl := &dialog{t: t, c: textproto.NewConn(nc)}
	t.Cleanup(func() { dl.c.Close() })
	dl.expect(220)
	return dl
}

// do sends a line and expects a reply code; it returns the reply text.
func (d *dialog) do(line string, code int) string {
	d.t.Helper()
	if err := d.c.PrintfLine("%s", line); err != nil {
		d.t.Fatal(err)
	}
	return d.expect(code)
}

func (d *dialog) expect(code int) string {
	d.t.Helper()
	got, msg, err := d.c.ReadResponse(0)
	if err != nil && got == 0 {
		d.t.Fatalf("reading reply: %v", err)
	}
	if got != code {
		d.t.Fatalf("got %d %s, want %d", got, msg, code)
	}
	return msg
}

// raw writes bytes as they are (for DATA bodies with odd line endings).
func (d *dialog) raw(s string) {
	d.t.Helper()
	if _, err := d.c.W.WriteString(s); err != nil {
		d.t.Fatal(err)
	}
	d.c.W.Flush()
}

func waitFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		if len(files) >= n || time.Now().After(deadline) {
			if len(files) < n {
				t.Fatalf("%s: %d files, want %d", dir, len(files), n)
			}
			return files
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionInbound(t *testing.T) {
	sec, dir := testSections(t)
	e := startEngine(t, sec)
	d := dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("EHLO client.example", 250)
	d.do("MAIL FROM:<someone@example.com>", 250)
	d.do("RCPT TO:<Tanaka@City.Toyokawa.LG.JP>", 250)
	if msg := d.do("RCPT TO:<nobody@city.toyokawa.lg.jp>", 550); !strings.HasPrefix(msg, "5.1.1") {
		t.Errorf("unknown user: %q", msg)
	}
	if msg := d.do("RCPT TO:<victim@example.net>", 554); !strings.HasPrefix(msg, "5.7.1") {
		t.Errorf("relay: %q", msg)
	}
	d.do("DATA", 354)
	d.raw("From: someone@example.com\r\nSubject: test\r\n\r\nhello\r\n.\r\n")
	if msg := d.expect(250); !strings.Contains(msg, "queued as") {
		t.Errorf("DATA reply %q", msg)
	}
	d.do("QUIT", 221)
	files := waitFiles(t, filepath.Join(dir, "inner"), 1)
	b, _ := os.ReadFile(files[0])
	for _, want := range []string{"X-Sekisho-Envelope-To: <tanaka@city.toyokawa.lg.jp>", "Received: from client.example ([127.0.0.1])",
		"by gw.test (sekisho) with ESMTP", "Subject: test\r\n\r\nhello\r\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("delivered message lacks %q:\n%s", want, b)
		}
	}
}

func TestSessionDataChecks(t *testing.T) {
	sec, dir := testSections(t)
	sec.Relay.Limits.MaxReceivedFields = 3
	e := startEngine(t, sec)
	addr := e.Addrs()[0].String()
	cases := []struct {
		name   string
		client string
		body   string
		code   int
		prefix string
	}{
		{"bare LF from the internet", "127.0.0.1", "Subject: x\n\nbody\n.\nMAIL FROM:<evil@x>\r\n.\r\n", 550, "5.6.0"},
		{"bare LF in the body only", "127.0.0.1", "Subject: x\r\n\r\nline1\nline2\r\n.\r\n", 550, "5.6.0"},
		{"bare CR from the internet", "127.0.0.1", "Subject: x\r\n\r\nbody\r.\rMAIL FROM:<evil@x>\r\n.\r\n", 550, "5.6.0"},
		{"bare LF from inner is normalized", "127.0.0.2", "Subject: inner\n\nbody\n.\nMAIL FROM:<evil@x>\r\n.\r\n", 250, "2.0.0"},
		{"too many hops", "127.0.0.1", strings.Repeat("Received: from a by b; now\r\n", 4) + "\r\nx\r\n.\r\n", 554, "5.4.6"},
		{"too large", "127.0.0.1", "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 70) + ".\r\n", 552, "5.3.4"},
	}
	for _, c := range cases {
		d := dial(t, c.client, addr)
		d.do("EHLO client.example", 250)
		d.do("MAIL FROM:<someone@example.com>", 250)
		d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)
		d.do("DATA", 354)
		d.raw(c.body)
		if msg := d.expect(c.code); !strings.HasPrefix(msg, c.prefix) {
			t.Errorf("%s: reply %d %q, want %s", c.name, c.code, msg, c.prefix)
		}
		// The session goes on after a refusal.
		d.do("NOOP", 250)
	}
	files := waitFiles(t, filepath.Join(dir, "inner"), 1)
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Subject: inner\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@x>\r\n") {
		t.Errorf("normalized message:\n%q", b)
	}
	if len(files) != 1 {
		t.Errorf("%d messages delivered, want 1 (nothing smuggled, nothing refused delivered)", len(files))
	}
}

func TestSessionSenderPolicy(t *testing.T) {
	sec, dir := testSections(t)
	e := startEngine(t, sec)
	mx, sub := e.Addrs()[0].String(), e.Addrs()[1].String()

	d := dial(t, "127.0.0.1", mx)
	d.do("EHLO x", 250)
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 553) // spoofed local sender
	d.do("MAIL FROM:<postmaster@city.toyokawa.lg.jp>", 553)
	d.do("MAIL FROM:<>", 250)
	d.do("RCPT TO:<someone@example.net>", 550)
	d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)

	// The inner server may send out, but not for the outbound-blocked account.
	d = dial(t, "127.0.0.2", mx)
	d.do("EHLO inner", 250)
	d.do("MAIL FROM:<baito@city.toyokawa.lg.jp>", 250)
	if msg := d.do("RCPT TO:<friend@example.net>", 550); !strings.HasPrefix(msg, "5.7.1") {
		t.Errorf("outbound blocked: %q", msg)
	}
	d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)
	d.do("RSET", 250)
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 250)
	d.do("RCPT TO:<friend@example.net>", 250)
	d.do("DATA", 354)
	d.raw("From: tanaka@city.toyokawa.lg.jp\r\n\r\nhi\r\n.\r\n")
	d.expect(250)
	waitFiles(t, filepath.Join(dir, "out"), 1)

	// Submission needs AUTH; then the login may send as itself.
	d = dial(t, "127.0.0.1", sub)
	d.do("EHLO x", 250)
	d.do("MAIL FROM:<sato@city.toyokawa.lg.jp>", 530)
	d.do("AUTH PLAIN "+plainResp("sato@city.toyokawa.lg.jp", "wrong"), 535)
	if msg := d.do("AUTH PLAIN "+plainResp("sato@city.toyokawa.lg.jp", "secret"), 235); !strings.HasPrefix(msg, "2.7.0") {
		t.Errorf("AUTH success: %q, want 2.7.0 (RFC 4954)", msg)
	}
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 553) // not the login's address
	d.do("MAIL FROM:<sato@city.toyokawa.lg.jp>", 250)
	d.do("RCPT TO:<friend@example.net>", 250)
}

func plainResp(user, pass string) string {
	return base64Std("\x00" + user + "\x00" + pass)
}

func TestReloadKeepsSessions(t *testing.T) {
	sec, _ := testSections(t)
	e := startEngine(t, sec)
	addr := e.Addrs()[0].String()
	old := dial(t, "127.0.0.1", addr)
	old.do("EHLO x", 250)

	sec.Accounts.Accounts = append(sec.Accounts.Accounts, accounts.AccountConfig{Address: "newcomer@city.toyokawa.lg.jp"})
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	// The open session keeps the rules it started with...
	old.do("MAIL FROM:<a@example.com>", 250)
	old.do("RCPT TO:<newcomer@city.toyokawa.lg.jp>", 550)
	// ...a new one sees the new directory.
	d := dial(t, "127.0.0.1", addr)
	d.do("EHLO x", 250)
	d.do("MAIL FROM:<a@example.com>", 250)
	d.do("RCPT TO:<newcomer@city.toyokawa.lg.jp>", 250)

	// A broken configuration is refused and the running one stays.
	bad := sec
	bad.Accounts.Accounts = append(bad.Accounts.Accounts, accounts.AccountConfig{Address: "x@undeclared.example"})
	if err := e.Reload(bad); err == nil {
		t.Fatal("a broken configuration was accepted")
	}
	d.do("RCPT TO:<newcomer@city.toyokawa.lg.jp>", 250)
}

func TestQueueFullIsTemporary(t *testing.T) {
	sec, _ := testSections(t)
	sec.Relay.Queue.MaxMessages = 1
	// Nothing can be delivered: the message stays and fills the queue.
	sec.Routing.Routes[0].Targets = []string{"127.0.0.1:1"}
	e := startEngine(t, sec)
	d := dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("EHLO x", 250)
	for i, want := range []int{250, 452} {
		d.do("MAIL FROM:<a@example.com>", 250)
		d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)
		d.do("DATA", 354)
		d.raw(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n.\r\n", i))
		if msg := d.expect(want); want == 452 && !strings.HasPrefix(msg, "4.3.1") {
			t.Errorf("full queue: %q", msg)
		}
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSequenceErrorsAre503(t *testing.T) {
	sec, _ := testSections(t)
	e := startEngine(t, sec)
	d := dial(t, "127.0.0.1", e.Addrs()[0].String())
	d.do("MAIL FROM:<a@example.com>", 503)
	d.do("EHLO x", 250)
	d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 503)
	d.do("DATA", 503)
	d.do("VRFY tanaka", 252)
	d.do("EXPN list", 502) // not implemented stays 502
}
