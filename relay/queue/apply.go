package queue

import (
	"fmt"
	"time"
)

// apply makes a durable record take effect in memory. It is the one
// function that interprets records: live commits call it after the fsync,
// in log order, and recovery calls it on the log read back, so memory is
// always what a replay of the log gives. Records about messages that are
// gone are ignored (they may legitimately follow a delete). Called with
// q.mu held.
func (q *Spool) apply(r *record, seq uint64, off, recLen int64) error {
	if r.id > q.lastID {
		q.lastID = r.id
	}
	e := q.msgs[r.id]
	switch r.typ {
	case recMessage:
		// The reported-on message first: a DSN and the outcome it reports
		// are one record, so they happen together.
		if t := q.msgs[r.about]; t != nil && r.about != 0 {
			for _, m := range r.marks {
				// A recipient that became final meanwhile keeps its state.
				_ = q.setRcpt(t, m.rcpt, m.state)
			}
			q.settle(t)
		}
		if e == nil {
			e = &entry{id: r.id, env: r.env, heapIdx: -1, clean: r.clean}
			q.msgs[r.id] = e
			if r.blob && !q.replaying {
				q.diskBytes += r.dataLen
			}
		} else {
			q.unpin(e) // a copy forward: the record in force moves
		}
		e.env.Size = r.dataLen
		e.rcpts = append(e.rcpts[:0], r.states...)
		e.held, e.blob = r.held, r.blob
		e.seg, e.recLen = seq, recLen
		e.dataOff = off + frameSize + int64(r.dataStart)
		q.pin(e)
		q.settle(e)
		return nil
	case recState:
		if e == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, r.id)
		}
		err := q.setRcpt(e, r.update.rcpt, r.update.state)
		q.settle(e)
		return err
	case recSnapshot:
		if e == nil {
			return nil
		}
		if len(r.states) != len(e.rcpts) {
			return fmt.Errorf("snapshot of %s has %d recipients, the message %d", r.id, len(r.states), len(e.rcpts))
		}
		copy(e.rcpts, r.states)
		e.held = r.held
		q.settle(e)
		return nil
	}
	if e == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, r.id)
	}
	switch r.typ {
	case recHold:
		e.held = r.held
	case recRetry:
		e.notBefore = time.Time{}
		for i := range e.rcpts {
			if e.rcpts[i].Status == Deferred {
				e.rcpts[i].NextAttempt = r.at
			}
		}
	case recDelete:
		q.remove(e)
		return nil
	}
	q.settle(e)
	return nil
}

// setRcpt changes one recipient; a final recipient never changes again
// (except through a snapshot, which restores a known state).
func (q *Spool) setRcpt(e *entry, rcpt int, st RcptState) error {
	if rcpt < 0 || rcpt >= len(e.rcpts) {
		return fmt.Errorf("message %s has no recipient #%d", e.id, rcpt)
	}
	if e.rcpts[rcpt].Status.Final() {
		return fmt.Errorf("%w: %s recipient #%d", ErrFinal, e.id, rcpt)
	}
	e.rcpts[rcpt] = st
	return nil
}

// settle drops a message whose recipients are all final, or puts it where
// it belongs in the schedule.
func (q *Spool) settle(e *entry) {
	if q.msgs[e.id] != e {
		return
	}
	for _, st := range e.rcpts {
		if !st.Status.Final() {
			q.reschedule(e)
			return
		}
	}
	q.remove(e)
}

// remove forgets a finished or deleted message. Its record may sit in a
// segment until that segment goes; its large file goes now.
func (q *Spool) remove(e *entry) {
	delete(q.msgs, e.id)
	q.unschedule(e)
	q.unpin(e)
	if e.blob && !q.replaying {
		q.trash = append(q.trash, trashBlob{id: e.id, size: e.env.Size})
		q.kickMaint()
	}
}

// pin and unpin count, per segment, the live messages whose record in
// force is there: a segment goes only when it and every older one is free.
func (q *Spool) pin(e *entry) {
	if s := q.segs[e.seg]; s != nil {
		s.live++
		s.liveBytes += e.recLen
	}
}

func (q *Spool) unpin(e *entry) {
	if s := q.segs[e.seg]; s != nil {
		s.live--
		s.liveBytes -= e.recLen
		if s.live == 0 {
			q.kickMaint()
		}
	}
}

func (q *Spool) kickMaint() {
	select {
	case q.maintKick <- struct{}{}:
	default:
	}
}
