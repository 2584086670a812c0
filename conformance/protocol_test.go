package conformance

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// smugglingProbes are the ends of DATA that some servers take for
// <CRLF>.<CRLF> and others do not (SMTP smuggling, CVE-2023-51764/5/6).
//
// internet is the reply expected from the internet, where bare line
// endings are refused: every probe holds one, and the strict reader finds
// it however the probe ends.
var smugglingProbes = []struct{ name, end, internet string }{
	{"LF.LF", "\n.\n", "550 5.6.0"},
	{"CRLF.LF", "\r\n.\n", "550 5.6.0"},
	{"LF.CRLF", "\n.\r\n", "550 5.6.0"},
	{"CR.CRLF", "\r.\r\n", "550 5.6.0"},
	{"CRLF.CR", "\r\n.\r", "550 5.6.0"},
	{"CR.CR", "\r.\r", "550 5.6.0"},
}

// Scenario 10: SMTP smuggling. A body carrying a fake end of data followed
// by a second transaction must never produce a second message anywhere:
// from the internet the bare line ending is refused (550 5.6.0), from the
// inner server it is normalized into the one message, whose dots are then
// escaped on the way out.
//
// The probes stay a Go table, each end beside its expected reply: as
// twelve files the table's point (one message, six ends, two sources)
// would be lost. The dialogue, with the smuggled transaction, is
// testdata/dialogues/steps/smuggling-probe.txt.
func TestSeedProtocol_SMTPSmugglingNeverMakesASecondMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(""))
	for i, p := range smugglingProbes {
		for _, src := range []struct{ name, sender, want string }{
			{"internet", "smuggler@example.net", p.internet},
			{"inner", "bucho@test.jp", "250 2.0.0"},
		} {
			t.Run(p.name+"_from_"+src.name, func(t *testing.T) {
				w.dialogueFile(t, "smuggling-probe", map[string]any{
					"Source": src.name, "Sender": src.sender, "N": i, "End": p.end, "Want": src.want,
				})
			})
		}
	}
	w.gw.waitQueueEmpty(t)
	for _, name := range w.order {
		for _, m := range w.sinks[name].Messages() {
			if m.From == "evil@example.net" || containsFold(m.To, "user2@test.jp") || containsFold(m.To, "victim@example.org") {
				t.Errorf("sink %s got a smuggled message: %s\n%s", name, m, m.Data)
			}
		}
	}
	var fromInner int
	for _, m := range w.sinks["inner"].Messages() {
		if m.From == "bucho@test.jp" {
			fromInner++
		}
		if !strings.Contains(m.body(), "smuggled") {
			t.Errorf("the message lost the text after the fake end: %q", m.body())
		}
		if bare := bareLineEnding(m.Data); bare >= 0 {
			t.Errorf("the delivered message still has a bare CR or LF at byte %d: %q", bare, m.Data)
		}
	}
	if fromInner != len(smugglingProbes) {
		t.Errorf("inner server got %d messages from the inner probes, want %d", fromInner, len(smugglingProbes))
	}
}

// bareLineEnding returns the offset of the first CR not followed by LF or
// LF not preceded by CR, or -1.
func bareLineEnding(b []byte) int {
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return i
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return i
		}
	}
	return -1
}

// Scenario 10: a client that sends nothing is disconnected after the idle
// timeout (a stalled DATA: testdata/dialogues/stalled-data.txt).
func TestSeedProtocol_IdleClientDisconnected(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(`
limits:
  idle_timeout: 2s
`))
	t.Run("silent_client", func(t *testing.T) {
		start := time.Now()
		w.dialogueFile(t, "silent-client", nil)
		if d := time.Since(start); d < 1500*time.Millisecond || d > 10*time.Second {
			t.Errorf("a silent client was disconnected after %v, want about the 2 s idle timeout", d)
		}
	})
}

// Scenario 10: a hundred idle connections do not keep a new client from
// being served; the per-client limit answers 421 4.7.0 beyond its bound.
func TestSeedProtocol_HundredIdleConnectionsDoNotBlockNewClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(`
limits:
  max_connections_per_ip: 20
`))
	addr := w.port("mx")
	var idle []net.Conn
	var mu sync.Mutex
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.3.%d", 1+i/10) // 10 clients, 10 connections each
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			idle = append(idle, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("opening idle connections: %v", err)
	}
	w.dialogueFile(t, "past-the-idle-crowd", nil)
	// One client holding 20 connections gets 421 4.7.0 on the 21st.
	for range 20 {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.4.1")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	w.dialogueFile(t, "connection-limit-per-client", nil)
}
