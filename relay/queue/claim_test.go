package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func waitWaiters(t *testing.T, q *Spool, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		n := len(q.waiters)
		q.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d Claim callers waiting, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClaimWakesOnePerDueMessage: a new message wakes one waiting worker,
// not all of them; when several messages are due at once the wake passes
// from worker to worker until each has one; a worker that leaves (its
// context ends) takes no wake with it.
func TestClaimWakesOnePerDueMessage(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	start := time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)
	clock.Store(&start)
	now := func() time.Time { return *clock.Load() }
	q := openTest(t, testConfig(t.TempDir()), WithClock(now))

	// Five messages deferred to the same minute.
	for i := range 5 {
		enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 100))
	}
	for _, m := range q.Due(now(), 5) {
		must(t, q.MarkDeferred(m.ID, 0, start.Add(time.Minute), "451 4.4.1 later"))
		q.Unclaim(m.ID)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	claimed := make(chan ID, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := q.Claim(ctx)
			if err == nil {
				claimed <- m.ID
			} else if !errors.Is(err, context.Canceled) {
				t.Errorf("Claim: %v", err)
			}
		}()
	}
	waitWaiters(t, q, 8)

	// One new message: one worker.
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(9, 100))
	<-claimed
	waitWaiters(t, q, 7)

	// The minute passes on the spool's clock (the workers' timers run on
	// the real one): the next new message finds six due, and the wake
	// goes round until six workers have one each.
	later := start.Add(2 * time.Minute)
	clock.Store(&later)
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(10, 100))
	seen := map[ID]bool{}
	for range 6 {
		select {
		case id := <-claimed:
			if seen[id] {
				t.Fatalf("message %s claimed twice", id)
			}
			seen[id] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 6 due messages claimed", len(seen))
		}
	}
	waitWaiters(t, q, 1)

	// A wake taken by a worker that leaves is passed on. The last of the
	// eight takes one more message, which is deferred to minute 3; two
	// new workers wait for it, and the clock passes minute 3 without a
	// wake (only their real timers would notice it, in a minute).
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(11, 100))
	x := <-claimed
	waitWaiters(t, q, 0)
	must(t, q.MarkDeferred(x, 0, start.Add(3*time.Minute), "451 4.4.1 later"))
	q.Unclaim(x)
	leaver, stay := context.WithCancel(context.Background())
	defer stay()
	for i, c := range []context.Context{leaver, context.Background()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m, err := q.Claim(c); err == nil {
				claimed <- m.ID
			}
		}()
		waitWaiters(t, q, i+1)
	}
	end := start.Add(4 * time.Minute)
	clock.Store(&end)
	// The leaver is cancelled and, before it gets the lock to leave,
	// notified: the wake must reach the other worker, which takes x.
	q.mu.Lock()
	stay()
	w := q.waiters[0]
	q.dropWaiter(w)
	w <- struct{}{}
	q.mu.Unlock()
	select {
	case id := <-claimed:
		if id != x {
			t.Errorf("claimed %s, want %s", id, x)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wake left with a cancelled worker: the due message waits")
	}
	cancel()
	q.Close()
	wg.Wait()
}
