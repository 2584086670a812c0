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
// traced kind becomes one or more store.Events, packed at once into a
// bounded batch without blocking. When the batch is full (the store is
// slow or down) the events are dropped and counted; the first drop is
// logged, and so is the recovery. Mail never waits for the trace.
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
//
// Events are packed as they are logged into the batch being filled (a
// store.Batch, the row they will be stored as), under a mutex: no slice
// of events, no channel, no wake-up of the writer for each one. The
// writer swaps the batch out a quarter of a second after its first event
// (at once past batchMax events) and stores it as one row.
type Recorder struct {
	instance string
	max      int // events the batch holds at most: the buffer

	mu    sync.Mutex
	batch *store.Batch // being filled
	// wake tells the writer that a batch has begun, or grown past
	// batchMax or half the buffer.
	wake    chan struct{}
	dropped atomic.Int64
	// dropping is set while events are being dropped, so that a run of
	// drops is logged once.
	dropping atomic.Bool

	afterMu sync.Mutex
	// afterWrite, when set, sees each written event (the quarantine
	// indexer watches for sanitized messages).
	afterWrite func(store.Event)
}

// New returns a recorder whose buffer holds up to buffer events (at most
// store.MaxBatch).
func New(buffer int, instance string) *Recorder {
	buffer = min(max(buffer, 1), store.MaxBatch)
	return &Recorder{instance: instance, max: buffer, batch: store.NewBatch(instance), wake: make(chan struct{}, 1)}
}

// AfterWrite sets a function that sees every event once it is stored.
func (r *Recorder) AfterWrite(f func(store.Event)) {
	r.afterMu.Lock()
	r.afterWrite = f
	r.afterMu.Unlock()
}

// Dropped is the number of events dropped since the start.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Record packs events into the batch without waiting; those the buffer
// has no room for are dropped and counted.
func (r *Recorder) Record(evs []store.Event) {
	r.mu.Lock()
	before := r.batch.Len()
	kept := min(len(evs), r.max-before)
	for i := range kept {
		r.batch.Add(&evs[i])
	}
	after := r.batch.Len()
	r.mu.Unlock()
	if kept < len(evs) {
		r.dropped.Add(int64(len(evs) - kept))
		r.dropping.Store(true)
	}
	crossed := func(n int) bool { return before < n && after >= n }
	if crossed(1) || crossed(batchMax) || crossed(r.max/2) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// size is the number of events waiting in the batch.
func (r *Recorder) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batch.Len()
}

// swap takes the batch being filled and puts spare (emptied) in its place.
func (r *Recorder) swap(spare *store.Batch) *store.Batch {
	spare.Reset()
	r.mu.Lock()
	b := r.batch
	r.batch = spare
	r.mu.Unlock()
	return b
}

// Handler wraps next: every record still goes to next, and those of the
// traced kinds are also recorded.
func (r *Recorder) Handler(next slog.Handler) slog.Handler {
	return &tap{next: next, r: r}
}

// batchMax and batchWait shape the writes: a batch is written batchWait
// after its first event, or at once when it holds batchMax.
const (
	batchMax  = 2048
	batchWait = 250 * time.Millisecond
)

// Run writes the recorded events to the store until ctx ends, a batch a
// row, merges them into the indexed table when mail is not arriving in a
// flood (see merger), and prunes what is past its retention once an
// hour. store returns the store, or nil while it is unavailable (the
// events then wait in the buffer, and are dropped once it is full). log
// reports drops and failures (its records must not be of a traced kind).
func (r *Recorder) Run(ctx context.Context, st func() *store.Store, cfg store.Config, log *slog.Logger) {
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
	spare := store.NewBatch(r.instance)
	write := func(s *store.Store) {
		b := r.swap(spare)
		spare = b
		n := b.Len()
		if n == 0 {
			return
		}
		m.arrived += n
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.AddBatch(wctx, b)
		cancel()
		if err != nil {
			r.dropped.Add(int64(n))
			if !degraded {
				log.Error("trace events cannot be written; dropping them until the store answers (mail is not affected)",
					"kind", "store", "events", n, "error", err)
			}
			degraded = true
			return
		}
		m.written(n)
		if degraded {
			log.Info("trace events are written again", "kind", "store", "dropped_total", r.dropped.Load())
			degraded = false
		}
		r.afterMu.Lock()
		after := r.afterWrite
		r.afterMu.Unlock()
		if after != nil {
			b.Each(func(e *store.Event) { after(*e) })
		}
	}
	for {
		if r.dropping.Swap(false) && !degraded {
			degraded = true
			log.Warn("trace events dropped: the store is slow or unavailable (mail is not affected)",
				"kind", "store", "dropped_total", r.dropped.Load())
		}
		s := st()
		if s != nil && time.Since(pruned) > time.Hour {
			pruned = time.Now()
			prune(ctx, s, cfg, log)
		}
		// Merging goes a chunk at a time, so that the writes go on in
		// between.
		var mergeNow <-chan time.Time
		if s != nil && m.due(ctx, s) {
			mergeNow = now
		}
		select {
		case <-ctx.Done():
			if s := st(); s != nil {
				write(s) // what is buffered, as far as the store takes it
			}
			return
		case <-mergeNow:
			m.merge(ctx, s)
		case <-second.C:
			m.rate, m.arrived = m.arrived, 0
		case <-r.wake:
			switch {
			case r.size() >= batchMax:
				timer.Reset(0)
				collecting = true
			case !collecting:
				timer.Reset(batchWait)
				collecting = true
			}
		case <-timer.C:
			s := st()
			if s == nil {
				timer.Reset(time.Second)
				continue
			}
			write(s)
			// Events that came meanwhile make the next batch.
			switch n := r.size(); {
			case n >= batchMax:
				timer.Reset(0)
			case n > 0:
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
