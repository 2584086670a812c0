// Package approval owns requests that someone may have to approve, and
// their carrying out: a staff member's request for a quarantined
// original (released at once under the policy self, or after an
// approver's decision), an administrator's release to an address. The
// records are in relay/store; the gateway that holds the item carries the
// request out (each gateway polls for approved requests addressed to its
// instance name), so one console can serve several gateways sharing a
// PostgreSQL store.
//
// The model is general: a request has a kind, the item it is about, the
// instance holding it, a requester, recipients, a policy and a state
// (pending, approved, denied, started, done, failed, cancelled); an
// Executor per kind carries it out. Held outbound mail awaiting a
// supervisor is another kind of the same thing.
package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/relay/store"
)

// Policies.
const (
	PolicySelf     = "self"     // the recipient releases at once
	PolicyApproval = "approval" // an approver decides
	PolicyAdmin    = "admin"    // an administrator released it
)

// Executor carries out an approved request of one kind on the gateway
// holding its item, and returns what to record (a queue ID). started is
// when the request was claimed: an executor checks whether an earlier,
// interrupted run already did the work since then, so that a crash never
// delivers twice.
type Executor interface {
	Execute(ctx context.Context, r store.Request, started time.Time) (result string, err error)
}

// Notifier tells a requester what became of their request.
type Notifier interface {
	Notify(r store.Request) error
}

// Service creates, decides and carries out requests.
type Service struct {
	// Store returns the store, nil while it is unavailable.
	Store    func() *store.Store
	Instance string
	Log      *slog.Logger
	// Executors by request kind; a gateway without the item's room (no
	// quarantine) has none for that kind and leaves such requests alone.
	Executors map[string]Executor
	// Notifier tells requesters of decisions; nil: nobody is told.
	Notifier Notifier
	// Poll is how often approved requests are looked for (default 5s);
	// Wake makes the next look immediate.
	Poll time.Duration

	once sync.Once
	wake chan struct{}
}

// ErrUnavailable is returned while the store cannot be reached.
var ErrUnavailable = errors.New("the console's database is not available; try again later")

func (s *Service) st() (*store.Store, error) {
	if s.Store == nil {
		return nil, ErrUnavailable
	}
	st := s.Store()
	if st == nil {
		return nil, ErrUnavailable
	}
	return st, nil
}

func (s *Service) init() { s.once.Do(func() { s.wake = make(chan struct{}, 1) }) }

