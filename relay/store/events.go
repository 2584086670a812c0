package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Event is one step of a message's way through a gateway, as the trace
// shows it: received, refused, sanitized, queued, a delivery attempt with
// the reply, a DSN, a release, a change by an administrator.
type Event struct {
	// ID orders events of one time; it changes when a pending event is
	// indexed (see pending.go), so it is not shown.
	ID       int64     `json:"-"`
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
	// Kind is the step: receive, reject, send, fail, dsn, sanitize,
	// release, queue.
	Kind string `json:"kind"`
	// QueueID is the message's queue ID ("" for a refusal before DATA).
	QueueID string `json:"queue_id,omitempty"`
	// Ref links to another record: the DSN's queue ID, the release ID of
	// a sanitized message, the queue ID a release was queued as.
	Ref       string `json:"ref,omitempty"`
	Session   string `json:"session,omitempty"`
	Client    string `json:"client,omitempty"`
	Sender    string `json:"sender,omitempty"`
	Rcpt      string `json:"rcpt,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Result: accepted, refused, delivered, deferred, failed, queued,
	// sanitized, released, ...
	Result string `json:"result,omitempty"`
	// Rule is the rule that decided a refusal or a route.
	Rule string `json:"rule,omitempty"`
	Code int    `json:"code,omitempty"`
	// Detail is the rest, for people: the reply, the rule, the next hop.
	Detail string `json:"detail,omitempty"`
}

// maxField bounds what one field of an event keeps: a client chooses the
// Message-ID and the refused arguments.
const maxField = 998

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	cut := maxField
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut]
}

// insertColumns are an event's columns but its ID.
const insertColumns = `instance, at, kind, queue_id, ref, session, client, sender, rcpt, message_id, result, rule, code, detail`

// insertRows is how many events one INSERT carries: one statement per
// event spends most of its time setting the statement up.
const insertRows = 64

// insertEvents writes events, as a Batch packed them, into events.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, evs []Event) error {
	const cols = 14
	row := "(" + placeholders(cols) + ")"
	insert := func(n int) string {
		return s.q(`INSERT INTO events (` + insertColumns + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", "))
	}
	// Full chunks share one prepared statement: parsing a long INSERT
	// costs as much as running it.
	var full *sql.Stmt
	var err error
	if len(evs) >= insertRows {
		if full, err = tx.PrepareContext(ctx, insert(insertRows)); err != nil {
			return err
		}
		defer full.Close()
	}
	args := make([]any, 0, insertRows*cols)
	for len(evs) > 0 {
		n := min(len(evs), insertRows)
		args = args[:0]
		for _, e := range evs[:n] {
			args = append(args, e.Instance, micros(e.At), e.Kind, e.QueueID, e.Ref, e.Session, e.Client,
				e.Sender, e.Rcpt, e.MessageID, e.Result, e.Rule, e.Code, e.Detail)
		}
		if n == insertRows {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insert(n), args...)
		}
		if err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// entryKindList are the steps that bring a message in (or refuse it):
// the only events indexed by sender and recipient. entryKinds is their
// SQL condition, which repeats the indexes' word for word (see
// migrations); isEntryKind the same in Go, for pending events.
var (
	entryKindList = []string{"receive", "reject", "dsn", "release"}
	entryKinds    = "kind IN ('" + strings.Join(entryKindList, "', '") + "')"
)

func isEntryKind(kind string) bool { return slices.Contains(entryKindList, kind) }

// EventQuery selects events; every field given must match. Addresses
// match the steps that bring a message in (received, refused, a DSN, a
// release); the rest of a message's story is found by its queue ID.
type EventQuery struct {
	Sender    string // an address, case-insensitive
	Rcpt      string
	MessageID string // with or without the angle brackets
	QueueID   string
	Client    string // the client's IP address
	Since     time.Time
	Until     time.Time
	Limit     int // default and maximum 1000
}

// Empty reports whether the query selects by nothing but time.
func (q EventQuery) Empty() bool {
	return q.Sender == "" && q.Rcpt == "" && q.MessageID == "" && q.QueueID == "" && q.Client == ""
}

const eventColumns = `id, instance, at, kind, queue_id, ref, session, client, sender, rcpt, message_id, result, rule, code, detail`

// SearchEvents returns the events that match, newest first.
func (s *Store) SearchEvents(ctx context.Context, q EventQuery) ([]Event, error) {
	var where []string
	var args []any
	var match []eventFilter
	add := func(cond string, v any, f eventFilter) {
		where = append(where, cond)
		args = append(args, v)
		match = append(match, f)
	}
	if q.Sender != "" {
		v := lower(strings.Trim(q.Sender, "<> "))
		add("sender = ? AND "+entryKinds, v, func(e *Event) bool { return e.Sender == v && isEntryKind(e.Kind) })
	}
	if q.Rcpt != "" {
		v := lower(strings.Trim(q.Rcpt, "<> "))
		add("rcpt = ? AND "+entryKinds, v, func(e *Event) bool { return e.Rcpt == v && isEntryKind(e.Kind) })
	}
	if q.MessageID != "" {
		id := strings.TrimSpace(q.MessageID)
		if !strings.HasPrefix(id, "<") {
			id = "<" + id + ">"
		}
		add("message_id = ? AND message_id <> ''", id, func(e *Event) bool { return e.MessageID == id })
	}
	if q.QueueID != "" {
		v := strings.TrimSpace(q.QueueID)
		where = append(where, "((queue_id = ? AND queue_id <> '') OR (ref = ? AND ref <> ''))")
		args = append(args, v, v)
		match = append(match, func(e *Event) bool { return v != "" && (e.QueueID == v || e.Ref == v) })
	}
	if q.Client != "" {
		v := strings.TrimSpace(q.Client)
		add("client = ? AND client <> ''", v, func(e *Event) bool { return v != "" && e.Client == v })
	}
	if !q.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(q.Until))
	}
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	query := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit)
	found, err := s.events(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingEvents(ctx, q.Since, q.Until, func(e *Event) bool {
		for _, m := range match {
			if !m(e) {
				return false
			}
		}
		return inWindow(e, q.Since, q.Until)
	})
	if err != nil {
		return nil, err
	}
	return mergeEvents(found, pending, false, limit), nil
}

// mergeEvents puts indexed and pending events in one order and keeps the
// first limit.
func mergeEvents(indexed, pending []Event, ascending bool, limit int) []Event {
	if len(pending) == 0 {
		return indexed
	}
	all := append(indexed, pending...)
	sort.SliceStable(all, byTime(all, ascending))
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

// MessageEvents returns every event of the messages with these queue IDs
// (and the events that refer to them: their DSNs, their releases) and of
// the refused sessions given, oldest first.
func (s *Store) MessageEvents(ctx context.Context, queueIDs, sessions []string) ([]Event, error) {
	if len(queueIDs) == 0 && len(sessions) == 0 {
		return nil, nil
	}
	var conds []string
	var args []any
	if len(queueIDs) > 0 {
		conds = append(conds, `(queue_id IN (`+placeholders(len(queueIDs))+`) AND queue_id <> '')`,
			`(ref IN (`+placeholders(len(queueIDs))+`) AND ref <> '')`)
		for range 2 {
			for _, id := range queueIDs {
				args = append(args, id)
			}
		}
	}
	if len(sessions) > 0 {
		conds = append(conds, `(session IN (`+placeholders(len(sessions))+`) AND session <> '' AND queue_id = '')`)
		for _, id := range sessions {
			args = append(args, id)
		}
	}
	const limit = 5000
	found, err := s.events(ctx, `SELECT `+eventColumns+` FROM events WHERE `+strings.Join(conds, " OR ")+
		fmt.Sprintf(` ORDER BY at, id LIMIT %d`, limit), args...)
	if err != nil {
		return nil, err
	}
	qids, sess := set(queueIDs), set(sessions)
	pending, err := s.pendingEvents(ctx, time.Time{}, time.Time{}, func(e *Event) bool {
		return e.QueueID != "" && qids[e.QueueID] || e.Ref != "" && qids[e.Ref] ||
			e.Session != "" && e.QueueID == "" && sess[e.Session]
	})
	if err != nil {
		return nil, err
	}
	return mergeEvents(found, pending, true, limit), nil
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func (s *Store) events(ctx context.Context, query string, args ...any) ([]Event, error) {
	return queryAll(ctx, s, query, args, func(sc scanner) (Event, error) {
		var e Event
		var at int64
		err := sc.Scan(&e.ID, &e.Instance, &at, &e.Kind, &e.QueueID, &e.Ref, &e.Session, &e.Client,
			&e.Sender, &e.Rcpt, &e.MessageID, &e.Result, &e.Rule, &e.Code, &e.Detail)
		e.At = fromMicros(at)
		return e, err
	})
}

// EventCount is the number of events of one kind and result in a period.
type EventCount struct {
	Kind   string
	Result string
	Count  int
}

// CountEvents counts events by kind and result since a time (the
// dashboard's rates), over every instance.
func (s *Store) CountEvents(ctx context.Context, since time.Time) ([]EventCount, error) {
	counts, err := queryAll(ctx, s, `SELECT kind, result, COUNT(*) FROM events WHERE at >= ?
		GROUP BY kind, result`, []any{micros(since)}, func(sc scanner) (EventCount, error) {
		var c EventCount
		return c, sc.Scan(&c.Kind, &c.Result, &c.Count)
	})
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingEvents(ctx, since, time.Time{}, func(e *Event) bool { return inWindow(e, since, time.Time{}) })
	if err != nil {
		return nil, err
	}
	type key struct{ kind, result string }
	at := map[key]int{}
	for i, c := range counts {
		at[key{c.Kind, c.Result}] = i
	}
	for _, e := range pending {
		k := key{e.Kind, e.Result}
		i, ok := at[k]
		if !ok {
			i = len(counts)
			at[k] = i
			counts = append(counts, EventCount{Kind: e.Kind, Result: e.Result})
		}
		counts[i].Count++
	}
	// Sorted here, as bytes, whether or not any were pending: PostgreSQL
	// would sort by its collation.
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].Kind != counts[j].Kind {
			return counts[i].Kind < counts[j].Kind
		}
		return counts[i].Result < counts[j].Result
	})
	return counts, nil
}

// RuleCount is how often something (a rule) refused.
type RuleCount struct {
	Rule  string
	Count int
	Last  time.Time
}

// RefusalsByRule counts the refusals since a time by the rule that
// decided, most frequent first.
func (s *Store) RefusalsByRule(ctx context.Context, since time.Time, limit int) ([]RuleCount, error) {
	// Every rule's count, not the first limit: pending refusals may
	// change the order.
	counts, err := queryAll(ctx, s, `SELECT rule, COUNT(*), MAX(at) FROM events
		WHERE kind = 'reject' AND at >= ? GROUP BY rule`, []any{micros(since)},
		func(sc scanner) (RuleCount, error) {
			var c RuleCount
			var last int64
			err := sc.Scan(&c.Rule, &c.Count, &last)
			c.Last = fromMicros(last)
			return c, err
		})
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingEvents(ctx, since, time.Time{}, func(e *Event) bool {
		return e.Kind == "reject" && inWindow(e, since, time.Time{})
	})
	if err != nil {
		return nil, err
	}
	at := map[string]int{}
	for i, c := range counts {
		at[c.Rule] = i
	}
	for _, e := range pending {
		i, ok := at[e.Rule]
		if !ok {
			i = len(counts)
			at[e.Rule] = i
			counts = append(counts, RuleCount{Rule: e.Rule})
		}
		counts[i].Count++
		if e.At.After(counts[i].Last) {
			counts[i].Last = e.At
		}
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].Count != counts[j].Count {
			return counts[i].Count > counts[j].Count
		}
		return counts[i].Rule < counts[j].Rule
	})
	if len(counts) > limit {
		counts = counts[:limit]
	}
	return counts, nil
}

// pruneBatch bounds one DELETE, so that the writer is never held up long.
const pruneBatch = 5000

// PruneEvents removes events older than before, in batches, and returns
// how many went: indexed ones, and pending batches wholly older (those a
// stopped gateway left).
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.pruneBatches(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)`, micros(before))
	if err != nil {
		return n, err
	}
	var p int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(n), 0) FROM events_pending WHERE last_at < ?`), micros(before)).Scan(&p)
	if err == nil && p > 0 {
		_, err = s.db.ExecContext(ctx, s.q(`DELETE FROM events_pending WHERE last_at < ?`), micros(before))
	}
	if err != nil {
		return n, err
	}
	return n + p, nil
}

func (s *Store) pruneBatches(ctx context.Context, query string, before int64) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.q(query), before, pruneBatch)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
