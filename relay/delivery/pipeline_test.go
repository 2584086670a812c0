package delivery

import (
	"strings"
	"testing"
)

// The same transaction with and without PIPELINING gives the same
// per-recipient results; with it, no command waits for the one before.
func TestPipelinedAndNot(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		ext := []string{"8BITMIME"}
		if pipelining {
			ext = append(ext, "PIPELINING")
		}
		r := newRawSink(t, "", ext...)
		c := testClient(t, nil)
		res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "ok@example.jp", "bad@example.jp", "ok2@example.jp"))
		if !res[0].Delivered || res[1].Delivered || !res[2].Delivered {
			t.Fatalf("pipelining=%v: results %+v", pipelining, res)
		}
		if res[1].Code != 550 || res[1].Enhanced != "5.1.1" || res[1].Temporary || res[1].Text != "no such user" {
			t.Errorf("pipelining=%v: refused recipient %+v", pipelining, res[1])
		}
		if res[0].Text != "queued as RAW1" {
			t.Errorf("pipelining=%v: final reply %+v", pipelining, res[0])
		}
		cmds, payloads := r.recorded()
		joined := strings.Join(cmds, "|")
		if !strings.Contains(joined, "MAIL FROM:<a@example.jp>") ||
			!strings.Contains(joined, "|RCPT TO:<ok@example.jp>|RCPT TO:<bad@example.jp>|RCPT TO:<ok2@example.jp>|DATA") {
			t.Errorf("pipelining=%v: commands %q", pipelining, joined)
		}
		if len(payloads) != 1 || !strings.HasSuffix(string(payloads[0]), "hello\r\n.\r\n") {
			t.Errorf("pipelining=%v: payload %q", pipelining, payloads)
		}
	}
}

// With every recipient refused, no message is sent and the session stays
// usable, even with a server that wrongly answers DATA with 354 (it only
// gets the end-of-data dot).
func TestPipelinedAllRefused(t *testing.T) {
	r := newRawSink(t, "", "PIPELINING")
	c := testClient(t, nil)
	for i := 0; i < 2; i++ {
		res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "bad1@example.jp", "bad2@example.jp"))
		for _, x := range res {
			if x.Delivered || x.Code != 550 {
				t.Fatalf("round %d: %+v", i, x)
			}
		}
	}
	_, payloads := r.recorded()
	for _, p := range payloads {
		if string(p) != ".\r\n" {
			t.Errorf("content sent with no accepted recipient: %q", p)
		}
	}
}