// Wake makes the worker look for approved requests now.
func (s *Service) Wake() {
	s.init()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Ask records a request. Under the policy self (or admin) it is approved
// at once, by the requester; otherwise it waits for an approver.
func (s *Service) Ask(ctx context.Context, r store.Request) (store.Request, error) {
	st, err := s.st()
	if err != nil {
		return store.Request{}, err
	}
	r.State = store.StatePending
	if r.Policy == PolicySelf || r.Policy == PolicyAdmin {
		r.State, r.DecidedBy, r.DecidedAt, r.Comment = store.StateApproved, r.Requester, time.Now(), r.Policy
	}
	r, err = st.CreateRequest(ctx, r)
	if err != nil {
		return r, err
	}
	if r.State == store.StateApproved {
		s.Wake()
	}
	return r, nil
}

// Decide records an approver's decision on a pending request and tells
// the requester of a denial at once (an approval is told with its
// outcome, by the gateway that carries it out; so is the denial of a kind
// whose item that gateway must dispose of).
func (s *Service) Decide(ctx context.Context, id int64, approve bool, by, comment string) (store.Request, error) {
	st, err := s.st()
	if err != nil {
		return store.Request{}, err
	}
	r, err := st.Decide(ctx, id, approve, by, comment)
	if err != nil {
		return r, err
	}
	if approve || holderDisposes[r.Kind] {
		s.Wake()
	} else {
		s.notify(r)
	}
	return r, nil
}

// Cancel withdraws a pending request for its requester; the gateway
// holding the item disposes of it where the kind needs that.
func (s *Service) Cancel(ctx context.Context, id int64, by string) (store.Request, error) {
	st, err := s.st()
	if err != nil {
		return store.Request{}, err
	}
	r, err := st.Cancel(ctx, id, by)
	if err == nil {
		s.Wake()
	}
	return r, err
}

func (s *Service) notify(r store.Request) {
	if s.Notifier == nil {
		return
	}
	if err := s.Notifier.Notify(r); err != nil {
		s.Log.Error("telling the requester failed", "kind", "audit", "request", r.ID, "to", r.Requester, "error", err)
	}
}

// Run carries out the approved requests addressed to this instance until
// ctx ends: at start (finishing what a crash interrupted), then every
// Poll, whenever woken, and when the earliest deadline of a pending
// request of ours comes (a hold ends on time, not up to Poll later).
func (s *Service) Run(ctx context.Context) {
	s.init()
	poll := s.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	recovered := false
	for {
		wait := poll
		if st, err := s.st(); err == nil {
			if !recovered {
				recovered = s.resume(ctx, st)
			}
			s.runExpired(ctx, st)
			s.runClosed(ctx, st)
			s.runApproved(ctx, st)
			// A deadline still to come shortens the wait (to a moment after
			// it: the store keeps microseconds); one already past was tried
			// in this pass and waits for the next poll, so a failing store
			// is not asked in a loop.
			if next, err := st.NextExpiry(ctx, s.Instance); err == nil && time.Until(next) > 0 {
				wait = min(wait, time.Until(next)+10*time.Millisecond)
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// kinds lists the request kinds this gateway can carry out.
func (s *Service) kinds() []string {
	var ks []string
	for k := range s.Executors {
		ks = append(ks, k)
	}
	return ks
}

// runApproved claims and carries out each approved request of ours.
func (s *Service) runApproved(ctx context.Context, st *store.Store) {
	for _, kind := range s.kinds() {
		list, err := st.Requests(ctx, store.RequestQuery{Kind: kind, Instance: s.Instance, States: []string{store.StateApproved}, Limit: 100})
		if err != nil {
			s.Log.Warn("looking for approved requests", "kind", "store", "error", err)
			return
		}
		for i := len(list) - 1; i >= 0; i-- { // oldest first
			r, err := st.Start(ctx, list[i].ID)
			if errors.Is(err, store.ErrConflict) {
				continue // another worker of ours, or cancelled
			}
			if err != nil {
				s.Log.Warn("claiming a request", "kind", "store", "request", list[i].ID, "error", err)
				continue
			}
			s.execute(ctx, st, r)
		}
	}
}

// resume finishes requests this gateway claimed before a crash; it
// reports whether it could look.
func (s *Service) resume(ctx context.Context, st *store.Store) bool {
	for _, kind := range s.kinds() {
		list, err := st.Requests(ctx, store.RequestQuery{Kind: kind, Instance: s.Instance, States: []string{store.StateStarted}, Limit: 500})
		if err != nil {
			return false
		}
		for _, r := range list {
			s.execute(ctx, st, r)
		}
	}
	return true
}

// execute carries out a claimed request and records the outcome.
func (s *Service) execute(ctx context.Context, st *store.Store, r store.Request) {
	ex := s.Executors[r.Kind]
	result, err := ex.Execute(ctx, r, r.StartedAt)
	ok := err == nil
	if err != nil {
		result = err.Error()
	}
	done, ferr := st.Finish(ctx, r.ID, ok, result)
	if ferr != nil {
		// Left started: resume looks again at the next start, and the
		// executor sees that the work was done.
		s.Log.Error("recording a request's outcome", "kind", "audit", "request", r.ID, "error", ferr)
		return
	}
	action := r.Kind // release, unlock
	if r.Kind == store.KindOutbound {
		action = "queue-release" // a step of the message's trace
	}
	if !ok {
		action += "-failed"
	}
	s.Log.Info("request carried out", "kind", "audit", "actor", done.DecidedBy, "action", action,
		"object", r.Item, "request", r.ID, "to", strings.Join(r.Recipients, ","), "result", result)
	st.AddAudit(ctx, store.AuditRecord{Actor: done.DecidedBy, Action: action, Object: r.Item,
		Detail: fmt.Sprintf("request %d to %s: %s", r.ID, strings.Join(r.Recipients, ", "), result), OK: ok})
	if r.Policy == PolicyApproval || !ok {
		s.notify(done)
	}
}
