package events

import (
	"context"
	"log/slog"
	"time"

	"github.com/sekisho/sekisho/relay/store"
)

// Index upkeep (store.MergeEvents: pending events into the indexed
// table) waits while events arrive faster than burstRate a second, the
// rate of a flood (a mass mailing, an attack, a benchmark) and not of a
// municipality's busiest hour: mail gets the CPU during the burst and the
// trace catches up in the quiet after it, mergeChunk events a
// transaction. It never waits past store.MaxPending pending events.
const (
	burstRate  = 200
	mergeChunk = 2048
	// mergeBackoff is the pause after a failed merge: degrade, never
	// loop on a store that answers with errors.
	mergeBackoff = 10 * time.Second
)

// mergeDue reports whether to merge a chunk now, with pending events
// unmerged and rate events arriving a second.
func mergeDue(pending, rate int) bool {
	return pending > 0 && (rate < burstRate || pending >= store.MaxPending)
}

// merger keeps the count and the rate the upkeep is decided by, for Run.
type merger struct {
	// pending counts this instance's unmerged events (-1: not known
	// yet: an earlier run may have left some).
	pending int
	// arrived counts the events of the current second, rate those of
	// the last.
	arrived, rate int
	after         time.Time // set by a failed merge or count: not before
	failing       bool      // a merge failed, and none succeeded since
	log           *slog.Logger
}

// written counts n events stored pending.
func (m *merger) written(n int) {
	if m.pending >= 0 {
		m.pending += n
	}
}

// due reports whether to merge a chunk now; the first time, it counts
// what an earlier run left.
func (m *merger) due(ctx context.Context, s *store.Store) bool {
	if !time.Now().After(m.after) {
		return false
	}
	if m.pending < 0 {
		n, err := s.PendingEvents(ctx)
		if err != nil {
			m.after = time.Now().Add(mergeBackoff)
			return false
		}
		m.pending = n
	}
	// A burst shows in the current second before it is over.
	return mergeDue(m.pending, max(m.rate, m.arrived))
}

// merge moves a chunk. A failure is logged once, until a merge succeeds,
// and pauses the upkeep for mergeBackoff.
func (m *merger) merge(ctx context.Context, s *store.Store) {
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	n, err := s.MergeEvents(mctx, mergeChunk)
	cancel()
	if n == 0 && err == nil {
		m.pending = 0 // the count was high: nothing is left
		return
	}
	m.pending = max(m.pending-n, 0)
	if err != nil {
		if !m.failing {
			m.failing = true
			m.log.Error("trace events cannot be indexed; they stay pending and are still found (mail is not affected)",
				"kind", "store", "error", err)
		}
		m.after = time.Now().Add(mergeBackoff)
		return
	}
	if m.failing {
		m.failing = false
		m.log.Info("trace events are indexed again", "kind", "store")
	}
}

// now is a closed channel: a select case that is always ready.
var now = func() chan time.Time { c := make(chan time.Time); close(c); return c }()
