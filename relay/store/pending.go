package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The trace is written in two steps. AddEvents stores a batch of events as
// one row of events_pending, the events packed in a blob: a row per
// event with its eight indexes costs the writer 13 to 25 µs an event on
// SQLite (each index insert lands at a random place in its B-tree, and
// the commit rewrites every page it dirtied), a packed batch under 2 µs
// (BenchmarkAddEvents, BenchmarkMergeEvents). MergeEvents later unpacks
// the oldest batches into events, indexed; relay/ops/events calls it when
// mail is not arriving in a flood, so that the upkeep of the indexes
// waits for a quiet moment instead of taking the CPU from mail, and at
// once when MaxPending events wait.
//
// Every reader sees both: the indexed rows through SQL, the pending
// events unpacked and matched in Go by the same conditions, written
// beside each query's SQL. Pending events are few by that bound, so a
// search reads them all; TestPendingAndMergedReadAlike holds the two ways
// to the same answers.

// MaxPending is how many pending events a reader may have to unpack:
// the writer merges at once when this many wait, burst or not.
const MaxPending = 50_000

// MaxBatch is the most events one row of events_pending holds: their IDs
// are derived from the row's (pendingID).
const MaxBatch = 1 << 20

// rowEvents is how many events AddEvents puts in a row.
const rowEvents = 4096

// pendingFormat is the first byte of a packed batch.
const pendingFormat = 1

// Batch is events packed as one row of events_pending holds them, built
// an event at a time: relay/ops/events packs each as it is logged, with
// no slice of events in between, and AddBatch stores the row.
type Batch struct {
	instance    string
	data        []byte
	n           int
	first, last int64
}

// NewBatch returns an empty batch of one instance's events.
func NewBatch(instance string) *Batch { return &Batch{instance: instance} }

// Len is the number of events in the batch.
func (b *Batch) Len() int { return b.n }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() { b.data, b.n, b.first, b.last = b.data[:0], 0, 0, 0 }

// Add packs an event as the store keeps it (addresses folded, fields
// clipped): its time and code as varints, then its strings, each a
// uvarint length and the bytes. An event without an instance is the
// batch's.
func (b *Batch) Add(e *Event) {
	if b.n == 0 {
		b.data = append(b.data[:0], pendingFormat)
	}
	at := micros(e.At)
	if b.n == 0 || at < b.first {
		b.first = at
	}
	b.last = max(b.last, at)
	b.n++
	inst := e.Instance
	if inst == "" {
		inst = b.instance
	}
	b.data = binary.AppendVarint(b.data, at)
	b.data = binary.AppendVarint(b.data, int64(e.Code))
	for _, s := range [...]string{inst, e.Kind, clip(e.QueueID), clip(e.Ref), clip(e.Session), clip(e.Client),
		clip(lower(e.Sender)), clip(lower(e.Rcpt)), clip(e.MessageID), clip(e.Result), clip(e.Rule), clip(e.Detail)} {
		b.data = binary.AppendUvarint(b.data, uint64(len(s)))
		b.data = append(b.data, s...)
	}
}

// Each calls f with each event of the batch, as the store will return it
// (its ID aside), in one Event it reuses.
func (b *Batch) Each(f func(*Event)) error {
	if b.n == 0 {
		return nil
	}
	return eachPacked(b.data, b.n, 0, f)
}

