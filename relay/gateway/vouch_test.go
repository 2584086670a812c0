package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/queue"
)

// A message queued straight from the SMTP reader is vouched for as clean
// text, so delivery may send its stored bytes with sendfile(2); one a
// milter has seen (its body spooled for inspection) is not.
func TestSessionVouchesForCleanText(t *testing.T) {
	for _, inspected := range []bool{false, true} {
		hold := startSink(t)
		sec, _ := copiesSections(t, hold.addr)
		if inspected {
			addr, _ := startSubjectMilter(t)
			sec.Relay.Inspect.Milters = []milter.Config{{Name: "subject", Address: addr}}
		}
		e := startEngine(t, sec)
		d := dial(t, "127.0.0.2", e.Addrs()[0].String())
		d.do("EHLO client.example", 250)
		d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 250)
		d.do("RCPT TO:<temp@hold.example>", 250)
		d.do("DATA", 354)
		d.raw("From: tanaka@city.toyokawa.lg.jp\r\nSubject: plain\r\n\r\n" + strings.Repeat("a line\r\n", 100) + ".\r\n")
		d.expect(250)
		d.do("QUIT", 221)

		deadline := time.Now().Add(10 * time.Second)
		for {
			var found bool
			for _, m := range e.queue.List() {
				if m.Claimed || m.Rcpts[0].Attempts == 0 {
					continue
				}
				rc, err := e.queue.Open(m.ID)
				if err != nil {
					t.Fatal(err)
				}
				_, _, _, clean := rc.(queue.Stretch).Rest()
				rc.Close()
				if clean == inspected {
					t.Errorf("inspected %v: vouched for as clean text: %v", inspected, clean)
				}
				found = true
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the message did not stay in the queue for temp@hold.example")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
