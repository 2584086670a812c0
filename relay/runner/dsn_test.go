package runner

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/queue/faultfs"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// RFC 3461: a next hop that offers DSN gets NOTIFY, ORCPT, ENVID and RET
// and sends the notifications itself; one that does not gets none, and
// the gateway answers NOTIFY=SUCCESS with a "relayed" notification, once.
// NOTIFY=NEVER reaches the next hop, so it does not bounce either.
func TestDSNRelayedAndPassedOn(t *testing.T) {
	for _, offer := range []bool{true, false} {
		h := startHop(t, offer)
		f, _ := newFixture(t, &faultfs.Disk{}, h, nil)
		enqueueTo(t, f.queue, []queue.Recipient{
			{Addr: "receipt@partner.example", Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;receipt@partner.example"},
			{Addr: "never@partner.example", Notify: "NEVER"},
			{Addr: "plain@partner.example"},
		}, func(env *queue.Envelope) { env.EnvID, env.Ret = "env-42", "HDRS" })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f.start(ctx)
		waitFor(t, 5*time.Second, "the queue to drain", func() bool { return f.queue.Stats().Messages == 0 })

		h.mu.Lock()
		receipt, never := h.rcpt["receipt@partner.example"], h.rcpt["never@partner.example"]
		mail := h.mail
		h.mu.Unlock()
		files := f.innerFiles(t)
		if offer {
			if len(receipt.Notify) != 2 || receipt.OriginalRecipient != "receipt@partner.example" ||
				len(never.Notify) != 1 || never.Notify[0] != smtp.DSNNotifyNever {
				t.Errorf("DSN next hop got RCPT options %+v and %+v", receipt, never)
			}
			if len(mail) != 1 || mail[0].EnvelopeID != "env-42" || mail[0].Return != smtp.DSNReturnHeaders {
				t.Errorf("DSN next hop got MAIL options %+v", mail)
			}
			if len(files) != 0 {
				t.Errorf("the gateway sent %d notifications though the next hop took DSN", len(files))
			}
			continue
		}
		if len(receipt.Notify) != 0 || receipt.OriginalRecipient != "" {
			t.Errorf("next hop without DSN got RCPT options %+v", receipt)
		}
		if len(files) != 1 {
			t.Fatalf("%d notifications, want one receipt", len(files))
		}
		b, _ := os.ReadFile(files[0])
		for _, want := range []string{"X-Sekisho-Envelope-From: <>", "Action: relayed", "Status: 2.0.0",
			"Final-Recipient: rfc822; receipt@partner.example", "Original-Envelope-Id: env-42"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("receipt lacks %q:\n%s", want, b)
			}
		}
		if strings.Contains(string(b), "never@") || strings.Contains(string(b), "plain@") {
			t.Errorf("receipt names recipients that did not ask for one:\n%s", b)
		}
	}
}

// A bounce is 7-bit and queued as such: queued as 8BITMIME, a next hop
// without 8BITMIME refused it for good, and a bounce of a bounce is never
// sent, so it vanished.
func TestBounceQueued7Bit(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) {
		c.Delivery.RefusalRetries = 0
		// The sender's mailbox is unreachable: the bounce stays queued.
		c.Routing.Routes[0].TargetConfig = routing.TargetConfig{Targets: []string{closedAddr(t)}, TLS: "none"}
	})
	enqueueTo(t, f.queue, []queue.Recipient{{Addr: "perm@partner.example"}}, func(env *queue.Envelope) { env.BodyType = "8BITMIME" })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	var bounce *queue.Message
	waitFor(t, 5*time.Second, "the bounce", func() bool {
		for _, m := range f.queue.List() {
			if m.Envelope.From == "" {
				bounce = &m
				return true
			}
		}
		return false
	})
	if bounce.Envelope.BodyType != "7BIT" {
		t.Errorf("bounce queued with BODY=%s, want 7BIT", bounce.Envelope.BodyType)
	}
}

