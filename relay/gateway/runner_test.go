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

	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/routing"
)

// sink is an SMTP server on loopback that answers RCPT by the local part:
// "temp*" gets 451, "perm*" gets 550, anything else is accepted.
type sink struct {
	mu   sync.Mutex
	got  map[string]int // recipient -> messages received
	addr string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{got: map[string]int{}}
	srv := &smtpd.Server{Config: smtpd.Config{Hostname: "sink.test"},
		NewHandler: func(*smtpd.Conn) smtpd.Handler { return &sinkSession{s: s} }}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) count(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[rcpt]
}

type sinkSession struct {
	s     *sink
	rcpts []string
}

func (ss *sinkSession) Connect() smtpd.Reply                      { return smtpd.R(220, "", "") }
func (ss *sinkSession) Helo(string, bool) smtpd.Reply             { return smtpd.R(250, "", "") }
func (ss *sinkSession) AuthMechanisms() []string                  { return nil }
func (ss *sinkSession) Auth(string) (sasl.Server, error)          { return nil, errors.New("no AUTH") }
func (ss *sinkSession) LinePolicy() smtpd.LinePolicy              { return smtpd.LineReject }
func (ss *sinkSession) Reset()                                    { ss.rcpts = nil }
func (ss *sinkSession) Close()                                    {}
func (ss *sinkSession) Mail(string, smtpd.MailParams) smtpd.Reply { return smtpd.R(250, "2.1.0", "OK") }
func (ss *sinkSession) Rcpt(to string, _ smtpd.RcptParams) smtpd.Reply {
	switch {
	case strings.HasPrefix(to, "temp"):
		return smtpd.R(451, "4.2.0", "mailbox busy")
	case strings.HasPrefix(to, "perm"):
		return smtpd.R(550, "5.1.1", "no such user here")
	}
	ss.rcpts = append(ss.rcpts, to)
	return smtpd.R(250, "2.1.5", "OK")
}
func (ss *sinkSession) Data(m *smtpd.MessageReader) smtpd.Reply {
	if _, err := io.Copy(io.Discard, m); err != nil {
		return smtpd.R(451, "4.3.0", err.Error())
	}
	ss.s.mu.Lock()
	for _, rc := range ss.rcpts {
		ss.s.got[rc]++
	}
	ss.s.mu.Unlock()
	return smtpd.R(250, "2.0.0", "OK")
}

func TestRunnerPartialFailureAndBounce(t *testing.T) {
	sk := startSink(t)
	sec, dir := testSections(t)
	sec.Routing.Routes = append(sec.Routing.Routes, routing.RouteConfig{Name: "partner", Domain: "partner.example",
		TargetConfig: routing.TargetConfig{Targets: []string{sk.addr}, TLS: "none"}})
	sec.Relay.Delivery.RefusalRetries = 0
	sec.Relay.Delivery.RetryInterval = 200 * time.Millisecond
	sec.Relay.Delivery.TempFailLifetime = time.Hour
	e := startEngine(t, sec)

	d := dial(t, "127.0.0.2", e.Addrs()[0].String()) // the inner server
	d.do("EHLO inner", 250)
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 250)
	for _, r := range []string{"ok@partner.example", "temp@partner.example", "perm@partner.example"} {
		d.do("RCPT TO:<"+r+">", 250)
	}
	d.do("DATA", 354)
	d.raw("From: tanaka@city.toyokawa.lg.jp\r\nSubject: report\r\n\r\nbody\r\n.\r\n")
	d.expect(250)

	// The bounce for perm@ comes back to the sender's inner mailbox.
	files := waitFiles(t, filepath.Join(dir, "inner"), 1)
	b, _ := os.ReadFile(files[0])
	for _, want := range []string{"X-Sekisho-Envelope-From: <>", "X-Sekisho-Envelope-To: <tanaka@city.toyokawa.lg.jp>",
		"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; perm@partner.example",
		"Action: failed", "Status: 5.1.1", "550 5.1.1 no such user here", "Subject: report"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bounce lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "temp@partner.example") || strings.Contains(string(b), "Final-Recipient: rfc822; ok@") {
		t.Errorf("the bounce names recipients that did not fail:\n%s", b)
	}
	if n := sk.count("ok@partner.example"); n != 1 {
		t.Errorf("ok@ got %d copies", n)
	}
	// temp@ is retried (and keeps failing), never delivered, never bounced yet.
	time.Sleep(700 * time.Millisecond)
	if n := sk.count("temp@partner.example"); n != 0 {
		t.Errorf("temp@ got %d copies", n)
	}
	if n := sk.count("ok@partner.example"); n != 1 {
		t.Errorf("ok@ delivered again on retry: %d copies", n)
	}
	if files := waitFiles(t, filepath.Join(dir, "inner"), 1); len(files) != 1 {
		t.Errorf("%d bounces, want 1", len(files))
	}
	var deferred int
	for _, m := range e.queue.List() {
		for _, st := range m.Rcpts {
			if !st.Status.Final() {
				deferred++
				if st.Attempts < 2 || !strings.HasPrefix(st.LastError, "451 4.2.0") {
					t.Errorf("temp@ state %+v: want several attempts and the 451 reply", st)
				}
			}
		}
	}
	if deferred != 1 {
		t.Errorf("%d recipients left in the queue, want 1 (temp@)", deferred)
	}
}