// unpackEvents reads n events packed by packEvents; their strings share
// one copy of data. Event i gets the ID pendingID(row, i).
func unpackEvents(data []byte, n int, row int64) ([]Event, error) {
	out := make([]Event, 0, n)
	err := eachPacked(data, n, row, func(e *Event) { out = append(out, *e) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachPacked calls f with each of the n events packed in data, in turn,
// in one Event it reuses (f copies what it keeps); their strings share
// one copy of data. Event i gets the ID pendingID(row, i).
func eachPacked(data []byte, n int, row int64, f func(*Event)) error {
	if len(data) == 0 || data[0] != pendingFormat {
		return fmt.Errorf("pending events of row %d: unknown format", row)
	}
	buf := data[1:]
	all := string(buf) // the strings are cut from one copy
	p := 0
	bad := fmt.Errorf("pending events of row %d: truncated", row)
	num := func() (int64, bool) {
		v, k := binary.Varint(buf[p:])
		p += max(k, 0)
		return v, k > 0
	}
	str := func() (string, bool) {
		l, k := binary.Uvarint(buf[p:])
		if k <= 0 || l > uint64(len(buf)-p-k) {
			return "", false
		}
		p += k
		s := all[p : p+int(l)]
		p += int(l)
		return s, true
	}
	var e Event
	fields := [...]*string{&e.Instance, &e.Kind, &e.QueueID, &e.Ref, &e.Session, &e.Client, &e.Sender, &e.Rcpt,
		&e.MessageID, &e.Result, &e.Rule, &e.Detail}
	for i := 0; i < n; i++ {
		at, ok1 := num()
		code, ok2 := num()
		if !ok1 || !ok2 {
			return bad
		}
		e.ID, e.At, e.Code = pendingID(row, i), fromMicros(at), int(code)
		for _, fp := range fields {
			s, ok := str()
			if !ok {
				return bad
			}
			*fp = s
		}
		f(&e)
	}
	if p != len(buf) {
		return fmt.Errorf("pending events of row %d: %d bytes after %d events", row, len(buf)-p, n)
	}
	return nil
}

// pendingID is the ID of the i-th event of a pending row: negative, so
// that it never meets an indexed event's; rising with the row and the
// place in it, so that events of one time keep the order they were
// written in, as indexed ones do; and stable until the event is merged
// (it then gets a positive one).
func pendingID(row int64, i int) int64 { return math.MinInt64/2 + row*MaxBatch + int64(i) }

// AddEvents stores events, pending, in one transaction, a row per run of
// one instance's events. Events without an instance get the store's.
func (s *Store) AddEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := NewBatch(s.instance)
	for i := range evs {
		inst := evs[i].Instance
		if inst == "" {
			inst = s.instance
		}
		// A row holds one instance's events (a gateway writes only its
		// own; MergeEvents moves only its own).
		if b.n == rowEvents || b.n > 0 && inst != b.instance {
			if err := s.addBatch(ctx, tx, b); err != nil {
				return err
			}
			b.Reset()
		}
		b.instance = inst
		b.Add(&evs[i])
	}
	if err := s.addBatch(ctx, tx, b); err != nil {
		return err
	}
	return tx.Commit()
}

// AddBatch stores a batch as one row of pending events.
func (s *Store) AddBatch(ctx context.Context, b *Batch) error {
	if b.n == 0 {
		return nil
	}
	if b.n > MaxBatch {
		return fmt.Errorf("a batch of %d events: at most %d", b.n, MaxBatch)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.addBatch(ctx, tx, b); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) addBatch(ctx context.Context, tx *sql.Tx, b *Batch) error {
	if b.n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO events_pending (instance, first_at, last_at, n, data)
		VALUES (?, ?, ?, ?, ?)`), b.instance, b.first, b.last, b.n, b.data)
	return err
}

// MergeEvents moves this instance's oldest pending batches, up to limit
// events (but at least one batch), into events, in one transaction, and
// returns how many events it moved. A batch that cannot be unpacked is
// removed with the others, and reported in the error after the rest is
// committed.
func (s *Store) MergeEvents(ctx context.Context, limit int) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// A quiet gateway writes small batches: take several, but not so
	// many that a driver reading the whole result holds them all.
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, n, data FROM events_pending WHERE instance = ? ORDER BY id LIMIT 64`),
		s.instance)
	if err != nil {
		return 0, err
	}
	var evs []Event
	var last int64
	var damaged error // a row that cannot be unpacked is dropped, not retried forever
	rowsTaken := 0
	for (rowsTaken == 0 || len(evs) < limit) && rows.Next() {
		var n int
		var data []byte
		if err := rows.Scan(&last, &n, &data); err != nil {
			rows.Close()
			return 0, err
		}
		rowsTaken++
		batch, err := unpackEvents(data, n, last)
		if err != nil {
			damaged = fmt.Errorf("%w: its %d events are dropped", err, n)
			continue
		}
		evs = append(evs, batch...)
	}
	rows.Close()
	if err := rows.Err(); err != nil || rowsTaken == 0 {
		return 0, err
	}
	if err := s.insertEvents(ctx, tx, evs); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM events_pending WHERE instance = ? AND id <= ?`), s.instance, last); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(evs), damaged
}

// PendingEvents counts this instance's events not yet merged.
func (s *Store) PendingEvents(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(n), 0) FROM events_pending WHERE instance = ?`), s.instance).Scan(&n)
	return n, err
}

// pendingEvents unpacks the pending events of every instance that may
// fall in [since, until) (zero: open), oldest batch first, and returns
// those keep accepts.
func (s *Store) pendingEvents(ctx context.Context, since, until time.Time, keep func(*Event) bool) ([]Event, error) {
	query := `SELECT id, n, data FROM events_pending WHERE last_at >= ?`
	args := []any{micros(since)}
	if !until.IsZero() {
		query += ` AND first_at < ?`
		args = append(args, micros(until))
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var id int64
		var n int
		var data []byte
		if err := rows.Scan(&id, &n, &data); err != nil {
			return nil, err
		}
		err := eachPacked(data, n, id, func(e *Event) {
			if keep(e) {
				out = append(out, *e)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// eventFilter is a query's condition on one event, in Go: the pending
// events' half of the query whose SQL sits beside it.
type eventFilter func(e *Event) bool

// inWindow reports whether e is at or after since and before until
// (zero times: open).
func inWindow(e *Event, since, until time.Time) bool {
	at := micros(e.At)
	return (since.IsZero() || at >= micros(since)) && (until.IsZero() || at < micros(until))
}

// byTime sorts events oldest first (ascending) or newest first, ties by
// ID as the SQL's ORDER BY at, id.
func byTime(evs []Event, ascending bool) func(i, j int) bool {
	return func(i, j int) bool {
		a, b := evs[i], evs[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At) == ascending
		}
		return (a.ID < b.ID) == ascending
	}
}
