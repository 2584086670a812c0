package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/store"
)

// Held outbound mail (relay.outbound's hold and approve) is a request of
// the kind store.KindOutbound: its item is the queue ID of a message
// queued held on the gateway that received it. The request is pending
// while the message waits; the clock (its deadline), its sender (send
// now, cancel) or an approver decides it. The holding gateway carries
// the decision out: an approved message is released from its hold, once
// (the claim of the request is atomic), and a denied or cancelled one is
// removed from the queue and its sender told. Nothing else releases it:
// until then the queue never hands it to a delivery worker.

// PolicyHold is a request that waits for its deadline (hold: DURATION):
// its sender may send it at once or cancel it meanwhile.
const PolicyHold = "hold"

// OutboundDetail is what the console shows of a held message; the queue
// that holds it may be another gateway's.
type OutboundDetail struct {
	Rule    string `json:"rule"`
	Actions string `json:"actions"`
	// From, To and Cc are the header's fields as a mail client shows them.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	Cc   string `json:"cc,omitempty"`
	// Header is the whole header block as queued (bounded).
	Header string `json:"header,omitempty"`
	Size   int64  `json:"size"`
	sanitize.Summary
	// BccMoved are the addresses bcc_outside took out of To/Cc; CopyTo
	// the supervisor's copy.
	BccMoved []string `json:"bcc_moved,omitempty"`
	CopyTo   string   `json:"copy_to,omitempty"`
}

// ParseOutboundDetail reads a request's detail (an empty one is empty).
func ParseOutboundDetail(r store.Request) OutboundDetail {
	var d OutboundDetail
	if r.Detail != "" {
		json.Unmarshal([]byte(r.Detail), &d)
	}
	return d
}

// Held is a message the outbound rules held, as the gateway that queued
// it tells it.
type Held struct {
	QueueID    queue.ID
	Sender     string
	Recipients []string
	// Policy is PolicyHold or PolicyApproval.
	Policy string
	// Until is the deadline; OnExpiry what happens then.
	Until    time.Time
	OnExpiry string
	// Group is the approval group's name; Notify and DelegateNotify
	// where its approval mail goes.
	Group          string
	Notify         []string
	DelegateNotify []string
	Detail         OutboundDetail
}

// Hold records a held message's request and tells its sender, and the
// approvers when it waits for one. An error means the request was not
// recorded: the caller removes the message and answers the client 451,
// so that it is never held with nobody able to decide it.
func (s *Service) Hold(ctx context.Context, h Held) (store.Request, error) {
	st, err := s.st()
	if err != nil {
		return store.Request{}, err
	}
	detail, err := json.Marshal(h.Detail)
	if err != nil {
		return store.Request{}, err
	}
	r, err := st.CreateRequest(ctx, store.Request{Kind: store.KindOutbound, Instance: s.Instance, Item: h.QueueID.String(),
		Requester: h.Sender, Recipients: h.Recipients, Reason: h.Detail.Rule, Policy: h.Policy, State: store.StatePending,
		Expires: h.Until, OnExpiry: h.OnExpiry, Group: h.Group, Detail: string(detail)})
	if err != nil {
		return r, err
	}
	s.Log.Info("outbound message held", "kind", "audit", "actor", "sekisho", "action", "hold", "object", r.Item,
		"request", r.ID, "id", r.Item, "from", h.Sender, "policy", h.Policy, "group", h.Group, "rule", h.Detail.Rule,
		"until", h.Until.Format(time.RFC3339))
	st.AddAudit(ctx, store.AuditRecord{Actor: "sekisho", Action: "hold", Object: r.Item,
		Detail: fmt.Sprintf("request %d: %s (%s) until %s", r.ID, h.Detail.Rule, h.Policy, h.Until.Format(time.RFC3339)), OK: true})
	if n, ok := s.Notifier.(OutboundNotifier); ok {
		if err := n.NotifyHeld(r); err != nil {
			s.Log.Error("telling the sender of the hold failed", "kind", "audit", "request", r.ID, "to", r.Requester, "error", err)
		}
		if h.Policy == PolicyApproval {
			to := s.approvers(ctx, st, h)
			if len(to) == 0 {
				s.Log.Warn("nobody to send the approval mail to: every approver is away and the group has no delegate address",
					"kind", "audit", "request", r.ID, "group", h.Group)
			}
			for _, a := range to {
				if err := n.AskApprover(ctx, r, a); err != nil {
					s.Log.Error("sending the approval mail failed", "kind", "audit", "request", r.ID, "to", a, "error", err)
				}
			}
		}
	}
	return r, nil
}

