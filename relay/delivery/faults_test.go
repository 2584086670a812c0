package delivery

import (
	"strings"
	"testing"
)

// A connection lost while pipelined RCPT replies are read must not turn a
// recipient already refused with 5xx into a temporary failure: it would be
// retried instead of bounced.
func TestPipelinedLostKeepsRefusals(t *testing.T) {
	r := newRawSink(t, "", "PIPELINING")
	c := testClient(t, nil)
	res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "ok@example.jp", "bad@example.jp", "drop@example.jp", "later@example.jp"))
	if res[1].Code != 550 || res[1].Temporary {
		t.Errorf("refused recipient after the connection was lost: %+v, want its 550", res[1])
	}
	for _, i := range []int{0, 2, 3} {
		if res[i].Delivered || !res[i].Temporary || res[i].Code != 0 {
			t.Errorf("recipient %d: %+v, want a temporary failure without a reply", i, res[i])
		}
	}
}

// A pooled connection reused within a second of an RSET (every recipient
// was refused) has lost go-smtp's EHLO reply; when the next hop has closed
// it meanwhile, an 8-bit message must go over a new connection, not fail
// for good with 554 5.6.3 "8BITMIME not offered".
func TestReuseAfterRsetOnClosedConnection(t *testing.T) {
	r := newRawSink(t, "rset", "8BITMIME", "SMTPUTF8")
	c := testClient(t, nil)
	res := deliver(t, c, plainTarget(r.addr), newMessage("a@example.jp", testBody, "bad@example.jp"))
	if res[0].Code != 550 {
		t.Fatalf("first message: %+v", res[0])
	}
	m := newMessage("a@example.jp", testBody, "ok@example.jp")
	m.EightBit = true
	res = deliver(t, c, plainTarget(r.addr), m)
	if !res[0].Delivered {
		t.Fatalf("8-bit message over a reused connection closed after RSET: %+v, want delivered on a new one", res[0])
	}
}

// Round-robin DNS hands out a next hop's addresses in a new order each
// time: the order must not split the pool (and its max_connections cap).
func TestPoolKeyIgnoresAddressOrder(t *testing.T) {
	a := Target{Host: "mx.test", Addrs: []string{"192.0.2.1:25", "192.0.2.2:25"}}
	b := Target{Host: "mx.test", Addrs: []string{"192.0.2.2:25", "192.0.2.1:25"}}
	if a.poolKey("gw.test") != b.poolKey("gw.test") {
		t.Errorf("pool keys differ by address order:\n%s\n%s", a.poolKey("gw.test"), b.poolKey("gw.test"))
	}
	if a.Addrs[0] != "192.0.2.1:25" || b.Addrs[0] != "192.0.2.2:25" {
		t.Errorf("poolKey reordered the target's addresses: %v %v", a.Addrs, b.Addrs)
	}
	c := Target{Host: "mx.test", Addrs: []string{"192.0.2.3:25"}}
	if a.poolKey("gw.test") == c.poolKey("gw.test") {
		t.Error("different addresses share a pool key")
	}
}

// RFC 3461 §5.2: a next hop that offers DSN gets RET, ENVID, NOTIFY and
// ORCPT as received, pipelined or not; one that does not gets none, and
// the results say so (the gateway then reports NOTIFY=SUCCESS itself).
func TestDSNParametersPassedOn(t *testing.T) {
	for _, tc := range []struct {
		ext      []string
		dsn      bool
		wantMail string
		wantRcpt []string
	}{
		{[]string{"DSN"}, true, "MAIL FROM:<a@example.jp> RET=HDRS ENVID=env+2B1",
			[]string{"RCPT TO:<ok@example.jp> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;orig+2Bx@example.jp", "RCPT TO:<ok2@example.jp> NOTIFY=NEVER", "RCPT TO:<ok3@example.jp>"}},
		{[]string{"DSN", "PIPELINING"}, true, "MAIL FROM:<a@example.jp> RET=HDRS ENVID=env+2B1",
			[]string{"RCPT TO:<ok@example.jp> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;orig+2Bx@example.jp", "RCPT TO:<ok2@example.jp> NOTIFY=NEVER", "RCPT TO:<ok3@example.jp>"}},
		{[]string{"PIPELINING"}, false, "MAIL FROM:<a@example.jp>",
			[]string{"RCPT TO:<ok@example.jp>", "RCPT TO:<ok2@example.jp>", "RCPT TO:<ok3@example.jp>"}},
		{nil, false, "MAIL FROM:<a@example.jp>",
			[]string{"RCPT TO:<ok@example.jp>", "RCPT TO:<ok2@example.jp>", "RCPT TO:<ok3@example.jp>"}},
	} {
		r := newRawSink(t, "", tc.ext...)
		c := testClient(t, nil)
		m := newMessage("a@example.jp", testBody, "ok@example.jp", "ok2@example.jp", "ok3@example.jp")
		m.Ret, m.EnvID = "hdrs", "env+1"
		m.RcptDSN = []RcptDSN{{Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;orig+x@example.jp"}, {Notify: "NEVER"}, {Notify: "NEVER,SUCCESS"}}
		res := deliver(t, c, plainTarget(r.addr), m)
		for i, x := range res {
			if !x.Delivered || x.DSN != tc.dsn {
				t.Errorf("ext %v: result %d %+v, want delivered with DSN=%v", tc.ext, i, x, tc.dsn)
			}
		}
		cmds, _ := r.recorded()
		var mail string
		var rcpts []string
		for _, c := range cmds {
			switch {
			case strings.HasPrefix(c, "MAIL"):
				mail = c
			case strings.HasPrefix(c, "RCPT"):
				rcpts = append(rcpts, c)
			}
		}
		if mail != tc.wantMail || strings.Join(rcpts, "|") != strings.Join(tc.wantRcpt, "|") {
			t.Errorf("ext %v:\n MAIL %q\nwant %q\n RCPT %q\nwant %q", tc.ext, mail, tc.wantMail, rcpts, tc.wantRcpt)
		}
	}
}

// FuzzDSNParams: whatever NOTIFY and ORCPT were stored, the parameters
// written on the wire are one line of printable words.
func FuzzDSNParams(f *testing.F) {
	f.Add("SUCCESS,FAILURE", "rfc822;a+b@example.jp", "env=1", "HDRS")
	f.Add("never,delay", "utf-8;山田@例え.jp", "", "full")
	f.Add("", "no-type@x.jp", "\x00\r\n", "x")
	f.Fuzz(func(t *testing.T, notify, orcpt, envID, ret string) {
		m := Message{Rcpts: []string{"a@x.jp"}, Ret: ret, EnvID: envID, RcptDSN: []RcptDSN{{Notify: notify, ORcpt: orcpt}}}
		var b strings.Builder
		dsnMailParams(&b, m)
		dsnRcptParams(&b, m, 0)
		out := b.String()
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("control character in %q", out)
			}
		}
		for _, w := range strings.Fields(out) {
			if !strings.Contains(w, "=") {
				t.Fatalf("parameter without a value in %q", out)
			}
		}
	})
}
