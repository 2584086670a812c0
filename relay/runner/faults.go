package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

// What the runner does when the spool cannot record a result (the fault
// model is written out in relay/queue's package documentation).
//
// An outcome that could not be recorded is kept in memory, and the message
// is handed back to the spool with UnclaimAfter, so it is not claimed
// again before a back-off. When it is claimed again the kept outcomes are
// recorded first, without a new attempt: a recipient the next hop accepted
// is never sent the message again because its success could not be
// written. Only a crash before the outcome is recorded forgets it (the
// message is then delivered again: a duplicate, never a loss).
//
// While the failure is the spool's disk (a *queue.StorageError), every
// worker pauses: no message is claimed, so no message is delivered whose
// result could not be written either. After each back-off one worker
// probes: it claims one message (a kept one when it is due) and tries to
// record; success resumes every worker, failure doubles the back-off up to
// pauseMax. While paused the runner logs one line a minute, sets the
// sekisho_delivery_paused gauge and makes /healthz report the pause.

// Back-off bounds for kept outcomes and for the pause, in units of
// runner.unit (a second; tests shorten it).
const (
	keepMin       = 1
	keepMax       = 60
	pauseMin      = 1
	pauseMax      = 30
	pauseLogEvery = time.Minute
)

// keptResult is what a message's last attempt found out and could not
// record.
type keptResult struct {
	results []outcome
	at      time.Time // when the attempt ended: the retry schedule counts from it
	tries   int       // failed attempts to record
}

// unrecorded is record's report: the outcomes that are not in the spool.
type unrecorded struct {
	outcomes []outcome
	err      error // the first failure
	storage  bool  // some failure was the spool's disk
}

func (u *unrecorded) add(o outcome, err error) {
	if err == nil || errors.Is(err, queue.ErrFinal) || errors.Is(err, queue.ErrNotFound) {
		// Final already, or gone (deleted by an administrator): nothing
		// left to record.
		return
	}
	u.outcomes = append(u.outcomes, o)
	if u.err == nil {
		u.err = err
	}
	var se *queue.StorageError
	if errors.As(err, &se) {
		u.storage = true
	}
}

type pauseState struct {
	on       bool
	since    time.Time
	resumeAt time.Time
	backoff  time.Duration
	probing  bool
	logged   time.Time
	quiet    int  // probes failed since the last log line
	low      bool // the spool's file system was below its reserve at the last failure
}

// keep stores what record could not, and returns when the message may be
// claimed again (zero when everything was recorded).
func (r *Runner) keep(m queue.Message, lost unrecorded, at time.Time) time.Time {
	return r.keepTry(m, lost, at, 0)
}

func (r *Runner) keepTry(m queue.Message, lost unrecorded, at time.Time, tries int) time.Time {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	if len(lost.outcomes) == 0 {
		r.resumeLocked()
		return time.Time{}
	}
	tries++
	r.kept[m.ID] = &keptResult{results: lost.outcomes, at: at, tries: tries}
	r.sh.Metrics.UnrecordedResults.Set(float64(len(r.kept)))
	if lost.storage {
		r.pauseLocked(lost.err)
	}
	if tries == 1 {
		// One line per message; a disk that stays broken pauses the
		// runner, so these stay few.
		r.sh.Log.Error("delivery results could not be recorded; kept in memory, not delivered again",
			"kind", "queue", "id", m.ID.String(), "recipients", len(lost.outcomes), "error", lost.err)
	}
	d := min(keepMin<<min(tries-1, 16), keepMax)
	return time.Now().Add(time.Duration(d) * r.unit)
}

// takeKept removes and returns a message's kept outcomes.
func (r *Runner) takeKept(id queue.ID) *keptResult {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	k := r.kept[id]
	if k != nil {
		delete(r.kept, id)
		r.sh.Metrics.UnrecordedResults.Set(float64(len(r.kept)))
	}
	return k
}

// recordKept records outcomes kept from an earlier attempt, against the
// message as the spool has it now.
func (r *Runner) recordKept(m queue.Message, k *keptResult) time.Time {
	var todo []outcome
	for _, o := range k.results {
		if o.rcpt < len(m.Rcpts) && !m.Rcpts[o.rcpt].Status.Final() {
			todo = append(todo, o)
		}
	}
	lost := r.record(r.snap(), m, todo, k.at, false)
	if len(lost.outcomes) == 0 {
		r.sh.Log.Info("kept delivery results recorded", "kind", "queue", "id", m.ID.String(), "recipients", len(todo), "tries", k.tries+1)
	}
	return r.keepTry(m, lost, k.at, k.tries)
}

