package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// TracedMessage is one message (or one refused session) a trace search
// found: the events that matched, summed up.
type TracedMessage struct {
	// QueueID is the message's queue ID; Session is set instead for a
	// session refused before anything was queued.
	QueueID   string    `json:"queue_id,omitempty"`
	Session   string    `json:"session,omitempty"`
	Instance  string    `json:"instance"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	Sender    string    `json:"sender,omitempty"`
	Rcpts     []string  `json:"rcpts,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Client    string    `json:"client,omitempty"`
	// Last step's kind and result ("send delivered", "reject refused").
	LastKind   string `json:"last_kind"`
	LastResult string `json:"last_result"`
}

// TraceSearch finds the messages whose events match q, newest first
// (`sekisho log search` and the console's message trace).
func (s *Store) TraceSearch(ctx context.Context, q EventQuery) ([]TracedMessage, error) {
	evs, err := s.SearchEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*TracedMessage{}
	var order []string
	var qids, sessions []string
	for _, e := range evs {
		key := "q:" + e.QueueID
		if e.QueueID == "" {
			if e.Session == "" {
				continue
			}
			key = "s:" + e.Session
		}
		if _, ok := byKey[key]; !ok {
			byKey[key] = &TracedMessage{QueueID: e.QueueID, Instance: e.Instance}
			if e.QueueID == "" {
				byKey[key].Session = e.Session
				sessions = append(sessions, e.Session)
			} else {
				qids = append(qids, e.QueueID)
			}
			order = append(order, key)
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	// The whole story of each message found, to sum it up.
	all, err := s.MessageEvents(ctx, qids, sessions)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		key := "q:" + e.QueueID
		if e.QueueID == "" {
			key = "s:" + e.Session
		}
		m, ok := byKey[key]
		if !ok {
			continue // an event that refers to one of ours (a DSN)
		}
		if m.First.IsZero() || e.At.Before(m.First) {
			m.First = e.At
		}
		if !e.At.Before(m.Last) {
			m.Last, m.LastKind, m.LastResult = e.At, e.Kind, e.Result
		}
		if e.Kind == "receive" || e.Kind == "reject" {
			m.Sender, m.Client = e.Sender, e.Client
			if e.MessageID != "" {
				m.MessageID = e.MessageID
			}
			if e.Rcpt != "" && !contains(m.Rcpts, e.Rcpt) {
				m.Rcpts = append(m.Rcpts, e.Rcpt)
			}
		}
	}
	out := make([]TracedMessage, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].First.After(out[j].First) })
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TraceMessage returns every event of one message, oldest first: its own,
// and those of the messages it led to: its DSNs, and the copies released
// from the quarantine (through the release ID of its sanitize step).
func (s *Store) TraceMessage(ctx context.Context, queueID string) ([]Event, error) {
	var evs []Event
	// Seen by content, not ID: an event merged between two rounds comes
	// back with a new ID (see MergeEvents).
	have := map[Event]bool{}
	seen := map[string]bool{queueID: true}
	next := []string{queueID}
	// Three rounds: the message, its DSN or release ID, the released copy.
	for round := 0; round < 3 && len(next) > 0; round++ {
		found, err := s.MessageEvents(ctx, next, nil)
		if err != nil {
			return nil, err
		}
		next = nil
		for _, e := range found {
			k := e
			k.ID = 0
			if have[k] {
				continue
			}
			have[k] = true
			evs = append(evs, e)
			var links []string
			switch e.Kind {
			case "dsn", "sanitize":
				links = []string{e.Ref}
			case "release":
				links = []string{e.QueueID, e.Ref}
			}
			for _, id := range links {
				if id != "" && !seen[id] {
					seen[id] = true
					next = append(next, id)
				}
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].At.Equal(evs[j].At) {
			return evs[i].ID < evs[j].ID
		}
		return evs[i].At.Before(evs[j].At)
	})
	return evs, nil
}

// SessionEvents returns the events of one session, oldest first.
func (s *Store) SessionEvents(ctx context.Context, session string) ([]Event, error) {
	const limit = 5000
	found, err := s.events(ctx, `SELECT `+eventColumns+` FROM events WHERE session = ? AND session <> ''`+
		fmt.Sprintf(` ORDER BY at, id LIMIT %d`, limit), session)
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingEvents(ctx, time.Time{}, time.Time{}, func(e *Event) bool { return e.Session != "" && e.Session == session })
	if err != nil {
		return nil, err
	}
	return mergeEvents(found, pending, true, limit), nil
}
