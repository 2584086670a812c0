package events

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), "s.db")}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls until cond holds (generous deadline: a busy machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The lines the mail path writes, as it writes them, become the events
// of the trace.
func TestRecordsBecomeEvents(t *testing.T) {
	st := openStore(t)
	var logged bytes.Buffer
	rec := New(1024, "gw1")
	log := slog.New(rec.Handler(slog.NewTextHandler(&logged, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx, func() *store.Store { return st }, store.DefaultConfig(), log) }()
	defer func() { cancel(); wg.Wait() }()

	sess := log.With("session", "k3j5a", "client", "192.0.2.7")
	sess.Info("connection opened", "kind", "accept", "listener", "mx")
	sess.Info("accepted", "kind", "receive", "id", "Q1", "helo", "mx.example.com", "auth", "", "from", "Yamada@Example.com",
		"orig_from", "yamada@example.com", "rcpts", "tanaka@city.example.lg.jp,suzuki@city.example.lg.jp", "size", 2048,
		"source", "internet", "rules", "mx-in", "message_id", "<m1@example.com>")
	sess.Info("refused", "kind", "reject", "stage", "rcpt", "arg", "nobody@city.example.lg.jp", "from", "yamada@example.com",
		"code", 550, "enhanced", "5.1.1", "rule", "builtin:unknown-user", "reason", "no such account")
	log.Info("delivery", "kind", "fail", "id", "Q1", "rcpt", "tanaka@city.example.lg.jp", "from", "yamada@example.com",
		"hop", "inner", "remote", "10.0.0.5:25", "result", "deferred", "code", 451, "reply", "4.3.0 try later", "attempt", 1)
	// A hop that writes files or runs a program has no remote address.
	log.Info("delivery", "kind", "send", "id", "Q1", "rcpt", "tanaka@city.example.lg.jp", "from", "yamada@example.com",
		"hop", "maildir", "remote", "", "result", "delivered", "code", 250, "reply", "2.0.0 ok", "attempt", 2)
	log.Info("dsn queued", "kind", "fail", "action", "failed", "id", "Q1", "dsn", "Q2", "to", "yamada@example.com", "recipients", 1)
	log.Info("sanitize", "kind", "sanitize", "id", "Q1", "route", "inner", "release_id", "20261129-0123456789", "result", "attachments removed=1")
	log.Info("quarantine purged", "kind", "sanitize", "removed", 0)
	log.Info("original released", "kind", "sanitize", "release_id", "20261129-0123456789", "id", "Q3", "to", "tanaka@city.example.lg.jp", "by", "bucho@x")
	log.Info("queue changed", "kind", "audit", "actor", "admin@x", "action", "queue-hold", "object", "Q1")
	log.Info("signed in", "kind", "audit", "actor", "admin@x", "action", "signin")

	var evs []store.Event
	waitFor(t, "the events", func() bool {
		evs, _ = st.MessageEvents(context.Background(), []string{"Q1", "Q3", "20261129-0123456789"}, []string{"k3j5a"})
		return len(evs) >= 9
	})
	var got []string
	for _, e := range evs {
		got = append(got, e.Kind+"/"+e.Result+"/"+e.Rcpt)
	}
	want := []string{
		"receive/accepted/tanaka@city.example.lg.jp", "receive/accepted/suzuki@city.example.lg.jp",
		"reject/refused/nobody@city.example.lg.jp", "fail/deferred/tanaka@city.example.lg.jp",
		"send/delivered/tanaka@city.example.lg.jp", "dsn/failed/yamada@example.com", "sanitize/sanitized/",
		"release/released/tanaka@city.example.lg.jp", "queue/hold/",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	r := evs[0]
	if r.MessageID != "<m1@example.com>" || r.Client != "192.0.2.7" || r.Session != "k3j5a" || r.Sender != "yamada@example.com" || r.Instance != "gw1" {
		t.Errorf("receive event %+v", r)
	}
	if evs[2].Rule != "builtin:unknown-user" || evs[2].Code != 550 {
		t.Errorf("reject event %+v", evs[2])
	}
	if evs[3].Code != 451 || evs[3].Detail != "attempt 1 via inner 10.0.0.5:25: 4.3.0 try later" {
		t.Errorf("deferred attempt %+v", evs[3])
	}
	if evs[4].Detail != "attempt 2 via maildir: 2.0.0 ok" {
		t.Errorf("delivery without a remote address: %q", evs[4].Detail)
	}
	// The log itself is untouched.
	if n := strings.Count(logged.String(), "\n"); n != 11 {
		t.Errorf("%d log lines, want 11:\n%s", n, logged.String())
	}
}

// Without a store the buffer fills and the rest is dropped, counted and
// logged once; logging never blocks.
func TestNoStoreDropsWithoutBlocking(t *testing.T) {
	var logged lockedBuf
	rec := New(4, "gw1")
	inner := slog.New(slog.NewTextHandler(&logged, nil))
	log := slog.New(rec.Handler(inner.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec.Run(ctx, func() *store.Store { return nil }, store.DefaultConfig(), inner)
	}()
	defer func() { cancel(); wg.Wait() }()
	done := make(chan struct{})
	go func() {
		for i := range 2000 {
			log.Info("delivery", "kind", "send", "id", "Q", "rcpt", "a@b", "attempt", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("logging blocked without a store")
	}
	if rec.Dropped() == 0 {
		t.Fatal("nothing dropped")
	}
	waitFor(t, "the drop warning", func() bool { return strings.Contains(logged.String(), "trace events dropped") })
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(logged.String(), "trace events dropped"); n != 1 {
		t.Errorf("the drop was logged %d times", n)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMergeDue(t *testing.T) {
	for _, c := range []struct {
		pending, rate int
		want          bool
	}{
		{0, 0, false},                            // nothing pending
		{5, 0, true},                             // quiet
		{5, burstRate - 1, true},                 // below a flood
		{5, burstRate, false},                    // a flood: wait
		{store.MaxPending - 1, burstRate, false}, // still within the bound
		{store.MaxPending, 10 * burstRate, true}, // too many waiting
	} {
		if got := mergeDue(c.pending, c.rate); got != c.want {
			t.Errorf("mergeDue(%d pending, %d a second) = %v, want %v", c.pending, c.rate, got, c.want)
		}
	}
}

// In the quiet after the events, every one of them is merged, and what
// an earlier run left pending is merged too.
func TestQuietMerges(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	left := []store.Event{{At: time.Now(), Kind: "receive", QueueID: "Q0", Sender: "a@example.com", Result: "accepted"}}
	if err := st.AddEvents(ctx, left); err != nil {
		t.Fatal(err)
	}
	rec := New(1024, "gw1")
	log := slog.New(rec.Handler(slog.DiscardHandler))
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(rctx, func() *store.Store { return st }, store.DefaultConfig(), log) }()
	defer func() { cancel(); wg.Wait() }()
	for i := range 3000 {
		log.Info("delivery", "kind", "send", "id", fmt.Sprintf("R%d", i), "rcpt", "a@b", "result", "delivered", "attempt", 1)
	}
	waitFor(t, "every event merged", func() bool {
		n, err := st.PendingEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.SearchEvents(ctx, store.EventQuery{Since: time.Now().Add(-time.Hour), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return n == 0 && len(evs) == 1000 && evs[0].ID > 0
	})
	if evs, _ := st.SearchEvents(ctx, store.EventQuery{QueueID: "Q0"}); len(evs) != 1 || evs[0].ID <= 0 {
		t.Errorf("the earlier run's pending event: %+v", evs)
	}
}

// nop is an enabled handler that does nothing.
type nop struct{}

func (nop) Enabled(context.Context, slog.Level) bool  { return true }
func (nop) Handle(context.Context, slog.Record) error { return nil }
func (n nop) WithAttrs([]slog.Attr) slog.Handler      { return n }
func (n nop) WithGroup(string) slog.Handler           { return n }

// BenchmarkTap is what the tap adds to a message's logging: a session's
// logger, its receive line, a delivery line and a line of an untraced
// kind, against a handler that takes the records and does nothing. The
// batch is taken every millisecond, as Run takes it.
func BenchmarkTap(b *testing.B) {
	rec := New(1<<20, "gw1")
	done := make(chan struct{})
	defer close(done)
	go func() {
		spare := store.NewBatch("gw1")
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				spare = rec.swap(spare)
			}
		}
	}()
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{{"plain", nop{}}, {"tap", rec.Handler(nop{})}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				log := slog.New(c.h).With("session", "k3j5a", "client", "192.0.2.7")
				log.Info("accepted", "kind", "receive", "id", "Q1", "helo", "mx.example.com", "auth", "", "from", "yamada@example.com",
					"orig_from", "yamada@example.com", "rcpts", "tanaka@city.example.lg.jp", "size", 2048,
					"source", "internet", "rules", "mx-in", "message_id", "<m1@example.com>")
				log.Info("delivery", "kind", "send", "id", "Q1", "rcpt", "tanaka@city.example.lg.jp", "from", "yamada@example.com",
					"hop", "inner", "remote", "10.0.0.5:25", "result", "delivered", "code", 250, "reply", "2.0.0 ok", "attempt", 2)
				log.Info("connection closed", "kind", "accept", "duration", 5)
			}
		})
	}
}

// A store that fails the upkeep is told once and left alone for
// mergeBackoff: degrade, never loop.
func TestMergeFailureBacksOff(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	if err := st.AddEvents(ctx, []store.Event{{At: time.Now(), Kind: "send", QueueID: "Q1"}}); err != nil {
		t.Fatal(err)
	}
	var logged lockedBuf
	m := &merger{pending: -1, log: slog.New(slog.NewTextHandler(&logged, nil))}
	if !m.due(ctx, st) || m.pending != 1 {
		t.Fatalf("one pending event left by an earlier run: due=false or pending=%d", m.pending)
	}
	st.Close()
	m.merge(ctx, st)
	m.merge(ctx, st)
	if n := strings.Count(logged.String(), "cannot be indexed"); n != 1 {
		t.Errorf("the failure logged %d times, want once:\n%s", n, logged.String())
	}
	if m.due(ctx, st) {
		t.Error("due again right after a failure")
	}
	if m.pending != 1 {
		t.Errorf("pending %d after failed merges, want 1", m.pending)
	}
}

// A count above what is pending (rows dropped, another writer) ends at
// the first empty merge instead of merging nothing again and again.
func TestMergeCountTooHigh(t *testing.T) {
	st := openStore(t)
	m := &merger{pending: 5, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if !m.due(ctx, st) {
		t.Fatal("5 pending, quiet: not due")
	}
	m.merge(ctx, st)
	if m.pending != 0 || m.due(ctx, st) {
		t.Errorf("after an empty merge: pending %d, due %v", m.pending, m.due(ctx, st))
	}
}
