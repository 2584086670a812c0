package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/routing"
)

// captureSink is an SMTP server on loopback that keeps what it accepts
// and answers 451 to the first tempFails DATA commands.
type captureSink struct {
	mu        sync.Mutex
	tempFails int
	datas     int // DATA commands seen
	got       []captured
	addr      string
}

type captured struct {
	size int64 // the MAIL FROM SIZE= parameter
	data string
}

func startCaptureSink(t *testing.T, tempFails int) *captureSink {
	t.Helper()
	s := &captureSink{tempFails: tempFails}
	srv := &smtpd.Server{Config: smtpd.Config{Hostname: "inner.test"},
		NewHandler: func(*smtpd.Conn) smtpd.Handler { return &captureSession{s: s} }}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *captureSink) messages() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.got...)
}

func (s *captureSink) wait(t *testing.T, n int) []captured {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.messages()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink got %d messages, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type captureSession struct {
	s    *captureSink
	size int64
}

func (cs *captureSession) Connect() smtpd.Reply             { return smtpd.R(220, "", "") }
func (cs *captureSession) Helo(string, bool) smtpd.Reply    { return smtpd.R(250, "", "") }
func (cs *captureSession) AuthMechanisms() []string         { return nil }
func (cs *captureSession) Auth(string) (sasl.Server, error) { return nil, errors.New("no AUTH") }
func (cs *captureSession) LinePolicy() smtpd.LinePolicy     { return smtpd.LineReject }
func (cs *captureSession) Reset()                           { cs.size = 0 }
func (cs *captureSession) Close()                           {}
func (cs *captureSession) Mail(_ string, p smtpd.MailParams) smtpd.Reply {
	cs.size = p.Size
	return smtpd.R(250, "2.1.0", "OK")
}
func (cs *captureSession) Rcpt(string, smtpd.RcptParams) smtpd.Reply {
	return smtpd.R(250, "2.1.5", "OK")
}
func (cs *captureSession) Data(m *smtpd.MessageReader) smtpd.Reply {
	b, err := io.ReadAll(m)
	if err != nil {
		return smtpd.R(451, "4.3.0", err.Error())
	}
	cs.s.mu.Lock()
	defer cs.s.mu.Unlock()
	cs.s.datas++
	if cs.s.datas <= cs.s.tempFails {
		return smtpd.R(451, "4.3.0", "try again")
	}
	cs.s.got = append(cs.s.got, captured{size: cs.size, data: string(b)})
	return smtpd.R(250, "2.0.0", "OK")
}

// sanitizeEngine is a gateway whose inner route goes to sk and sanitizes
// mail from the internet.
func sanitizeEngine(t *testing.T, sk *captureSink) (*Engine, string) {
	t.Helper()
	sec, dir := testSections(t)
	sec.Routing.Routes[0].TargetConfig = routing.TargetConfig{Targets: []string{sk.addr}, TLS: "none"}
	sec.Relay.Delivery.RetryInterval = 100 * time.Millisecond
	sec.Relay.Sanitize.Rules = []sanitize.Rule{{Source: "internet", Routes: []string{"inner"}}}
	sec.Relay.Sanitize.Quarantine.Dir = filepath.Join(dir, "quarantine")
	if err := sec.Relay.Sanitize.Validate(); err != nil {
		t.Fatal(err)
	}
	return startEngine(t, sec), dir
}

func sendNewsletter(t *testing.T, e *Engine, from string) string {
	t.Helper()
	orig, err := os.ReadFile("../sanitize/testdata/corpus/outlook_sjis_html_pdf_xlsm.eml")
	if err != nil {
		t.Fatal(err)
	}
	d := dial(t, from, e.Addrs()[0].String())
	d.do("EHLO sender", 250)
	d.do("MAIL FROM:<yamada@example.com>", 250)
	d.do("RCPT TO:<tanaka@city.toyokawa.lg.jp>", 250)
	d.do("DATA", 354)
	d.raw(string(orig) + ".\r\n")
	d.expect(250)
	return string(orig)
}

// From the internet, the inner route gets the sanitized text, sent with
// its own size; the retries after two 451s send the same copy and keep
// the original once; the copy is swept once the message has left the
// queue.
func TestSanitizeDeliverOncePerMessageAndRoute(t *testing.T) {
	sk := startCaptureSink(t, 2)
	e, dir := sanitizeEngine(t, sk)
	orig := sendNewsletter(t, e, "127.0.0.66")
	got := sk.wait(t, 1)[0]
	for _, want := range []string{"Content-Type: text/plain; charset=UTF-8", "X-Sekisho-Sanitized:", "Subject: "} {
		if !strings.Contains(got.data, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, got.data)
		}
	}
	if strings.Contains(got.data, "<html") || strings.Contains(got.data, "application/pdf") && strings.Contains(got.data, "Content-Transfer-Encoding: base64") {
		t.Errorf("delivered message still has HTML or an attachment:\n%s", got.data)
	}
	if got.size != int64(len(got.data)) {
		t.Errorf("SIZE=%d, the sanitized copy has %d bytes (the original %d)", got.size, len(got.data), len(orig))
	}
	store, err := quarantine.Open(filepath.Join(dir, "quarantine"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("quarantine after 3 attempts: %d entries (%v), want 1", len(list), err)
	}
	if !strings.Contains(got.data, list[0].ID) {
		t.Errorf("the delivered copy does not name release ID %s", list[0].ID)
	}
	// The copy stays while the queue holds the message, and is swept
	// after; a sweep earlier than a minute after the write keeps it.
	outgoing, _ := filepath.Glob(filepath.Join(dir, "quarantine", "outgoing", "*.eml"))
	if len(outgoing) != 1 {
		t.Fatalf("outgoing copies: %v", outgoing)
	}
	st := e.st.Load().runner.Sanitize
	waitQueueEmpty(t, e)
	queued := func(id queue.ID) bool { _, err := e.queue.Get(id); return err == nil }
	if n, err := st.SweepOutgoing(queued, time.Now()); n != 0 || err != nil {
		t.Errorf("a fresh copy was swept: %d, %v", n, err)
	}
	if n, err := st.SweepOutgoing(queued, time.Now().Add(2*time.Minute)); n != 1 || err != nil {
		t.Errorf("sweep after delivery: %d, %v", n, err)
	}
	if _, err := os.Stat(outgoing[0]); !os.IsNotExist(err) {
		t.Errorf("copy still there: %v", err)
	}
}

// Mail from the inner network is not selected: it arrives byte for byte.
func TestSanitizeDeliverInnerUntouched(t *testing.T) {
	sk := startCaptureSink(t, 0)
	e, dir := sanitizeEngine(t, sk)
	orig := sendNewsletter(t, e, "127.0.0.2")
	got := sk.wait(t, 1)[0]
	if i := strings.Index(got.data, "From: "); i < 0 || got.data[i:] != orig {
		t.Errorf("mail from inside was changed:\n%s", got.data)
	}
	if list, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*.json")); len(list) != 0 {
		t.Errorf("quarantine entries for mail from inside: %v", list)
	}
}

// When the stage cannot work (here its folder for copies is a file), the
// recipient is deferred with 451 4.3.0, nothing is delivered, and the
// next attempt after the fault is gone delivers the sanitized copy.
func TestSanitizeDeliverErrorDefers(t *testing.T) {
	sk := startCaptureSink(t, 0)
	e, dir := sanitizeEngine(t, sk)
	block := filepath.Join(dir, "quarantine", "outgoing")
	if err := os.WriteFile(block, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	sendNewsletter(t, e, "127.0.0.66")
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := e.queue.List()
		if len(l) == 1 && l[0].Rcpts[0].Attempts >= 1 {
			if le := l[0].Rcpts[0].LastError; !strings.HasPrefix(le, "451 4.3.0 sanitizing the message:") {
				t.Fatalf("last error %q", le)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deferred attempt: %+v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(sk.messages()); n != 0 {
		t.Fatalf("%d messages delivered while the stage failed", n)
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	if got := sk.wait(t, 1)[0]; !strings.Contains(got.data, "X-Sekisho-Sanitized:") {
		t.Errorf("delivered after the fault unsanitized:\n%s", got.data)
	}
}

func waitQueueEmpty(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.queue.List()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %+v", e.queue.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
