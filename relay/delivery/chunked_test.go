package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// With PIPELINING and CHUNKING the commands and the whole message go in
// one BDAT LAST, the message as it is (no dot-stuffing, line ends made
// CRLF), and the per-recipient results are those of DATA.
func TestChunkedTransaction(t *testing.T) {
	r := newRawSink(t, "", "PIPELINING", "CHUNKING", "8BITMIME")
	c := testClient(t, nil)
	body := "Subject: t\r\n\r\n.leading dot\r\nbare lf\n.\nX\r\nno final newline"
	res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", body, "ok@example.jp", "bad@example.jp"))
	if !res[0].Delivered || res[0].Text != "queued as RAW1" || res[1].Delivered || res[1].Code != 550 {
		t.Fatalf("results %+v", res)
	}
	cmds, payloads := r.recorded()
	joined := strings.Join(cmds, "|")
	wantPayload := "Subject: t\r\n\r\n.leading dot\r\nbare lf\r\n.\r\nX\r\nno final newline\r\n"
	if !strings.Contains(joined, fmt.Sprintf("MAIL FROM:<a@example.jp>|RCPT TO:<ok@example.jp>|RCPT TO:<bad@example.jp>|BDAT %d LAST", len(wantPayload))) ||
		strings.Contains(joined, "DATA") {
		t.Errorf("commands %q", joined)
	}
	if len(payloads) != 1 || string(payloads[0]) != wantPayload {
		t.Errorf("payload %q, want %q", payloads, wantPayload)
	}
}

// A message over one chunk goes in several BDATs, the last with LAST, and
// arrives whole; NoChunking keeps DATA.
func TestChunkedLargeMessageAndNoChunking(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for b.Len() < 3*chunkSize {
		b.WriteString(".a line of a large message that needs several chunks\r\n")
	}
	body := b.String()
	for _, off := range []bool{false, true} {
		r := newRawSink(t, "", "PIPELINING", "CHUNKING")
		c := testClient(t, func(o *Options) { o.NoChunking = off })
		res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", body, "ok@example.jp"))
		if !res[0].Delivered {
			t.Fatalf("NoChunking %v: %+v", off, res[0])
		}
		cmds, payloads := r.recorded()
		var bdat, last int
		for _, cmd := range cmds {
			if strings.HasPrefix(cmd, "BDAT ") {
				bdat++
				if strings.HasSuffix(cmd, " LAST") {
					last++
				}
			}
		}
		if len(payloads) != 1 {
			t.Fatalf("NoChunking %v: %d payloads", off, len(payloads))
		}
		if off {
			if bdat != 0 || string(payloads[0]) != strings.ReplaceAll(body, "\r\n.", "\r\n..")+".\r\n" {
				t.Errorf("NoChunking: %d BDATs, or the DATA payload differs", bdat)
			}
			continue
		}
		if bdat < 3 || last != 1 {
			t.Errorf("%d BDATs, %d LAST: %q", bdat, last, cmds)
		}
		if string(payloads[0]) != body {
			t.Errorf("the chunks joined differ from the message (%d vs %d bytes)", len(payloads[0]), len(body))
		}
	}
}

// Every recipient refused: the server throws the chunk away and answers
// the BDAT with an error; the results are the RCPT refusals and the
// session is reset and reused. A refused chunk settles the accepted
// recipients with its reply.
func TestChunkedRefusals(t *testing.T) {
	r := newRawSink(t, "", "PIPELINING", "CHUNKING")
	c := testClient(t, nil)
	for range 2 {
		res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "bad1@example.jp", "bad2@example.jp"))
		for _, x := range res {
			if x.Delivered || x.Code != 550 || x.Enhanced != "5.1.1" {
				t.Fatalf("%+v", x)
			}
		}
	}
	res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "ok@example.jp"))
	if !res[0].Delivered {
		t.Fatalf("after the refusals: %+v", res[0])
	}
	r.mu.Lock()
	conns := r.accepted
	r.mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections, want one reused after RSET", conns)
	}

	refusing := newRawSink(t, "chunk", "PIPELINING", "CHUNKING")
	res = deliver(t, c, plainTarget(refusing.addr), newMessage("a@example.jp", testBody, "ok@example.jp"))
	if x := res[0]; x.Delivered || x.Code != 552 || x.Enhanced != "5.3.4" || x.Temporary {
		t.Errorf("refused chunk: %+v", x)
	}
}

// A message that cannot be read: before anything is sent the session
// stays usable; in a later chunk the connection is closed without a last
// chunk, so the server drops the partial message.
func TestChunkedBodyErrors(t *testing.T) {
	r := newRawSink(t, "", "PIPELINING", "CHUNKING")
	c := testClient(t, nil)
	m := newMessage("a@example.jp", testBody, "ok@example.jp")
	m.Body = func() (io.ReadCloser, error) { return nil, errors.New("spool file missing") }
	if x := deliver(t, c, plainTarget(r.addr), m)[0]; !x.Temporary || x.Text != "opening the message: spool file missing" {
		t.Errorf("open failure: %+v", x)
	}
	big := bytes.Repeat([]byte("line\r\n"), chunkSize/3)
	m.Body = func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(big), errReader{})), nil
	}
	if x := deliver(t, c, plainTarget(r.addr), m)[0]; !x.Temporary || x.Text != "reading the message: disk read error" {
		t.Errorf("read failure: %+v", x)
	}
	if x := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "ok@example.jp"))[0]; !x.Delivered {
		t.Fatalf("after the failures: %+v", x)
	}
	if _, payloads := r.recorded(); len(payloads) != 1 || string(payloads[0]) != testBody {
		t.Errorf("payloads %q: only the last message may arrive", payloads)
	}
}
