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

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// sink is an SMTP server on loopback standing in for a peer of the gateway
// (the inner mail server, the LGWAN relay, an internet MX). It records every
// envelope and message, and can refuse chosen recipients or be down.
type sink struct {
	name string
	addr string // host:port, fixed for the sink's life (Down/Up reuse it)

	mu       sync.Mutex
	srv      *smtpd.Server
	msgs     []sinkMessage
	sessions int
	refusals map[string]smtpd.Reply // by lower-case recipient; "*" for every one
	refused  []string               // recipients refused so far, in order
	delay    time.Duration          // how long DATA takes, to catch deliveries in flight
	changed  chan struct{}          // closed and replaced on every new message
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
	s := &sink{name: name, refusals: map[string]smtpd.Reply{}, changed: make(chan struct{})}
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
	// A sink refuses bare CR, bare LF and NUL (LineReject), so a gateway
	// that forwarded one would be caught; lines may be of any length.
	srv := &smtpd.Server{
		Config: smtpd.Config{Hostname: s.name + ".sink.test", WriteTimeout: 30 * time.Second,
			MaxMessageBytes: 64 << 20, MaxRecipients: 1000, MaxLineLength: 4096, DSN: true, SMTPUTF8: true},
		NewHandler: func(c *smtpd.Conn) smtpd.Handler {
			s.mu.Lock()
			s.sessions++
			s.mu.Unlock()
			return &sinkSession{s: s, c: c}
		},
	}
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
	s.mu.Lock()
	s.refusals[strings.ToLower(rcpt)] = smtpd.R(code, enhanced, "refused by sink "+s.name)
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
	c    *smtpd.Conn
	from string
	to   []string
}

func (ss *sinkSession) Connect() smtpd.Reply             { return smtpd.R(220, "", "") }
func (ss *sinkSession) Helo(string, bool) smtpd.Reply    { return smtpd.R(250, "", "") }
func (ss *sinkSession) AuthMechanisms() []string         { return nil }
func (ss *sinkSession) Auth(string) (sasl.Server, error) { return nil, errors.New("no AUTH") }
func (ss *sinkSession) LinePolicy() smtpd.LinePolicy     { return smtpd.LineReject }
func (ss *sinkSession) Reset()                           { ss.from, ss.to = "", nil }
func (ss *sinkSession) Close()                           {}

func (ss *sinkSession) Mail(from string, _ smtpd.MailParams) smtpd.Reply {
	ss.from, ss.to = from, nil
	return smtpd.R(250, "2.1.0", "OK")
}

func (ss *sinkSession) Rcpt(to string, _ smtpd.RcptParams) smtpd.Reply {
	ss.s.mu.Lock()
	r, refused := ss.s.refusals[strings.ToLower(to)]
	if !refused {
		r, refused = ss.s.refusals["*"]
	}
	if refused {
		ss.s.refused = append(ss.s.refused, to)
	}
	ss.s.mu.Unlock()
	if refused {
		return r
	}
	ss.to = append(ss.to, to)
	return smtpd.R(250, "2.1.5", "OK")
}

func (ss *sinkSession) Data(m *smtpd.MessageReader) smtpd.Reply {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, m); err != nil {
		return smtpd.R(554, "5.6.0", "sink refuses the message: "+err.Error())
	}
	s := ss.s
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ss.to) == 0 {
		return smtpd.R(554, "5.5.1", "no recipients")
	}
	s.msgs = append(s.msgs, sinkMessage{From: ss.from, To: ss.to, Data: buf.Bytes(), Helo: ss.c.Hostname()})
	close(s.changed)
	s.changed = make(chan struct{})
	return smtpd.R(250, "2.0.0", "OK: queued")
}
