// Package events derives the message trace from the log records the
// gateway already writes (kinds receive, reject, send, fail, sanitize,
// audit) and writes them to the store off the hot path: stored as
// pending events, and indexed when mail is not arriving in a flood (see
// merger).
//
// Deriving them from the log, rather than adding hooks along the mail
// path, keeps one account of what happened: every step that is logged is
// traced, with the same fields, and no room of the mail path knows the
// store exists. The Handler wraps the log's slog.Handler; a record of a
// traced kind becomes one or more store.Events and goes into a bounded
// channel without blocking. When the channel is full (the store is slow
// or down) the events are dropped and counted; the first drop is logged,
// and so is the recovery. Mail never waits for the trace.
package events

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/relay/store"
)

// Recorder turns log records into trace events and writes them.
type Recorder struct {
	ch chan store.Event
	// nudge tells the writer that the buffer is half full: write now
	// rather than at the batch's time.
	nudge   chan struct{}
	dropped atomic.Int64
	// dropping is set while events are being dropped, so that a run of
	// drops is logged once.
	dropping atomic.Bool
	instance string

	mu sync.Mutex
	// afterWrite, when set, sees each written event (the quarantine
	// indexer watches for sanitized messages).
	afterWrite func(store.Event)
}

// New returns a recorder whose buffer holds up to buffer records.
func New(buffer int, instance string) *Recorder {
	if buffer < 1 {
		buffer = 1
	}
	return &Recorder{ch: make(chan store.Event, buffer), nudge: make(chan struct{}, 1), instance: instance}
}

// AfterWrite sets a function that sees every event once it is stored.
func (r *Recorder) AfterWrite(f func(store.Event)) {
	r.mu.Lock()
	r.afterWrite = f
	r.mu.Unlock()
}

// Dropped is the number of events dropped since the start.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Record queues events without waiting; those the buffer has no room for
// are dropped and counted.
func (r *Recorder) Record(evs []store.Event) {
	for i, e := range evs {
		select {
		case r.ch <- e:
		default:
			r.dropped.Add(int64(len(evs) - i))
			r.dropping.Store(true)
			return
		}
	}
	if len(r.ch) >= cap(r.ch)/2 {
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
}

// Handler wraps next: every record still goes to next, and those of the
// traced kinds are also recorded.
func (r *Recorder) Handler(next slog.Handler) slog.Handler {
	return &tap{next: next, r: r}
}

// batchMax and batchWait shape the writes: up to batchMax events in one
// transaction, written at most batchWait after the first arrived.
const (
	batchMax  = 2048
	batchWait = 250 * time.Millisecond
)

// Run writes queued events to the store until ctx ends, in batches, and
// prunes what is past its retention once an hour. store returns the
// store, or nil while it is unavailable (the events then wait in the
// buffer, and are dropped once it is full). log reports drops and
// failures (its records must not be of a traced kind).
func (r *Recorder) Run(ctx context.Context, st func() *store.Store, cfg store.Config, log *slog.Logger) {
	var batch []store.Event
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pruned := time.Time{}
	// degraded is set from the first drop or failed write until a write
	// succeeds again: each run of trouble is logged once, with its end.
	degraded := false
	m := &merger{pending: -1, log: log}
	second := time.NewTicker(time.Second)
	defer second.Stop()
	// collecting is set while a batch is being gathered (timer set).
	collecting := false
	// drain takes what is buffered into the batch, up to batchMax.
	drain := func() {
		for len(batch) < batchMax {
			select {
			case e := <-r.ch:
				m.arrived++
				batch = append(batch, e)
			default:
				return
			}
		}
	}
	flush := func() {
		s := st()
		if len(batch) == 0 || s == nil {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.AddEvents(wctx, batch)
		cancel()
		if err != nil {
			r.dropped.Add(int64(len(batch)))
			if !degraded {
				log.Error("trace events cannot be written; dropping them until the store answers (mail is not affected)",
					"kind", "store", "events", len(batch), "error", err)
			}
			degraded = true
			batch = batch[:0]
			return
		}
		m.written(len(batch))
		if degraded {
			log.Info("trace events are written again", "kind", "store", "dropped_total", r.dropped.Load())
			degraded = false
		}
		r.mu.Lock()
		after := r.afterWrite
		r.mu.Unlock()
		if after != nil {
			for _, e := range batch {
				after(e)
			}
		}
		batch = batch[:0]
	}
	for {
		if r.dropping.Swap(false) && !degraded {
			degraded = true
			log.Warn("trace events dropped: the store is slow or unavailable (mail is not affected)",
				"kind", "store", "dropped_total", r.dropped.Load())
		}
		if s := st(); s != nil && time.Since(pruned) > time.Hour {
			pruned = time.Now()
			prune(ctx, s, cfg, log)
		}
		// The writer takes the first event after a quiet time, then
		// waits for the batch's time (or Record's nudge) and takes what
		// came meanwhile at once: a wake-up of this goroutine for every
		// record would cost the mail path more than the record itself.
		in := r.ch
		if collecting {
			in = nil
		}
		// Merging goes a chunk at a time, so that arriving events are
		// taken in between.
		var mergeNow <-chan time.Time
		s := st()
		if s != nil && m.due(ctx, s) {
			mergeNow = now
		}
		select {
		case <-ctx.Done():
			// What is buffered is written, as far as the store takes it.
			for range cap(r.ch)/batchMax + 2 {
				drain()
				if len(batch) == 0 || st() == nil {
					break
				}
				flush()
			}
			return
		case <-mergeNow:
			m.merge(ctx, s)
		case <-second.C:
			m.rate, m.arrived = m.arrived, 0
		case e := <-in:
			m.arrived++
			batch = append(batch, e)
			collecting = true
			timer.Reset(batchWait)
		case <-r.nudge:
			if st() != nil {
				timer.Reset(0)
			}
		case <-timer.C:
			if st() == nil {
				timer.Reset(time.Second)
				continue
			}
			drain()
			flush()
			// Events that came meanwhile make the next batch; more than
			// a batch's worth is written at once.
			switch {
			case len(r.ch) >= batchMax:
				timer.Reset(0)
			case len(r.ch) > 0:
				timer.Reset(batchWait)
			default:
				collecting = false
			}
		}
	}
}

// prune removes what is past its retention.
func prune(ctx context.Context, s *store.Store, cfg store.Config, log *slog.Logger) {
	now := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, err := s.PruneEvents(pctx, now.Add(-cfg.TraceRetention))
	a, aerr := s.PruneAudit(pctx, now.Add(-cfg.AuditRetention))
	q, qerr := s.PruneRequests(pctx, now.Add(-cfg.AuditRetention))
	serr := s.PruneSessions(pctx, now)
	if n+a+q > 0 || err != nil || aerr != nil || qerr != nil || serr != nil {
		log.Info("store pruned", "kind", "store", "events", n, "audit", a, "requests", q,
			"error", errText(err, aerr, qerr, serr))
	}
}

func errText(errs ...error) string {
	var s []string
	for _, e := range errs {
		if e != nil {
			s = append(s, e.Error())
		}
	}
	return strings.Join(s, "; ")
}
