package conformance

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postfixMailboxes are the accounts Postfix, as the inner server, knows:
// the gateway mirrors user2@test.jp too, so Postfix refuses it at RCPT.
var postfixMailboxes = []string{"postmaster@test.jp", "bucho@test.jp", "tanaka@test.jp", "user1@test.jp"}

// Configuration C with a real Postfix as the inner server: the gateway
// routes test.jp to Postfix's smtpd on loopback; Postfix relays what it
// accepts to the sink "mailstore". Postfix >= 3.4 offers PIPELINING and
// CHUNKING, so the gateway sends MAIL, the RCPTs and BDAT in one write;
// Postfix's own session summaries ("disconnect from ... bdat=1") show
// which command carried each message.
func TestPostfixInner_BDATInterop(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mailstore := w.sink("mailstore")
	pf := startPostfix(t, mailstore.addr, postfixMailboxes)
	cfg := configC("")
	const innerRoute = `targets: ["{{sink "inner"}}"]`
	if strings.Count(cfg, innerRoute) != 1 {
		t.Fatalf("configuration C no longer has the one route to the inner sink %s", innerRoute)
	}
	g := w.start(strings.Replace(cfg, innerRoute, fmt.Sprintf("targets: [%q]", pf.addr), 1))
	internet := w.sink("internet")

	// arrived waits for the message with subject at the mailstore.
	arrived := func(t *testing.T, subject string) sinkMessage {
		t.Helper()
		var got sinkMessage
		mailstore.Wait(t, waitTimeout, "the message "+subject, func(msgs []sinkMessage) bool {
			for _, m := range msgs {
				if strings.Contains(m.header(), "Subject: "+subject+"\r\n") {
					got = m
					return true
				}
			}
			return false
		})
		return got
	}
	// commands are the commands Postfix's smtpd received since mark.
	commands := func(t *testing.T, mark int) map[string]int {
		t.Helper()
		counts, log := pf.smtpdCommands(t, mark)
		t.Logf("Postfix's smtpd sessions: %v\n%s", counts, grepLines(log, "postfix/smtpd"))
		return counts
	}
	long := strings.Repeat("0123456789", 500) // 5,000 bytes: past RFC 5321's 998

	t.Run("dots and a long line in one BDAT", func(t *testing.T) {
		mark, logMark := pf.logSize(), len(g.logs.String())
		params := map[string]any{"Subject": "dots and a long line", "Long": long}
		w.dialogueFile(t, "postfix-dots-long-line", params)
		m := arrived(t, "dots and a long line")
		checkBody(t, m, sentBody(t, "postfix-dots-long-line", params))
		if !strings.Contains(m.header(), "by inner.test.jp (Postfix)") {
			t.Errorf("the message did not pass through Postfix (no Received field of inner.test.jp):\n%s", m.header())
		}
		// Postfix answers the last BDAT "Ok: N bytes queued as", DATA's
		// final dot "Ok: queued as": the gateway's log shows which it got.
		if r := deliveredReply(t, g, logMark, "user1@test.jp"); !bdatQueued.MatchString(r) {
			t.Errorf("the gateway logged the delivery with Postfix's reply %q, want Postfix's reply to BDAT LAST (%v)", r, bdatQueued)
		}
		c := commands(t, mark)
		if c["bdat"] != 1 || c["data"] != 0 {
			t.Errorf("Postfix received %d BDAT and %d DATA; want the message in one BDAT (n LAST)", c["bdat"], c["data"])
		}
	})

	t.Run("over 300 KiB in several chunks", func(t *testing.T) {
		mark, logMark := pf.logSize(), len(g.logs.String())
		body := bigBody(310 << 10)
		msg := "From: <partner@example.org>\r\nTo: <user1@test.jp>\r\nSubject: over 300 KiB\r\n" +
			"Message-ID: <over-300-KiB@conformance.test>\r\nDate: Sun, 29 Nov 2026 16:00:00 +0900\r\n\r\n" + body
		w.dialogueFile(t, "send-message", map[string]string{
			"Source": "internet", "From": "partner@example.org", "Rcpt": "user1@test.jp", "Data": stuff(msg)})
		checkBody(t, arrived(t, "over 300 KiB"), body)
		if r := deliveredReply(t, g, logMark, "user1@test.jp"); !bdatQueued.MatchString(r) {
			t.Errorf("the gateway logged the delivery with Postfix's reply %q, want Postfix's reply to BDAT LAST (%v)", r, bdatQueued)
		}
		c := commands(t, mark)
		if c["bdat"] < 2 || c["data"] != 0 {
			t.Errorf("Postfix received %d BDAT and %d DATA; want the %d-byte message in several BDAT chunks", c["bdat"], c["data"], len(msg))
		}
	})

	t.Run("one recipient refused at RCPT, DSN to the sender", func(t *testing.T) {
		mark := pf.logSize()
		w.dialogueFile(t, "postfix-refused-recipient", nil)
		m := arrived(t, "one known one unknown")
		if len(m.To) != 1 || m.To[0] != "user1@test.jp" {
			t.Errorf("Postfix passed the message on for %v, want only user1@test.jp", m.To)
		}
		var dsn sinkMessage
		for _, d := range internet.Messages() {
			if d.From == "" && strings.Contains(string(d.Data), "user2@test.jp") {
				dsn = d
			}
		}
		checkDSN(t, dsn, "user2@test.jp", "failed")
		if !strings.Contains(string(dsn.Data), "User unknown in relay recipient table") {
			t.Errorf("the DSN does not carry Postfix's reply:\n%s", dsn.Data)
		}
		if strings.Contains(strings.ReplaceAll(string(dsn.Data), "rfc822; ", "rfc822;"), "Final-Recipient: rfc822;user1@test.jp") {
			t.Errorf("the DSN reports the delivered recipient user1@test.jp too:\n%s", dsn.Data)
		}
		if n := g.countLog("delivery", "rcpt=user2@test.jp", "code=550", "User unknown in relay recipient table"); n < 1 {
			t.Errorf("no delivery log line shows Postfix's 550 for user2@test.jp")
		}
		if c := commands(t, mark); c["bdat"] < 1 || c["data"] != 0 {
			t.Errorf("Postfix received %d BDAT and %d DATA; want BDAT", c["bdat"], c["data"])
		}
	})

	t.Run("relay.delivery.chunking false sends DATA", func(t *testing.T) {
		good := readFile(g.cfg)
		noChunking := strings.Replace(good, "    idle_timeout: 1s\n", "    idle_timeout: 1s\n    chunking: false\n", 1)
		if noChunking == good {
			t.Fatal("the configuration has no relay.delivery block to set chunking: false in")
		}
		if err := os.WriteFile(g.cfg, []byte(noChunking), 0o644); err != nil {
			t.Fatal(err)
		}
		reloaded := g.countLog("configuration reloaded")
		g.signal(t, syscall.SIGHUP)
		waitCount(t, g, reloaded+1, "configuration reloaded")
		mark, logMark := pf.logSize(), len(g.logs.String())
		params := map[string]any{"Subject": "dots and a long line with DATA", "Long": long}
		w.dialogueFile(t, "postfix-dots-long-line", params)
		checkBody(t, arrived(t, "dots and a long line with DATA"), sentBody(t, "postfix-dots-long-line", params))
		if r := deliveredReply(t, g, logMark, "user1@test.jp"); !dataQueued.MatchString(r) {
			t.Errorf("the gateway logged the delivery with Postfix's reply %q, want Postfix's reply to DATA (%v)", r, dataQueued)
		}
		c := commands(t, mark)
		if c["data"] != 1 || c["bdat"] != 0 {
			t.Errorf("Postfix received %d DATA and %d BDAT; want DATA only with relay.delivery.chunking false", c["data"], c["bdat"])
		}
	})
}

