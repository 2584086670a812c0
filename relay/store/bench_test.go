package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// benchEvents is the size of the trace the search benchmark runs over:
// 250,000 messages of four events each, about a month of a mid-size
// municipality's mail.
const benchEvents = 1_000_000

var (
	benchOnce  sync.Once
	benchStore *Store
	benchErr   error
	benchDir   string
)

// benchTrace fills a SQLite store with benchEvents events once per run,
// the newest MaxPending of them still pending.
func benchTrace(b *testing.B) *Store {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "sekisho-bench-trace-")
		if benchErr != nil {
			return
		}
		ctx := context.Background()
		benchStore, benchErr = Open(ctx, Config{Path: filepath.Join(benchDir, "trace.db")}, "gw1")
		if benchErr != nil {
			return
		}
		r := rand.New(rand.NewPCG(1, 2))
		start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		batch := make([]Event, 0, 4000)
		for m := 0; m < benchEvents/4; m++ {
			at := start.Add(time.Duration(m) * 10 * time.Second)
			qid := fmt.Sprintf("Q%08d", m)
			u := r.IntN(2000) // 2,000 correspondents, about 125 messages each
			sender := fmt.Sprintf("user%d@example%d.com", u, u%20)
			rcpt := fmt.Sprintf("staff%d@city.example.lg.jp", r.IntN(10000))
			client := fmt.Sprintf("192.0.%d.%d", r.IntN(8), r.IntN(256))
			mid := fmt.Sprintf("<%d.bench@example.com>", m)
			batch = append(batch,
				Event{At: at, Kind: "receive", QueueID: qid, Session: fmt.Sprintf("s%d", m), Client: client, Sender: sender, Rcpt: rcpt, MessageID: mid, Result: "accepted", Detail: "2048 bytes"},
				Event{At: at.Add(time.Second), Kind: "sanitize", QueueID: qid, Ref: fmt.Sprintf("20261101-%010x", m), Result: "sanitized"},
				Event{At: at.Add(2 * time.Second), Kind: "fail", QueueID: qid, Sender: sender, Rcpt: rcpt, Result: "deferred", Code: 451, Detail: "attempt 1"},
				Event{At: at.Add(62 * time.Second), Kind: "send", QueueID: qid, Sender: sender, Rcpt: rcpt, Result: "delivered", Code: 250, Detail: "attempt 2"})
			if len(batch) == cap(batch) {
				if benchErr = benchStore.AddEvents(ctx, batch); benchErr != nil {
					return
				}
				batch = batch[:0]
				// All but the newest MaxPending merged: the most a
				// search finds waiting for its indexes.
				for (m+1)*4 <= benchEvents-MaxPending {
					n, err := benchStore.MergeEvents(ctx, 50000)
					if benchErr = err; err != nil || n == 0 {
						break
					}
				}
			}
		}
		benchErr = benchStore.AddEvents(ctx, batch)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

// BenchmarkTraceSearch1M is the console's message trace over a million
// events on SQLite: each search finds the messages and reads their whole
// story, as the page does. It reports the 95th percentile (target: at
// most 100 ms).
func BenchmarkTraceSearch1M(b *testing.B) {
	s := benchTrace(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	queries := map[string]func() EventQuery{
		"sender": func() EventQuery {
			u := r.IntN(2000)
			return EventQuery{Sender: fmt.Sprintf("user%d@example%d.com", u, u%20), Limit: 500}
		},
		"message_id": func() EventQuery {
			return EventQuery{MessageID: fmt.Sprintf("<%d.bench@example.com>", r.IntN(benchEvents/4)), Limit: 500}
		},
		"hour": func() EventQuery {
			t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(28*24)) * time.Hour)
			return EventQuery{Since: t, Until: t.Add(time.Hour), Limit: 500}
		},
		"rcpt": func() EventQuery {
			return EventQuery{Rcpt: fmt.Sprintf("staff%d@city.example.lg.jp", r.IntN(10000)), Limit: 500}
		},
		"queue_id": func() EventQuery { return EventQuery{QueueID: fmt.Sprintf("Q%08d", r.IntN(benchEvents/4)), Limit: 500} },
		"client+day": func() EventQuery {
			day := time.Date(2026, 11, 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
			return EventQuery{Client: fmt.Sprintf("192.0.%d.%d", r.IntN(8), r.IntN(256)), Since: day, Until: day.Add(24 * time.Hour), Limit: 500}
		},
		"rcpt+week": func() EventQuery {
			day := time.Date(2026, 11, 1+r.IntN(21), 0, 0, 0, 0, time.UTC)
			return EventQuery{Rcpt: fmt.Sprintf("staff%d@city.example.lg.jp", r.IntN(10000)), Since: day, Until: day.Add(7 * 24 * time.Hour), Limit: 500}
		},
	}
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		next := queries[name]
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			found := 0
			for b.Loop() {
				t0 := time.Now()
				msgs, err := s.TraceSearch(ctx, next())
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
				found += len(msgs)
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			p95 := took[len(took)*95/100]
			b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(found)/float64(len(took)), "msgs/op")
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		pgServer.Stop()
	}
	if benchStore != nil {
		benchStore.Close()
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkAddEvents is the writer's cost per event on SQLite, in
// batches of 2048 (the most relay/ops/events writes at once; a busy
// gateway fills them), written pending. BenchmarkMergeEvents is what
// indexing them costs later.
func BenchmarkAddEvents(b *testing.B) { benchWrite(b, false) }

// BenchmarkMergeEvents is the cost per event of moving pending events
// into the indexed table (a batch added, then merged, each round).
func BenchmarkMergeEvents(b *testing.B) { benchWrite(b, true) }

func benchWrite(b *testing.B, merge bool) {
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "w.db")}, "gw1")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	at := time.Now()
	batch := make([]Event, 2048)
	n := 0
	for b.Loop() {
		for i := 0; i < len(batch); i += 2 {
			n += 2
			// A message's receive line and its delivery, as the log
			// writes them.
			qid := fmt.Sprintf("Q%08d", n)
			batch[i] = Event{At: at.Add(time.Duration(n)), Kind: "receive", QueueID: qid, Session: fmt.Sprintf("s%d", n),
				Client: "192.0.2.7", Sender: fmt.Sprintf("user%d@example.com", n%2000), Rcpt: fmt.Sprintf("staff%d@city.example.lg.jp", n%10000),
				MessageID: fmt.Sprintf("<%d@example.com>", n), Result: "accepted", Detail: "2048 bytes from 192.0.2.7"}
			batch[i+1] = Event{At: at.Add(time.Duration(n + 1)), Kind: "send", QueueID: qid, Sender: batch[i].Sender, Rcpt: batch[i].Rcpt,
				Result: "delivered", Code: 250, Detail: "attempt 1 via sink 127.0.0.1:25: 250 ok"}
		}
		if merge {
			b.StopTimer()
		}
		if err := s.AddEvents(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		if merge {
			b.StartTimer()
			if _, err := s.MergeEvents(context.Background(), len(batch)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/event")
}
