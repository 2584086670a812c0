package delivery

import (
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