// pruneKept forgets kept outcomes of messages that left the queue
// meanwhile (deleted by an administrator): nothing is left to record.
func (r *Runner) pruneKept() {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	for id := range r.kept {
		if _, err := r.sh.Queue.Get(id); errors.Is(err, queue.ErrNotFound) {
			delete(r.kept, id)
		}
	}
	r.sh.Metrics.UnrecordedResults.Set(float64(len(r.kept)))
}

// dropKept reports, at shutdown, outcomes that were never recorded: those
// recipients get the message again after the restart.
func (r *Runner) dropKept() {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	n := 0
	for _, k := range r.kept {
		n += len(k.results)
	}
	if n > 0 {
		r.sh.Log.Error("stopping with delivery results that could not be recorded; those recipients will get the message again",
			"kind", "queue", "messages", len(r.kept), "recipients", n)
	}
	clear(r.kept)
}

// pauseLocked starts or extends the pause after a storage error. Called
// with r.faultMu held.
func (r *Runner) pauseLocked(err error) {
	p := &r.pause
	now := time.Now()
	if !p.on {
		p.on, p.since, p.backoff, p.quiet = true, now, pauseMin*r.unit, 0
		p.logged = now
		r.sh.Metrics.DeliveryPaused.Set(1)
		r.sh.Log.Error("delivery paused: the spool cannot record results; retrying by itself",
			"kind", "queue", "error", err)
	} else {
		p.backoff = min(2*p.backoff, pauseMax*r.unit)
		if now.Sub(p.logged) >= pauseLogEvery {
			r.sh.Log.Error("delivery still paused: the spool cannot record results",
				"kind", "queue", "since", p.since.Format(time.RFC3339), "failed_probes", p.quiet+1, "error", err)
			p.logged, p.quiet = now, 0
		} else {
			p.quiet++
		}
	}
	p.resumeAt = now.Add(p.backoff)
	p.low = r.sh.Queue.Health().LowSpace
}

// resumeLocked ends the pause after a result was recorded.
func (r *Runner) resumeLocked() {
	p := &r.pause
	if !p.on {
		return
	}
	r.sh.Log.Warn("delivery resumed: the spool records results again", "kind", "queue",
		"paused_for", time.Since(p.since).Round(time.Millisecond).String())
	*p = pauseState{}
	r.sh.Metrics.DeliveryPaused.Set(0)
}

// waitTurn blocks a worker while delivery is paused. It returns probe
// when this worker is the one to try the spool again, and false when ctx
// ended.
func (r *Runner) waitTurn(ctx context.Context) (probe, ok bool) {
	for {
		r.faultMu.Lock()
		p := &r.pause
		if !p.on {
			r.faultMu.Unlock()
			return false, true
		}
		wait := time.Until(p.resumeAt)
		if wait > 0 && !p.probing && r.spaceFreed(p) {
			wait = 0 // space came back: probe now, not after the back-off
		}
		if wait <= 0 && !p.probing {
			p.probing = true
			r.faultMu.Unlock()
			return true, true
		}
		r.faultMu.Unlock()
		if wait <= 0 || wait > 100*time.Millisecond {
			wait = 100 * time.Millisecond // a probe is under way, or the pause ends early
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, false
		case <-t.C:
		}
	}
}

// spaceFreed reports whether the spool's file system, below its reserve
// at the last failure, is above it again (an administrator made room):
// once per such change, a probe need not wait out the back-off. Called
// with r.faultMu held; Health reads a cached statfs figure.
func (r *Runner) spaceFreed(p *pauseState) bool {
	if !p.low || r.sh.Queue.Health().LowSpace {
		return false
	}
	p.low = false
	return true
}

// endProbe ends a probe turn. A probe that recorded everything has already
// resumed delivery (keep); one that failed has extended the pause.
func (r *Runner) endProbe(probe, recorded bool) {
	if !probe {
		return
	}
	r.faultMu.Lock()
	r.pause.probing = false
	if recorded {
		r.resumeLocked()
	}
	r.faultMu.Unlock()
}

// Paused reports the pause, for /healthz; nil when delivery runs.
func (r *Runner) Paused() error {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	if !r.pause.on {
		return nil
	}
	return errors.New("delivery paused since " + r.pause.since.Format(time.RFC3339) + ": the spool cannot record results")
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Degraded reports, for /healthz, a spool whose disk fails or is below its
// reserve, and a paused runner; nil when delivery is healthy.
func (r *Runner) Degraded() error {
	h := r.sh.Queue.Health()
	var errs []error
	if h.Failing {
		errs = append(errs, fmt.Errorf("queue storage failing since %s: %v", h.Since.Format(time.RFC3339), h.Err))
	}
	if h.LowSpace {
		errs = append(errs, fmt.Errorf("queue file system below its reserve (%d bytes free): new mail is refused", h.Free))
	}
	if err := r.Paused(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
