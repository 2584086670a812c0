package runner

import (
	"context"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/queue/faultfs"
)

func TestRetryDelay(t *testing.T) {
	d := DefaultConfig()
	for attempt := 1; attempt < 6; attempt++ {
		got := retryDelay(d, attempt)
		if got < 108*time.Second || got > 132*time.Second {
			t.Errorf("fixed interval, attempt %d: %v, want 120 s ± 10%%", attempt, got)
		}
	}
	d.Backoff, d.MaxInterval = 2, 10*time.Minute
	if got := retryDelay(d, 3); got < 432*time.Second || got > 528*time.Second {
		t.Errorf("backoff 2, attempt 3: %v, want 480 s ± 10%%", got)
	}
	if got := retryDelay(d, 10); got > 11*time.Minute {
		t.Errorf("capped: %v", got)
	}
}

func TestGiveUp(t *testing.T) {
	d := DefaultConfig()
	r := &Runner{}
	now := time.Now()
	young := queueMessage(now.Add(-time.Minute))
	old := queueMessage(now.Add(-9 * time.Hour))
	ancient := queueMessage(now.Add(-25 * time.Hour))
	cases := []struct {
		name string
		m    queueMsg
		refs int
		o    outcome
		want bool
	}{
		{"first 5xx is retried once", young, 0, outcome{code: 550}, false},
		{"second 5xx bounces", young, 1, outcome{code: 550}, true},
		{"4xx within 8 h", young, 0, outcome{code: 451, temporary: true}, false},
		{"4xx after 8 h", old, 0, outcome{code: 451, temporary: true}, true},
		{"no answer after 9 h is retried", old, 0, outcome{temporary: true}, false},
		{"no answer after 24 h", ancient, 0, outcome{temporary: true}, true},
	}
	for _, c := range cases {
		rs := c.m.Rcpts[0]
		rs.Refusals = c.refs
		if got := r.giveUp(d, c.m.Message, rs, c.o, now); got != c.want {
			t.Errorf("%s: giveUp = %v", c.name, got)
		}
	}
}

type queueMsg struct{ queue.Message }

func queueMessage(received time.Time) queueMsg {
	return queueMsg{queue.Message{Envelope: queue.Envelope{ReceivedAt: received, Rcpts: []queue.Recipient{{Addr: "a@b.example"}}},
		Rcpts: []queue.RcptState{{}}}}
}

// A reload resizes the workers and replaces the delivery client when its
// settings change; the old client is retired, not cut off.
func TestReconfigure(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, func(c *fixtureConfig) { c.Delivery.Workers = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	old := f.runner.client
	next := *f.snap.Load()
	next.Delivery.Workers, next.Delivery.CommandTimeout = 5, 42*time.Second
	f.snap.Store(&next)
	f.runner.Reconfigure()
	f.runner.mu.Lock()
	cl := f.runner.client
	f.runner.mu.Unlock()
	if n := f.runner.Workers(); n != 5 {
		t.Errorf("%d workers after reload, want 5", n)
	}
	if cl == old || cl.opts.CommandTimeout != 42*time.Second || !old.retired {
		t.Errorf("delivery client not replaced: %+v", cl.opts)
	}
	next.Delivery.Workers = 1
	f.snap.Store(&next)
	f.runner.Reconfigure()
	if n := f.runner.Workers(); n != 1 {
		t.Errorf("%d workers after the second reload, want 1", n)
	}
}