// approvers are those the approval mail goes to: the group's notify
// addresses who are not away; when every one of them is, its delegates.
func (s *Service) approvers(ctx context.Context, st *store.Store, h Held) []string {
	var out []string
	for _, a := range h.Notify {
		if until, err := st.AbsentUntil(ctx, a); err == nil && until.IsZero() {
			out = append(out, a)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, a := range h.DelegateNotify {
		if until, err := st.AbsentUntil(ctx, a); err == nil && until.IsZero() {
			out = append(out, a)
		}
	}
	return out
}

// HeldQueue is what the executor needs of the queue.
type HeldQueue interface {
	Get(id queue.ID) (queue.Message, error)
	Release(id queue.ID) error
	Delete(id queue.ID) error
}

// OutboundExecutor carries out decisions on held messages in this
// gateway's queue.
type OutboundExecutor struct {
	Queue HeldQueue
}

// Execute lifts an approved message's hold. A message no longer held
// was released by a run a crash interrupted (or by an administrator):
// the work is done and is not done again.
func (e *OutboundExecutor) Execute(_ context.Context, r store.Request, _ time.Time) (string, error) {
	id, err := queue.ParseID(r.Item)
	if err != nil {
		return "", fmt.Errorf("request %d: %q is not a queue ID", r.ID, r.Item)
	}
	m, err := e.Queue.Get(id)
	if errors.Is(err, queue.ErrNotFound) {
		return "", fmt.Errorf("message %s is no longer in the queue (removed by an administrator?)", r.Item)
	}
	if err != nil {
		return "", err
	}
	if m.Held {
		if err := e.Queue.Release(id); err != nil {
			return "", err
		}
	}
	return r.Item, nil
}

// Discard removes a denied or cancelled message from the queue; one
// already gone is done.
func (e *OutboundExecutor) Discard(_ context.Context, r store.Request) (string, error) {
	id, err := queue.ParseID(r.Item)
	if err != nil {
		return "", fmt.Errorf("request %d: %q is not a queue ID", r.ID, r.Item)
	}
	err = e.Queue.Delete(id)
	if errors.Is(err, queue.ErrNotFound) {
		// Removed by a run a crash interrupted, or released and sent by
		// an administrator (sekisho queue release) before the decision.
		return "no longer in the queue", nil
	}
	if err != nil {
		return "", err
	}
	return "removed from the queue", nil
}

// holderDisposes lists the kinds whose denied and cancelled requests the
// holding gateway carries out too (and tells the requester of then),
// whichever gateway or command decided them.
var holderDisposes = map[string]bool{store.KindOutbound: true}

// Discarder is an Executor whose kind's denied and cancelled requests
// also need the holding gateway: their item is disposed of there.
type Discarder interface {
	Discard(ctx context.Context, r store.Request) (result string, err error)
}

// runExpired decides the pending requests of ours whose deadline has
// come, as each says (send or reject).
func (s *Service) runExpired(ctx context.Context, st *store.Store) {
	for _, kind := range s.kinds() {
		list, err := st.Expired(ctx, kind, s.Instance, time.Now())
		if err != nil {
			s.Log.Warn("looking for requests past their deadline", "kind", "store", "error", err)
			return
		}
		for _, r := range list {
			d, err := st.Expire(ctx, r)
			if errors.Is(err, store.ErrConflict) {
				continue // decided by someone at the same moment
			}
			if err != nil {
				s.Log.Warn("deciding a request at its deadline", "kind", "store", "request", r.ID, "error", err)
				continue
			}
			action := "timeout-" + r.OnExpiry
			s.Log.Info("request decided at its deadline", "kind", "audit", "actor", store.ExpiredBy, "action", action,
				"object", r.Item, "request", r.ID, "state", d.State)
			st.AddAudit(ctx, store.AuditRecord{Actor: store.ExpiredBy, Action: action, Object: r.Item,
				Detail: fmt.Sprintf("request %d (%s): the deadline %s passed", r.ID, r.Policy, r.Expires.Format(time.RFC3339)), OK: true})
		}
	}
}

// runClosed disposes of the items of denied and cancelled requests of
// ours (a claim first, so one worker does it), then tells the requester.
// A claim a crash interrupted is done again: removing a message that is
// gone is nothing, and the requester may be told twice, never not at
// all.
func (s *Service) runClosed(ctx context.Context, st *store.Store) {
	for kind, ex := range s.Executors {
		dis, ok := ex.(Discarder)
		if !ok {
			continue
		}
		list, err := st.Requests(ctx, store.RequestQuery{Kind: kind, Instance: s.Instance,
			States: []string{store.StateDenied, store.StateCancelled}, Unfinished: true, Limit: 100})
		if err != nil {
			s.Log.Warn("looking for denied requests", "kind", "store", "error", err)
			return
		}
		for _, r := range list {
			if r.StartedAt.IsZero() {
				var err error
				if r, err = st.ClaimClosed(ctx, r.ID); err != nil {
					continue // another worker's, or a store error the next pass retries
				}
			}
			result, err := dis.Discard(ctx, r)
			if err != nil {
				s.Log.Error("removing a denied message", "kind", "audit", "request", r.ID, "object", r.Item, "error", err)
				continue // claimed: the next start tries again
			}
			s.notify(r)
			if _, err := st.FinishClosed(ctx, r.ID, result); err != nil {
				s.Log.Error("recording a denied message's removal", "kind", "audit", "request", r.ID, "error", err)
				continue
			}
			s.Log.Info("request carried out", "kind", "audit", "actor", r.DecidedBy, "action", "queue-remove", "object", r.Item,
				"request", r.ID, "result", result)
			st.AddAudit(ctx, store.AuditRecord{Actor: r.DecidedBy, Action: "queue-remove", Object: r.Item,
				Detail: fmt.Sprintf("request %d (%s): %s", r.ID, r.State, result), OK: true})
		}
	}
}

// subjectOf is a held message's subject for notices, on one line.
func subjectOf(r store.Request) string {
	s := strings.Join(strings.Fields(ParseOutboundDetail(r).Subject), " ")
	if s == "" {
		return "(件名なし / no subject)"
	}
	return s
}
