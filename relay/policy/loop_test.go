package policy

import (
	"net/netip"
	"testing"
)

func TestRelayedBefore(t *testing.T) {
	for _, tc := range []struct {
		h    string
		want bool
	}{
		{"Received: from a ([192.0.2.1])\r\n\tby gw.test.jp (sekisho) with ESMTP id X.1; Sun, 1 Nov 2026 00:00:00 +0900\r\nSubject: x\r\n", true},
		{"Subject: x\r\nReceived: from a by GW.TEST.JP (sekisho) with ESMTP; date\r\n", true},
		{"Received: from a\r\n by gw.test.jp\r\n (sekisho) with ESMTP; date\r\n", true},
		{"Received: from a by other.test.jp (sekisho) with ESMTP; date\r\n", false},
		{"Received: from a by gw.test.jp (Postfix) with ESMTP; date\r\n", false},
		{"Subject: by gw.test.jp (sekisho)\r\n", false},
		{"X-Note: a\r\n by gw.test.jp (sekisho)\r\n", false},
		{"", false},
	} {
		if got := relayedBefore([]byte(tc.h), "gw.test.jp"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.h, got, tc.want)
		}
	}
}

// The ping-pong: a message for a foreign domain that we relayed to the
// inner server comes back from it, and its route would take it there
// again. It is refused on its first return.
func TestDataLoop(t *testing.T) {
	p := fixture(t, false)
	ours := "Received: from inner ([192.168.0.103])\r\n\tby gw.test.jp (sekisho) with ESMTP id A.1; Sun, 1 Nov 2026 00:00:00 +0900\r\n"
	theirs := "Received: from gw.test.jp by inner.test.jp (Postfix); Sun, 1 Nov 2026 00:00:01 +0900\r\n"
	from := "From: <tanaka@test.jp>\r\n\r\n"
	tests := []struct {
		name   string
		client netip.Addr
		rcpt   string
		header string
		loop   bool
	}{
		{"back from the hop it would go to again", innerIP, "x@foreign.example", theirs + ours + from, true},
		{"first pass", innerIP, "x@foreign.example", from, false},
		{"another gateway's Received", innerIP, "x@foreign.example", "Received: from a by gw2.test.jp (sekisho) with ESMTP; d\r\n" + from, false},
		{"our own domain (a list on the inner server)", innerIP, "user1@test.jp", theirs + ours + from, false},
		{"to another hop", innerIP, "x@example.org", theirs + ours + from, false},
	}
	for _, tc := range tests {
		c := Conn{IP: tc.client, Helo: "inner"}
		d := p.Rcpt(c, "tanaka@test.jp", tc.rcpt)
		if !d.Accepted() {
			t.Fatalf("%s: RCPT refused: %+v", tc.name, d.Verdict)
		}
		_, v := p.Data(c, "tanaka@test.jp", []Decision{d}, []byte(tc.header))
		if loop := v.Rule == "builtin:loop"; loop != tc.loop || (loop && (v.Code != 554 || v.Enhanced != "5.4.6")) {
			t.Errorf("%s: %+v, loop %v", tc.name, v.Verdict, tc.loop)
		}
	}
}
