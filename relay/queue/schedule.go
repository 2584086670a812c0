package queue

import (
	"container/heap"
	"context"
	"time"
)

// The schedule is a min-heap of the messages waiting for delivery, by the
// earliest time one of their recipients is due. Claimed and held messages
// are not in it.
type schedHeap []*entry

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].id < h[j].id
}
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *schedHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}

// dueTime is the earliest next attempt among the unfinished recipients
// (the zero time for a recipient never tried: due at once).
func (e *entry) dueTime() time.Time {
	var due time.Time
	first := true
	for _, st := range e.rcpts {
		if st.Status.Final() {
			continue
		}
		if first || st.NextAttempt.Before(due) {
			due, first = st.NextAttempt, false
		}
	}
	return due
}

// reschedule puts a live message in its place in the schedule, or takes it
// out while it is claimed or held. Called with q.mu held.
func (q *Spool) reschedule(e *entry) {
	if e.claimed || e.held {
		q.unschedule(e)
		return
	}
	e.due = e.dueTime()
	if e.due.Before(e.notBefore) {
		e.due = e.notBefore
	}
	if e.heapIdx < 0 {
		heap.Push(&q.sched, e)
	} else {
		heap.Fix(&q.sched, e.heapIdx)
	}
	if e.heapIdx == 0 {
		q.notify()
	}
}

func (q *Spool) unschedule(e *entry) {
	if e.heapIdx >= 0 {
		heap.Remove(&q.sched, e.heapIdx)
	}
}

// notify wakes one Claim caller: the head of the schedule may be due
// sooner. One, not all: with dozens of idle delivery workers, waking every
// one for each new message cost more than the delivery. The one woken
// wakes the next when it leaves a due message behind (see Claim), so a
// burst still fans out to as many workers as it needs. The newest waiter
// goes first: its stack is the likeliest still in the CPU's cache.
func (q *Spool) notify() {
	if n := len(q.waiters); n > 0 {
		w := q.waiters[n-1]
		q.waiters = q.waiters[:n-1]
		w <- struct{}{} // buffered, and a waiter is in the list once
	}
}

// dropWaiter takes w out of the waiters, if notify has not already.
func (q *Spool) dropWaiter(w chan struct{}) {
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// Due claims up to max messages that have a recipient due at now, earliest
// first, and returns their snapshots. A claimed message is not returned
// again until Unclaim: the caller delivers the recipients in Message.Due,
// records each result with MarkDelivered/MarkDeferred/MarkFailed or
// EnqueueDSN, then calls Unclaim.
func (q *Spool) Due(now time.Time, max int) []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Message
	for len(out) < max && len(q.sched) > 0 && !q.sched[0].due.After(now) {
		e := heap.Pop(&q.sched).(*entry)
		e.claimed = true
		out = append(out, e.snapshot())
	}
	return out
}

// Claim waits until a message is due, claims it and returns its snapshot,
// as Due does for one message. It returns ctx.Err() when ctx ends and
// ErrClosed when the queue is closed.
func (q *Spool) Claim(ctx context.Context) (Message, error) {
	var timer *time.Timer
	var wake chan struct{}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if wake != nil {
			q.dropWaiter(wake)
			select {
			case <-wake: // notified: whatever is due now is ours to take
			default:
			}
		}
		if q.closed {
			q.mu.Unlock()
			return Message{}, ErrClosed
		}
		now := q.now()
		if len(q.sched) > 0 && !q.sched[0].due.After(now) {
			e := heap.Pop(&q.sched).(*entry)
			e.claimed = true
			m := e.snapshot()
			if len(q.sched) > 0 && !q.sched[0].due.After(now) {
				q.notify() // more is due: pass the wake on
			}
			q.mu.Unlock()
			return m, nil
		}
		if wake == nil {
			wake = make(chan struct{}, 1)
		}
		q.waiters = append(q.waiters, wake)
		var timeout <-chan time.Time
		if len(q.sched) > 0 {
			d := q.sched[0].due.Sub(now)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			timeout = timer.C
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			q.mu.Lock()
			q.dropWaiter(wake)
			select {
			case <-wake: // notified as it left: wake another instead
				q.notify()
			default:
			}
			q.mu.Unlock()
			return Message{}, ctx.Err()
		case <-wake:
		case <-timeout:
		case <-q.stopMaint:
			return Message{}, ErrClosed
		}
	}
}

// Unclaim ends a claim: the message goes back into the schedule at its
// earliest unfinished recipient's next attempt (it has already left the
// queue if every recipient is final).
func (q *Spool) Unclaim(id ID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.msgs[id]; e != nil && e.claimed {
		e.claimed = false
		q.reschedule(e)
	}
}

// UnclaimAfter ends a claim like Unclaim, but keeps the message from
// being claimed again before t. The delivery runner uses it when a result
// could not be recorded (the disk is full or failing): the outcome waits
// in the runner's memory, and the message must not be delivered again at
// once. The delay lives in memory only; Retry lifts it.
func (q *Spool) UnclaimAfter(id ID, t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.msgs[id]; e != nil && e.claimed {
		e.claimed = false
		e.notBefore = t
		q.reschedule(e)
	}
}

// NextDue returns when the earliest unclaimed, unheld message is due, and
// false when there is none.
func (q *Spool) NextDue() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.sched) == 0 {
		return time.Time{}, false
	}
	return q.sched[0].due, true
}
