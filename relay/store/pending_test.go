package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// readers returns what every reader of the trace answers, IDs left out
// (a merged event gets a new one): the answers must not depend on
// whether the events are pending, merged or some of each.
func readers(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	strip := func(evs []Event, err error) []Event {
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			evs[i].ID = 0
		}
		return evs
	}
	for name, q := range map[string]EventQuery{
		"sender": {Sender: "Yamada@example.com"}, "rcpt": {Rcpt: "tanaka@x"}, "message_id": {MessageID: "m1@e"},
		"queue_id": {QueueID: "Q4"}, "client": {Client: "192.0.2.7"}, "time": {Since: t0.Add(3 * time.Second), Until: t0.Add(8 * time.Second)},
	} {
		out["search "+name] = strip(s.SearchEvents(ctx, q))
		msgs, err := s.TraceSearch(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out["trace "+name] = msgs
	}
	out["message Q1"] = strip(s.TraceMessage(ctx, "Q1"))
	out["message Q2"] = strip(s.TraceMessage(ctx, "Q2"))
	out["session s3"] = strip(s.SessionEvents(ctx, "s3"))
	out["events"] = strip(s.MessageEvents(ctx, []string{"Q1", "Q2", "Q3"}, []string{"s3"}))
	counts, err := s.CountEvents(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	out["counts"] = counts
	rules, err := s.RefusalsByRule(ctx, t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	out["rules"] = rules
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Events are found the moment they are written, and found alike once
// merged: pending, half merged, merged.
func TestPendingAndMergedReadAlike(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		evs := story()
		// Two batches: a merge moves whole ones.
		for _, b := range [][]Event{evs[:4], evs[4:]} {
			if err := s.AddEvents(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.PendingEvents(ctx); err != nil || n != len(evs) {
			t.Fatalf("pending: %d, %v", n, err)
		}
		pending := readers(t, s)
		if n, err := s.MergeEvents(ctx, 1); err != nil || n != 4 {
			t.Fatalf("first merge: %d, %v", n, err)
		}
		if got := readers(t, s); got != pending {
			t.Errorf("half merged, the readers answer differently:\n%s\npending:\n%s", got, pending)
		}
		if n, err := s.MergeEvents(ctx, 100); err != nil || n != len(evs)-4 {
			t.Fatalf("second merge: %d, %v", n, err)
		}
		if n, err := s.MergeEvents(ctx, 100); err != nil || n != 0 {
			t.Fatalf("nothing left to merge: %d, %v", n, err)
		}
		if got := readers(t, s); got != pending {
			t.Errorf("merged, the readers answer differently:\n%s\npending:\n%s", got, pending)
		}
		if n, _ := s.PendingEvents(ctx); n != 0 {
			t.Errorf("%d still pending", n)
		}
	})
}

// A gateway merges its own pending events only (several share a
// PostgreSQL store), and pruning takes pending events too: those a
// stopped gateway left.
func TestMergeOwnAndPrunePending(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		evs := []Event{
			{Instance: "gw2", At: t0, Kind: "receive", QueueID: "Q9", Sender: "a@example.com", Result: "accepted"},
			{At: t0.Add(time.Hour), Kind: "receive", QueueID: "Q1", Sender: "a@example.com", Result: "accepted"},
		}
		if err := s.AddEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if n, err := s.MergeEvents(ctx, 100); err != nil || n != 1 {
			t.Fatalf("merged %d, %v; want gw1's one", n, err)
		}
		found, err := s.SearchEvents(ctx, EventQuery{Sender: "a@example.com"})
		if err != nil || len(found) != 2 {
			t.Fatalf("search found %d (%v), want both", len(found), err)
		}
		if found[0].ID <= 0 || found[1].ID >= 0 || found[1].Instance != "gw2" {
			t.Errorf("gw1's merged and gw2's pending: %+v", found)
		}
		n, err := s.PruneEvents(ctx, t0.Add(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want gw2's pending one", n, err)
		}
		if found, _ := s.SearchEvents(ctx, EventQuery{Sender: "a@example.com"}); len(found) != 1 || found[0].QueueID != "Q1" {
			t.Errorf("after pruning: %+v", found)
		}
	})
}

// Packing and unpacking give the events back, field for field.
func TestPackRoundTrip(t *testing.T) {
	evs := []Event{
		{Instance: "gw1", At: t0, Kind: "receive", QueueID: "Q1", Ref: "r", Session: "s", Client: "192.0.2.7", Sender: "a@x",
			Rcpt: "b@y", MessageID: "<m@x>", Result: "accepted", Rule: "mx-in", Code: 250, Detail: "日本語の詳細"},
		{Instance: "gw1", At: t0.Add(-time.Hour), Kind: "fail", Code: -1},
		{},
	}
	got, err := unpackEvents(packEvents(evs), len(evs), 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		want, g := evs[i], got[i]
		want.ID = pendingID(7, i)
		if !g.At.Equal(want.At) {
			t.Errorf("event %d at %v, want %v", i, g.At, want.At)
		}
		g.At, want.At = time.Time{}, time.Time{}
		if g != want {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
	if _, err := unpackEvents(packEvents(evs), len(evs)+1, 7); err == nil {
		t.Error("one event more than packed: no error")
	}
	if _, err := unpackEvents(packEvents(evs), len(evs)-1, 7); err == nil {
		t.Error("one event fewer than packed: no error")
	}
}

// A damaged row is an error, never a panic or a read past its end.
func FuzzUnpackEvents(f *testing.F) {
	f.Add(packEvents([]Event{{Instance: "gw1", At: t0, Kind: "send", Detail: "x"}}), 1)
	f.Add([]byte{pendingFormat, 0x02, 0x00, 0xff}, 1)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		evs, err := unpackEvents(data, n, 1)
		if err == nil && len(evs) != n {
			t.Fatalf("%d events for %d", len(evs), n)
		}
	})
}

// A pending row that cannot be unpacked is dropped and reported, and the
// good ones beside it are merged: the upkeep is never stuck on it.
func TestMergeDropsDamagedBatch(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		good := []Event{{At: t0, Kind: "send", QueueID: "Q1"}}
		if err := s.AddEvents(ctx, good); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO events_pending (instance, first_at, last_at, n, data)
			VALUES (?, ?, ?, ?, ?)`), "gw1", micros(t0), micros(t0), 3, []byte{pendingFormat, 0x80}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddEvents(ctx, []Event{{At: t0, Kind: "send", QueueID: "Q2"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SearchEvents(ctx, EventQuery{QueueID: "Q1"}); err == nil {
			t.Error("a search over the damaged row: no error")
		}
		n, err := s.MergeEvents(ctx, 100)
		if n != 2 || err == nil || !strings.Contains(err.Error(), "3 events are dropped") {
			t.Fatalf("merge: %d, %v; want the two good events and the damaged row reported", n, err)
		}
		if n, err := s.MergeEvents(ctx, 100); n != 0 || err != nil {
			t.Errorf("second merge: %d, %v", n, err)
		}
		if found, err := s.SearchEvents(ctx, EventQuery{QueueID: "Q2"}); err != nil || len(found) != 1 {
			t.Errorf("after the merge: %v, %v", found, err)
		}
	})
}

// packEvents packs evs as one row holds them.
func packEvents(evs []Event) []byte {
	b := NewBatch("")
	for i := range evs {
		b.Add(&evs[i])
	}
	return b.data
}

// Events of one time keep the order they were written in, pending as
// merged (a receive line's recipients, one event each).
func TestPendingKeepOrder(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var evs []Event
		for _, r := range []string{"tanaka@x", "suzuki@x", "abe@x"} {
			evs = append(evs, Event{At: t0, Kind: "receive", QueueID: "Q1", Rcpt: r, Result: "accepted"})
		}
		for range 2 { // a second row after the first
			if err := s.AddEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		order := func() string {
			found, err := s.MessageEvents(ctx, []string{"Q1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var rcpts []string
			for _, e := range found {
				rcpts = append(rcpts, e.Rcpt)
			}
			return strings.Join(rcpts, " ")
		}
		const want = "tanaka@x suzuki@x abe@x tanaka@x suzuki@x abe@x"
		if got := order(); got != want {
			t.Errorf("pending: %s, want %s", got, want)
		}
		if _, err := s.MergeEvents(ctx, 100); err != nil {
			t.Fatal(err)
		}
		if got := order(); got != want {
			t.Errorf("merged: %s, want %s", got, want)
		}
	})
}
