package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// pingPongConfig puts a foreign domain's route on the inner server (the
// seeds' ping-pong: the inner server sends such mail back to its gateway).
const pingPongConfig = mirrorTestJP + `
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
      tls: none
    - name: partner-by-mistake
      domain: partner.example
      targets: ["{{sink "inner"}}"]
      tls: none
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
`

// Scenario 8 continued: serve says at start what config check says of the
// ping-pong, and a message that comes back from the inner server, which
// its route would take it to again, is refused on that first return
// (554 5.4.6), not after ten round trips.
func TestSeedPingPong_RefusedOnFirstReturn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The inner server is the sink on the inner address: the gateway
	// delivers to it, and what it sends back comes from that address.
	inner, err := newSink(t, "inner", innerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	w.addSink(inner)
	g := w.start(pingPongConfig)
	// Logged once the listeners are up, which start waits for: wait for
	// the line too.
	waitCount(t, g, 1, "routing.routes[1].targets")
	if g.countLog("kind=start", "routing.routes[1].targets", "a loop") == 0 {
		t.Errorf("serve did not warn of the ping-pong at start:\n%s", g.logs.String())
	}

	// send hands a message to the gateway as the inner server does and
	// returns the reply to its data.
	send := func(data string) reply {
		t.Helper()
		c, err := dialFrom(innerIP, w.port("mx"), false)
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		for _, cmd := range []string{"", "EHLO inner.test.jp\r\n", "MAIL FROM:<bucho@test.jp>\r\n", "RCPT TO:<x@partner.example>\r\n", "DATA\r\n"} {
			c.send(cmd)
			if r, err := c.readReply(); err != nil || (r.code[0] != '2' && r.code[0] != '3') {
				t.Fatalf("%q: %v %v\n%s", cmd, r, err, c.log)
			}
		}
		c.send(stuff(data) + ".\r\n")
		r, err := c.readReply()
		if err != nil {
			t.Fatalf("end of data: %v\n%s", err, c.log)
		}
		return r
	}
	// The first pass: the inner server's user writes to the partner.
	if r := send("From: bucho@test.jp\r\nSubject: hello\r\n\r\nhi\r\n"); r.code != "250" {
		t.Fatalf("first pass: %v", r)
	}
	msgs := inner.Wait(t, waitTimeout, "the message at the inner server", func(m []sinkMessage) bool { return len(m) >= 1 })
	back := string(msgs[0].Data)
	if !strings.Contains(back, "by gw.test.jp (sekisho)") {
		t.Fatalf("no Received field of ours:\n%s", back)
	}
	// The inner server sends it back, with its own Received field.
	back = fmt.Sprintf("Received: from gw.test.jp by inner.test.jp; %s\r\n", time.Now().Format(time.RFC1123Z)) + back
	if r := send(back); r.code != "554" || r.enhanced != "5.4.6" {
		t.Errorf("the message back from the inner server: %v, want 554 5.4.6", r)
	}
	// The log reaches us through a pipe, after the reply: wait for it.
	waitCount(t, g, 1, "rule=builtin:loop")
	if n := g.countLog("kind=reject", "rule=builtin:loop"); n != 1 {
		t.Errorf("%d refusals logged with rule builtin:loop, want 1", n)
	}
	if n := len(inner.Messages()); n != 1 {
		t.Errorf("the inner server got %d copies, want 1", n)
	}
}