// The next attempt is timed from the end of the attempt: a next hop that
// stalls gets the whole retry interval of rest, not less.
func TestRetryCountsFromAttemptEnd(t *testing.T) {
	h := startHop(t, false)
	h.stall = 600 * time.Millisecond
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) {
		c.Delivery.RetryInterval = time.Second
		c.Delivery.Backoff = 1
	})
	enqueueTo(t, f.queue, []queue.Recipient{{Addr: "temp@partner.example"}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	f.start(ctx)
	var st queue.RcptState
	waitFor(t, 5*time.Second, "the deferral", func() bool {
		l := f.queue.List()
		if len(l) == 1 && l[0].Rcpts[0].Attempts > 0 {
			st = l[0].Rcpts[0]
			return true
		}
		return false
	})
	// retry_interval 1 s with ±10 % jitter, after a 0.6 s stall.
	if rest := st.NextAttempt.Sub(start); rest < 1500*time.Millisecond-100*time.Millisecond {
		t.Errorf("next attempt %v after the attempt began, want at least the 0.6 s stall plus 0.9 s", rest)
	}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// E-Post's fail report: with relay.delivery.fail_report_to set, the
// postmaster gets a copy of each bounce (header only, as in the bounce),
// queued in the same commit; delay warnings are not copied.
func TestFailReportToPostmaster(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) {
		c.Delivery.RefusalRetries = 0
		c.Delivery.FailReportTo = "postmaster@city.toyokawa.lg.jp"
	})
	enqueueTo(t, f.queue, []queue.Recipient{{Addr: "perm@partner.example"}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	waitFor(t, 5*time.Second, "the queue to drain", func() bool { return f.queue.Stats().Messages == 0 })
	files := f.innerFiles(t)
	if len(files) != 1 {
		t.Fatalf("%d files delivered inside, want the bounce with both recipients in one", len(files))
	}
	b, _ := os.ReadFile(files[0])
	for _, want := range []string{"X-Sekisho-Envelope-To: <tanaka@city.toyokawa.lg.jp>", "X-Sekisho-Envelope-To: <postmaster@city.toyokawa.lg.jp>",
		"Action: failed", "text/rfc822-headers", "Subject: t"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bounce lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "\r\n\r\nbody\r\n") {
		t.Errorf("the copy carries the original body:\n%s", b)
	}
}

// With fail_report_content: full the postmaster's copy is a notification
// of its own with the whole original message; the sender's bounce still
// has the header only.
func TestFailReportFull(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) {
		c.Delivery.RefusalRetries = 0
		c.Delivery.FailReportTo = "postmaster@city.toyokawa.lg.jp"
		c.Delivery.FailReportContent = "full"
	})
	enqueueTo(t, f.queue, []queue.Recipient{{Addr: "perm@partner.example"}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	waitFor(t, 5*time.Second, "the bounce and the copy", func() bool { return len(f.innerFiles(t)) == 2 })
	var sender, pmCopy string
	for _, f := range f.innerFiles(t) {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "X-Sekisho-Envelope-To: <postmaster@") {
			pmCopy = string(b)
		} else {
			sender = string(b)
		}
	}
	if !strings.Contains(pmCopy, "Content-Type: message/rfc822") || !strings.Contains(pmCopy, "Subject: t\r\n\r\nbody\r\n") {
		t.Errorf("the postmaster's copy lacks the whole message:\n%s", pmCopy)
	}
	if !strings.Contains(sender, "text/rfc822-headers") || strings.Contains(sender, "\r\n\r\nbody\r\n") || strings.Contains(sender, "To: <postmaster@") {
		t.Errorf("the sender's bounce:\n%s", sender)
	}
}

// Internet mail the sanitize rules select never reaches the postmaster
// whole: with fail_report_content: full its report carries the header
// only, as the bounce does.
func TestFailReportFullOfSanitizedMail(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) {
		c.Delivery.RefusalRetries = 0
		c.Delivery.FailReportTo = "postmaster@city.toyokawa.lg.jp"
		c.Delivery.FailReportContent = "full"
	})
	sc := sanitize.DefaultConfig()
	sc.Rules = []sanitize.Rule{{Source: "internet", Routes: []string{"inner"}}}
	sc.Quarantine.Dir = filepath.Join(t.TempDir(), "quarantine")
	stage, err := sanitize.NewStage(sc, nil, sanitize.StageDeps{})
	if err != nil {
		t.Fatal(err)
	}
	snap := *f.snap.Load()
	snap.Sanitize = stage
	f.snap.Store(&snap)
	enqueueTo(t, f.queue, []queue.Recipient{{Addr: "perm@partner.example"}}, func(e *queue.Envelope) {
		e.From, e.Source = "tanaka@city.toyokawa.lg.jp", rewrite.SourceInternet
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	waitFor(t, 5*time.Second, "the queue to drain", func() bool { return f.queue.Stats().Messages == 0 })
	files := f.innerFiles(t)
	if len(files) != 1 {
		t.Fatalf("%d files delivered inside, want the bounce with the postmaster's copy in one", len(files))
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "X-Sekisho-Envelope-To: <postmaster@") || !strings.Contains(string(b), "text/rfc822-headers") ||
		strings.Contains(string(b), "message/rfc822") || strings.Contains(string(b), "\r\n\r\nbody\r\n") {
		t.Errorf("the postmaster's copy of internet mail:\n%s", b)
	}
}
