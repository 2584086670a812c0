package conformance

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scenario 9: the next hop is down, then up: the message waits in the
// queue, is retried at the configured interval (E-Post's resend interval),
// and is delivered once the inner server is back.
func TestSeedQueue_NextHopDownThenUpRetriedAndDelivered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(""))
	inner := w.sinks["inner"]
	inner.Down()
	w.dialogueFile(t, "queue-while-inner-down", nil)
	// At least two attempts failed: the first and one retry.
	deadline := time.Now().Add(waitTimeout)
	for {
		q := g.queue(t)
		if len(q) == 1 && len(q[0].States) == 1 && q[0].States[0].Attempts >= 2 {
			if st := q[0].States[0]; st.Status != "deferred" || st.LastError == "" {
				t.Errorf("recipient state %+v, want deferred with the last error", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry within %v; queue: %+v", waitTimeout, q)
		}
		time.Sleep(200 * time.Millisecond)
	}
	inner.Up(t)
	w.dialogueFile(t, "queue-inner-back", nil)
}

// Scenario 9: a 5xx from the next hop. As E-Post's delivery agent does by
// default ("Resending refusal 1(times)"), a refused recipient is tried once
// more, then bounced: the DSN reaches the sender at the inner server, and
// the other recipient of the same message is delivered once.
func TestSeedQueue_PermanentRefusalRetriedOnceThenDSNToSender(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(""))
	internet := w.sinks["internet"]
	internet.Refuse("nosuchuser@example.org", 550, "5.1.1")
	w.dialogueFile(t, "queue-permanent-refusal", nil)
	if r := internet.Refused(); len(r) != 2 {
		t.Errorf("the refused recipient was tried %d time(s) (%v), want 2: the first attempt and E-Post's one refusal retry", len(r), r)
	}
	dsn := w.sinks["inner"].Messages()[0]
	checkDSN(t, dsn, "nosuchuser@example.org", "failed")
	if !strings.Contains(string(dsn.Data), "5.1.1") {
		t.Errorf("the DSN does not carry the remote status 5.1.1:\n%s", dsn.Data)
	}
	if strings.Contains(string(dsn.Data), "Final-Recipient: rfc822;partner@example.org") ||
		strings.Contains(string(dsn.Data), "Final-Recipient: rfc822; partner@example.org") {
		t.Errorf("the DSN reports the delivered recipient too:\n%s", dsn.Data)
	}
}

// Scenario 9: kill -9 during a stream of messages. Every message that got
// its 250 is delivered after the restart (at least once: a delivery in
// flight at the kill may be repeated).
func TestSeedQueue_KillDuringStreamEveryAcceptedMessageDelivered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(""))
	inner := w.sinks["inner"]
	inner.SetDelay(30 * time.Millisecond) // so that deliveries are in flight at the kill
	addr := w.port("mx")

	const senders = 4
	var (
		mu       sync.Mutex
		accepted []string // subjects that got 250
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streamMessages(addr, s, stop, func(subject string) {
				mu.Lock()
				accepted = append(accepted, subject)
				mu.Unlock()
			})
		}()
	}
	// Let a good number through, then crash the gateway mid-stream.
	deadline := time.Now().Add(waitTimeout)
	for {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d messages accepted within %v", n, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.kill(t)
	close(stop)
	wg.Wait()
	delivered := len(inner.Messages())
	mu.Lock()
	want := append([]string(nil), accepted...)
	mu.Unlock()
	t.Logf("killed after %d accepted messages, %d of them delivered before the kill", len(want), delivered)

	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	bySubject := func(msgs []sinkMessage) map[string]int {
		got := map[string]int{}
		for _, m := range msgs {
			for _, line := range strings.Split(m.header(), "\r\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					got[s]++
				}
			}
		}
		return got
	}
	inner.Wait(t, waitTimeout, fmt.Sprintf("all %d accepted messages", len(want)), func(msgs []sinkMessage) bool {
		got := bySubject(msgs)
		for _, s := range want {
			if got[s] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, n := range bySubject(inner.Messages()) {
		if n > 1 {
			dups += n - 1
		}
	}
	t.Logf("after the restart: %d accepted messages all delivered; %d duplicate deliveries", len(want), dups)
	g.waitQueueEmpty(t)
}

// streamMessages sends messages on one connection until stop is closed or
// the connection breaks, reporting each message that got its 250.
func streamMessages(addr string, sender int, stop <-chan struct{}, accepted func(subject string)) {
	c, err := dialFrom(internetIP, addr, false)
	if err != nil {
		return
	}
	defer c.conn.Close()
	expect := func(code string) bool {
		r, err := c.readReply()
		return err == nil && r.code == code
	}
	if !expect("220") {
		return
	}
	c.send("EHLO stream.example.org\r\n")
	if !expect("250") {
		return
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		subject := fmt.Sprintf("stream %d-%d", sender, i)
		c.send("MAIL FROM:<stream@example.org>\r\nRCPT TO:<bucho@test.jp>\r\nDATA\r\n")
		for _, code := range []string{"250", "250", "354"} {
			if !expect(code) {
				return
			}
		}
		c.send("From: <stream@example.org>\r\nTo: <bucho@test.jp>\r\nSubject: " + subject + "\r\n\r\n" +
			strings.Repeat("A line of the message body to give it some size.\r\n", 20) + ".\r\n")
		if !expect("250") {
			return
		}
		accepted(subject)
	}
}