// Postfix's replies to the last BDAT and to DATA's final dot.
var (
	bdatQueued = regexp.MustCompile(`^250 2\.0\.0 Ok: \d+ bytes queued as [0-9A-Z]+$`)
	dataQueued = regexp.MustCompile(`^250 2\.0\.0 Ok: queued as [0-9A-Z]+$`)
)

var deliveredRE = regexp.MustCompile(`msg=delivery .* rcpt=(\S+) .*result=delivered code=\d+ reply="((?:[^"\\]|\\.)*)"`)

// deliveredReply waits for the gateway's log line of a delivery to rcpt
// written after mark (a length of its output) and returns the next hop's
// reply it shows. The gateway logs a delivery after recording it, which
// may be after Postfix has passed the message on.
func deliveredReply(t *testing.T, g *gateway, mark int, rcpt string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, l := range strings.Split(g.logs.String()[mark:], "\n") {
			if m := deliveredRE.FindStringSubmatch(l); m != nil && m[1] == rcpt {
				return m[2]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway logged no delivery to %s within %v", rcpt, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkBody compares what follows the header block with want, byte for
// byte (Postfix adds a Received field to the header).
func checkBody(t *testing.T, m sinkMessage, want string) {
	t.Helper()
	if got := m.body(); got != want {
		t.Errorf("the body changed on the way (%d bytes, want %d):\n got %.300q\nwant %.300q", len(got), len(want), got, want)
	}
}

// sentBody is the body of the message steps/NAME.txt sends: its D:
// lines after the header block, with DATA's dot-stuffing undone.
func sentBody(t *testing.T, name string, params any) string {
	t.Helper()
	_, body, ok := strings.Cut(dataSent(t, name, params), "\r\n\r\n")
	if !ok {
		t.Fatalf("steps/%s.txt sends no header block", name)
	}
	return unstuff(body)
}

// unstuff undoes DATA's dot-stuffing: a line's leading dot goes once.
func unstuff(s string) string {
	lines := strings.SplitAfter(s, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ".")
	}
	return strings.Join(lines, "")
}

// stuff dot-stuffs a message for DATA.
func stuff(s string) string {
	lines := strings.SplitAfter(s, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "")
}

// bigBody is a body of at least n bytes in numbered lines, every hundredth
// one starting with a dot.
func bigBody(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		lead := ""
		if i%100 == 0 {
			lead = "."
		}
		fmt.Fprintf(&b, "%sline %06d of a message in several chunks, numbered so a lost or doubled piece shows\r\n", lead, i)
	}
	return b.String()
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
