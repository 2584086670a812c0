package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is an SMTP server on loopback standing in for a peer of the gateway
// (the inner mail server, the LGWAN relay, an internet MX). It records every
// envelope and message, and can refuse chosen recipients or be down.
type sink struct {
	name string
	addr string // host:port, fixed for the sink's life (Down/Up reuse it)

	mu       sync.Mutex
	srv      *smtp.Server
	msgs     []sinkMessage
	sessions int
	refusals map[string]*smtp.SMTPError // by lower-case recipient; "*" for every one
	refused  []string                   // recipients refused so far, in order
	delay    time.Duration              // how long DATA takes, to catch deliveries in flight
	changed  chan struct{}              // closed and replaced on every new message
}

// sinkMessage is one message as the sink received it.
type sinkMessage struct {
	From string
	To   []string
	Data []byte
	Helo string
}

func (m sinkMessage) String() string {
	return fmt.Sprintf("MAIL FROM:<%s> RCPT TO:%v (%d bytes)", m.From, m.To, len(m.Data))
}

// header returns the raw header block of the message.
func (m sinkMessage) header() string {
	h, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	return h + "\r\n"
}

// body returns what follows the header block.
func (m sinkMessage) body() string {
	_, b, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	return b
}

// newSink starts a sink on addr ("127.0.0.1:0" picks a port) and stops it
// when the test ends.
func newSink(t testing.TB, name, addr string) (*sink, error) {
	s := &sink{name: name, refusals: map[string]*smtp.SMTPError{}, changed: make(chan struct{})}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Down)
	return s, nil
}

func (s *sink) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &sinkSession{s: s, helo: c.Hostname()}, nil
	}))
	srv.Domain = s.name + ".sink.test"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.MaxLineLength = 1 << 20 // the gateway forwards lines of any length
	srv.AllowInsecureAuth = true
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(l)
}

// Down closes the listener and every open connection: the peer is
// unreachable until Up.
func (s *sink) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up listens again on the same address.
func (s *sink) Up(t testing.TB) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Close
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("sink %s: listening again on %s: %v", s.name, s.addr, err)
	}
	s.serve(l)
}

// Refuse makes the sink answer RCPT TO for rcpt ("*": every recipient)
// with the given reply, e.g. Refuse("a@b", 550, "5.1.1").
func (s *sink) Refuse(rcpt string, code int, enhanced string) {
	var ec smtp.EnhancedCode
	fmt.Sscanf(enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2])
	s.mu.Lock()
	s.refusals[strings.ToLower(rcpt)] = &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: "refused by sink " + s.name}
	s.mu.Unlock()
}

// Refused returns the recipients refused so far, one entry per attempt.
func (s *sink) Refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

// SetDelay makes every DATA take d before the sink answers.
func (s *sink) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Messages returns a copy of what was received so far.
func (s *sink) Messages() []sinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMessage(nil), s.msgs...)
}

// Sessions counts the SMTP sessions opened to the sink.
func (s *sink) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Wait blocks until cond holds for the messages received, or fails the test
// after timeout.
func (s *sink) Wait(t testing.TB, timeout time.Duration, what string, cond func([]sinkMessage) bool) []sinkMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		msgs := append([]sinkMessage(nil), s.msgs...)
		ch := s.changed
		s.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("sink %s: timed out after %v waiting for %s; it has %d message(s):\n%s",
				s.name, timeout, what, len(msgs), describeMessages(msgs))
			return nil
		}
	}
}

func describeMessages(msgs []sinkMessage) string {
	var b strings.Builder
	for i, m := range msgs {
		fmt.Fprintf(&b, "  %d: %s\n", i+1, m)
	}
	return b.String()
}

type sinkSession struct {
	s    *sink
	helo string
	from string
	to   []string
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from, ss.to = from, nil
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	err := ss.s.refusals[strings.ToLower(to)]
	if err == nil {
		err = ss.s.refusals["*"]
	}
	if err != nil {
		ss.s.refused = append(ss.s.refused, to)
	}
	ss.s.mu.Unlock()
	if err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ss.to) == 0 {
		return errors.New("no recipients")
	}
	s.msgs = append(s.msgs, sinkMessage{From: ss.from, To: ss.to, Data: buf.Bytes(), Helo: ss.helo})
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }
