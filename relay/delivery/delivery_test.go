package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const testBody = "From: a@example.jp\r\nTo: b@example.jp\r\nSubject: test\r\n\r\nhello\r\n"

func testClient(t testing.TB, mod func(*Options)) *Client {
	t.Helper()
	o := Options{
		HeloName:          "gw.test",
		DialTimeout:       2 * time.Second,
		CommandTimeout:    5 * time.Second,
		DataTimeout:       5 * time.Second,
		IdleTimeout:       time.Minute,
		MaxConnsPerTarget: 4,
	}
	if mod != nil {
		mod(&o)
	}
	c := NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func plainTarget(addrs ...string) Target {
	return Target{Host: "mx.test", Addrs: addrs, TLS: TLSPolicy{Mode: TLSNone}}
}

func newMessage(from, body string, rcpts ...string) Message {
	return Message{
		From:  from,
		Rcpts: rcpts,
		Size:  int64(len(body)),
		Body:  func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil },
	}
}

func deliver(t testing.TB, c *Client, tg Target, m Message) []Result {
	t.Helper()
	res, err := c.Deliver(context.Background(), tg, m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(res) != len(m.Rcpts) {
		t.Fatalf("%d results for %d recipients", len(res), len(m.Rcpts))
	}
	return res
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestDeliverSuccess(t *testing.T) {
	s := newSink(t)
	c := testClient(t, nil)
	res := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp", "c@example.jp"))
	for _, r := range res {
		if !r.Delivered || r.Code != 250 || r.Enhanced != "2.0.0" || r.Remote != s.addr || r.Temporary {
			t.Errorf("result %+v", r)
		}
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the sink", len(msgs))
	}
	if got := msgs[0]; got.from != "a@example.jp" || fmt.Sprint(got.rcpts) != "[b@example.jp c@example.jp]" || string(got.data) != testBody {
		t.Errorf("sink got %+v", got)
	}
	s.mu.Lock()
	helos := s.helos
	s.mu.Unlock()
	if len(helos) == 0 || helos[0] != "gw.test" {
		t.Errorf("EHLO names %v, want gw.test", helos)
	}
}

func TestDeliverPerRecipientReplies(t *testing.T) {
	s := newSink(t)
	s.rcptReply = func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "unknown@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(rcpt, "busy@"):
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "try later"}
		}
		return nil
	}
	c := testClient(t, nil)
	res := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "ok@example.jp", "unknown@example.jp", "busy@example.jp", "bad address", "ok2@example.jp"))
	want := []struct {
		code      int
		enhanced  string
		temporary bool
		delivered bool
	}{
		{250, "2.0.0", false, true},
		{550, "5.1.1", false, false},
		{450, "4.2.1", true, false},
		{553, "5.1.3", false, false},
		{250, "2.0.0", false, true},
	}
	for i, w := range want {
		r := res[i]
		if r.Code != w.code || r.Enhanced != w.enhanced || r.Temporary != w.temporary || r.Delivered != w.delivered {
			t.Errorf("%s: got %+v, want %+v", r.Rcpt, r, w)
		}
	}
	if res[1].Text != "no such user" {
		t.Errorf("reply text %q", res[1].Text)
	}
	msgs := s.messages()
	if len(msgs) != 1 || fmt.Sprint(msgs[0].rcpts) != "[ok@example.jp ok2@example.jp]" {
		t.Fatalf("sink got %+v", msgs)
	}
}

func TestNoRecipientAcceptedNoMessage(t *testing.T) {
	s := newSink(t)
	s.rcptReply = func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	c := testClient(t, nil)
	opened := 0
	m := newMessage("a@example.jp", testBody, "x@example.jp", "y@example.jp")
	body := m.Body
	m.Body = func() (io.ReadCloser, error) { opened++; return body() }
	for _, r := range deliver(t, c, plainTarget(s.addr), m) {
		if r.Code != 550 || r.Temporary {
			t.Errorf("result %+v", r)
		}
	}
	// The sink offers CHUNKING: the first chunk goes with the commands and
	// is thrown away by the server; no message is taken.
	if opened > 1 || len(s.messages()) != 0 {
		t.Errorf("body opened %d times, %d messages: no message may be sent", opened, len(s.messages()))
	}
	// The session was reset and stays usable.
	s.rcptReply = nil
	if r := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "z@example.jp")); !r[0].Delivered {
		t.Fatalf("second message: %+v", r[0])
	}
	if accepted, _ := s.connCount(); accepted != 1 {
		t.Errorf("%d connections, want the first one reused", accepted)
	}
	// With DATA the message is not even opened.
	plain := testClient(t, func(o *Options) { o.NoChunking = true })
	opened = 0
	s.rcptReply = func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	deliver(t, plain, plainTarget(s.addr), m)
	if opened != 0 {
		t.Errorf("DATA: body opened %d times with no recipient accepted", opened)
	}
}

func TestMailAndDataReplies(t *testing.T) {
	tests := []struct {
		name      string
		mail      error
		data      error
		code      int
		temporary bool
	}{
		{"MAIL refused", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender refused"}, nil, 550, false},
		{"MAIL deferred", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}, nil, 451, true},
		{"DATA refused", nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content refused"}, 554, false},
		{"DATA deferred", nil, &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"}, 452, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t)
			s.mailReply = func(string) error { return tc.mail }
			s.dataReply = func() error { return tc.data }
			c := testClient(t, nil)
			for _, r := range deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp", "c@example.jp")) {
				if r.Code != tc.code || r.Temporary != tc.temporary || r.Delivered || r.Remote != s.addr {
					t.Errorf("result %+v", r)
				}
			}
		})
	}
}

func TestConnectRefusedAndFailover(t *testing.T) {
	dead := closedAddr(t)
	c := testClient(t, nil)

	res := deliver(t, c, plainTarget(dead), newMessage("a@example.jp", testBody, "b@example.jp"))
	want := "connect to " + dead + ": connection refused"
	if r := res[0]; r.Code != 0 || !r.Temporary || r.Text != want || r.Delivered {
		t.Errorf("got %+v, want temporary Code 0 %q", r, want)
	}

	dead2 := closedAddr(t)
	res = deliver(t, c, plainTarget(dead, dead2), newMessage("a@example.jp", testBody, "b@example.jp"))
	if want := "connect to " + dead + ": connection refused; connect to " + dead2 + ": connection refused"; res[0].Text != want {
		t.Errorf("text %q, want %q", res[0].Text, want)
	}

	s := newSink(t)
	res = deliver(t, c, plainTarget(dead, s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	if r := res[0]; !r.Delivered || r.Remote != s.addr {
		t.Errorf("failover: %+v", r)
	}
}

func TestGreetingRefusalTriesNextAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "554 5.7.1 go away\r\n")
			c.Close()
		}
	}()
	s := newSink(t)
	c := testClient(t, nil)
	res := deliver(t, c, plainTarget(ln.Addr().String()), newMessage("a@example.jp", testBody, "b@example.jp"))
	if r := res[0]; r.Code != 0 || !r.Temporary || !strings.Contains(r.Text, "greeting from "+ln.Addr().String()+": 554 5.7.1 go away") {
		t.Errorf("got %+v", r)
	}
	res = deliver(t, c, plainTarget(ln.Addr().String(), s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	if !res[0].Delivered {
		t.Errorf("got %+v", res[0])
	}
}

func TestConnectionReuse(t *testing.T) {
	s := newSink(t)
	c := testClient(t, nil)
	for i := 0; i < 5; i++ {
		if r := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp")); !r[0].Delivered {
			t.Fatalf("message %d: %+v", i, r[0])
		}
	}
	if accepted, _ := s.connCount(); accepted != 1 {
		t.Errorf("%d connections for 5 sequential messages, want 1", accepted)
	}
	if n := len(s.messages()); n != 5 {
		t.Errorf("%d messages", n)
	}

	// A pooled connection the server has dropped is replaced: one reused
	// at once fails at MAIL and the message is sent again on a new one...
	s.dropConns()
	if r := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp")); !r[0].Delivered {
		t.Fatalf("after drop: %+v", r[0])
	}
	if accepted, _ := s.connCount(); accepted != 2 {
		t.Errorf("%d connections, want 2", accepted)
	}
	// ...and one idle for longer is probed with RSET first.
	s.dropConns()
	time.Sleep(freshReuse + 100*time.Millisecond)
	if r := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp")); !r[0].Delivered {
		t.Fatalf("after drop and idle: %+v", r[0])
	}
	if accepted, _ := s.connCount(); accepted != 3 {
		t.Errorf("%d connections, want 3", accepted)
	}
	if n := len(s.messages()); n != 7 {
		t.Errorf("%d messages at the sink, want 7 (no duplicate, no loss)", n)
	}
}

func TestMaxConnsPerTarget(t *testing.T) {
	s := newSink(t)
	c := testClient(t, func(o *Options) { o.MaxConnsPerTarget = 2 })
	var wg sync.WaitGroup
	var delivered atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				res, err := c.Deliver(context.Background(), plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
				if err == nil && res[0].Delivered {
					delivered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if delivered.Load() != 40 {
		t.Errorf("%d of 40 delivered", delivered.Load())
	}
	if accepted, maxOpen := s.connCount(); accepted > 2 || maxOpen > 2 {
		t.Errorf("%d connections accepted, %d open at once; the cap is 2", accepted, maxOpen)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newSink(t)
	c := testClient(t, func(o *Options) { o.IdleTimeout = 100 * time.Millisecond })
	deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	if accepted, _ := s.connCount(); accepted != 2 {
		t.Errorf("%d connections, want a new one after the idle timeout", accepted)
	}
}

func TestTimeouts(t *testing.T) {
	bigBody := func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(repeatReader('x'), 256<<20)), nil
	}
	tests := []struct {
		name  string
		stall string
		body  func() (io.ReadCloser, error)
		want  string
	}{
		{"greeting", "greeting", nil, "greeting from %s: timed out"},
		{"body write", "body", bigBody, "sending the message at %s: timed out"},
		{"reply to final dot", "dot", nil, "end of data at %s: timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawSink(t, tc.stall, "8BITMIME")
			c := testClient(t, func(o *Options) {
				o.CommandTimeout = 300 * time.Millisecond
				o.DataTimeout = 300 * time.Millisecond
			})
			m := newMessage("a@example.jp", testBody, "b@example.jp")
			if tc.body != nil {
				m.Body, m.Size = tc.body, 0
			}
			// The context is only a backstop: without our own deadlines the
			// test would fail here instead of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res, err := c.Deliver(ctx, plainTarget(r.addr), m)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			want := fmt.Sprintf(tc.want, r.addr)
			if got := res[0]; got.Code != 0 || !got.Temporary || got.Text != want {
				t.Errorf("got %+v, want temporary %q", got, want)
			}
		})
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
		if i%100 == 99 {
			p[i] = '\n'
		}
	}
	return len(p), nil
}

func TestContextCancel(t *testing.T) {
	r := newRawSink(t, "greeting")
	c := testClient(t, func(o *Options) { o.CommandTimeout = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := c.Deliver(ctx, plainTarget(r.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancel took %v", took)
	}
	if got := res[0]; !got.Temporary || !strings.Contains(got.Text, "canceled") {
		t.Errorf("got %+v", got)
	}
}

func TestBodyErrors(t *testing.T) {
	s := newSink(t)
	c := testClient(t, nil)

	m := newMessage("a@example.jp", testBody, "b@example.jp")
	m.Body = func() (io.ReadCloser, error) { return nil, errors.New("spool file missing") }
	r := deliver(t, c, plainTarget(s.addr), m)[0]
	if !r.Temporary || r.Code != 0 || r.Text != "opening the message: spool file missing" {
		t.Errorf("open failure: %+v", r)
	}

	m.Body = func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader("Subject: x\r\n\r\npartial"), errReader{})), nil
	}
	r = deliver(t, c, plainTarget(s.addr), m)[0]
	if !r.Temporary || r.Code != 0 || r.Text != "reading the message: disk read error" {
		t.Errorf("read failure: %+v", r)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(s.messages()); n != 0 {
		t.Errorf("a truncated message reached the sink (%d messages)", n)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk read error") }

// The same wire bytes with go-smtp's DATA writer and with our own
// pipelined DATA.
func TestDotStuffingAndLineEnds(t *testing.T) {
	for _, ext := range [][]string{{"8BITMIME"}, {"8BITMIME", "PIPELINING"}} {
		t.Run(strings.Join(ext, "+"), func(t *testing.T) { testDotStuffing(t, ext) })
	}
}

func testDotStuffing(t *testing.T, ext []string) {
	r := newRawSink(t, "", ext...)
	c := testClient(t, nil)
	body := "Subject: t\r\n\r\n.leading dot\r\nbare lf\n.\nsmuggle attempt\r.\rX\r\n..two\r\nno final newline"
	res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", body, "b@example.jp"))
	if !res[0].Delivered || res[0].Text != "queued as RAW1" {
		t.Fatalf("%+v", res[0])
	}
	_, payloads := r.recorded()
	if len(payloads) != 1 {
		t.Fatalf("%d payloads", len(payloads))
	}
	// A bare LF ends a line; a bare CR ends none and is dropped, so the
	// "\r.\r" of the smuggling attempt is text inside its line.
	want := "Subject: t\r\n\r\n..leading dot\r\nbare lf\r\n..\r\nsmuggle attempt.X\r\n...two\r\nno final newline\r\n.\r\n"
	if got := string(payloads[0]); got != want {
		t.Errorf("wire payload\n got %q\nwant %q", got, want)
	}
	p := payloads[0]
	for i, b := range p {
		if b == '\r' && (i+1 == len(p) || p[i+1] != '\n') || b == '\n' && (i == 0 || p[i-1] != '\r') {
			t.Fatalf("bare CR or LF at offset %d", i)
		}
	}
	if strings.Count(string(p), "\r\n.\r\n") != 1 || !strings.HasSuffix(string(p), "\r\n.\r\n") {
		t.Error("the end-of-data sequence occurs other than at the end")
	}
}

func TestClientClose(t *testing.T) {
	s := newSink(t)
	c := NewClient(Options{HeloName: "gw.test"})
	deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp"))
	c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close left the pooled connection open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Deliver(context.Background(), plainTarget(s.addr), newMessage("a@example.jp", testBody, "b@example.jp")); err == nil {
		t.Error("Deliver after Close succeeded")
	}
}
