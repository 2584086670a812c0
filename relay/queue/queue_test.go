package queue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEnqueueSurvivesReopen(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	small := msgData(1, 2048)
	large := msgData(2, 50_000) // over InlineMax: its own file
	a := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), small)
	b := enqueue(t, q, testEnvelope("c@y.jp"), large)
	c := enqueue(t, q, testEnvelope("d@z.jp", "e@z.jp", "f@z.jp"), msgData(3, 100))
	if !(a < b && b < c) {
		t.Fatalf("IDs not increasing: %s %s %s", a, b, c)
	}
	next := time.Date(2025, 4, 1, 10, 0, 0, 0, time.UTC)
	must(t, q.MarkDelivered(a, 0))
	must(t, q.MarkDeferred(a, 1, next, "451 4.7.1 try later"))
	must(t, q.MarkDeferred(c, 0, next, "550 5.1.1 unknown user"))
	must(t, q.MarkFailed(c, 1, "550 5.1.1 unknown user"))
	must(t, q.Hold(b))
	want := q.List()
	if len(want) != 3 {
		t.Fatalf("List: %d messages, want 3", len(want))
	}
	if st := want[2].Rcpts[0]; st.Refusals != 1 || st.Attempts != 1 || st.Status != Deferred {
		t.Errorf("refused-and-deferred state = %+v", st)
	}
	if want[1].Envelope.Size != int64(len(large)) || !want[1].Held {
		t.Errorf("large message snapshot = %+v", want[1])
	}
	must(t, q.Close())

	q2 := openTest(t, cfg)
	sameMessages(t, q2.List(), want)
	if got := readAll(t, q2, a); !bytes.Equal(got, small) {
		t.Errorf("small message data differs")
	}
	if got := readAll(t, q2, b); !bytes.Equal(got, large) {
		t.Errorf("large message data differs")
	}
	if r := q2.Recovery(); r.Messages != 3 || len(r.Problems) != 0 {
		t.Errorf("Recovery = %+v", r)
	}
	// A new ID after reopening is above every earlier one.
	if d := enqueue(t, q2, testEnvelope("g@x.jp"), small); d <= c {
		t.Errorf("ID after reopen %s not above %s", d, c)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFinishedMessagesLeave(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	id := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 10_000))
	blob := filepath.Join(cfg.Dir, blobDir, blobName(id))
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("large message file: %v", err)
	}
	must(t, q.MarkDelivered(id, 0))
	must(t, q.MarkFailed(id, 1, "550 no"))
	if _, err := q.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finished message still listed: %v", err)
	}
	if err := q.MarkDelivered(id, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark on a finished message: %v, want ErrNotFound", err)
	}
	waitFor(t, func() bool { _, err := os.Stat(blob); return os.IsNotExist(err) })
	must(t, q.Close())
	q2 := openTest(t, cfg)
	if n := len(q2.List()); n != 0 {
		t.Fatalf("finished message came back: %d listed", n)
	}
}

func TestStateErrors(t *testing.T) {
	q := openTest(t, testConfig(t.TempDir()))
	id := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 100))
	must(t, q.MarkDelivered(id, 0))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"final recipient", q.MarkDeferred(id, 0, time.Now(), "x"), ErrFinal},
		{"unknown message", q.MarkDelivered(id+1000, 0), ErrNotFound},
		{"unknown hold", q.Hold(id + 1000), ErrNotFound},
		{"DSN about unknown", dsnErr(q, id+1000, 0), ErrNotFound},
		{"DSN about final", dsnErr(q, id, 0), ErrFinal},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if err := q.MarkFailed(id, 5, "x"); err == nil || !strings.Contains(err.Error(), "no recipient #5") {
		t.Errorf("recipient out of range: %v", err)
	}
	if _, err := q.Enqueue(testEnvelope(), strings.NewReader("x")); err == nil {
		t.Errorf("message without recipients accepted")
	}
}

func dsnErr(q *Spool, about ID, rcpt int) error {
	_, err := q.EnqueueDSN(testEnvelope("sender@x.jp"), strings.NewReader("bounce"), about, []Mark{{Rcpt: rcpt, Status: Failed, Reason: "550 no"}})
	return err
}

func TestEnqueueDSNCommitsTheOutcome(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	orig := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp", "c@x.jp"), msgData(1, 300))
	must(t, q.MarkDelivered(orig, 0))
	dsnEnv := testEnvelope("sender@city.example.lg.jp")
	dsnEnv.From = ""
	dsn, err := q.EnqueueDSN(dsnEnv, strings.NewReader("bounce"), orig, []Mark{
		{Rcpt: 1, Status: Failed, Reason: "550 5.1.1 no such user"},
		{Rcpt: 2, Status: Deferred},
	})
	must(t, err)
	check := func(q *Spool) {
		t.Helper()
		m, err := q.Get(orig)
		must(t, err)
		if st := m.Rcpts[1]; st.Status != Failed || st.LastError != "550 5.1.1 no such user" || st.Attempts != 1 {
			t.Errorf("failed recipient = %+v", st)
		}
		if st := m.Rcpts[2]; st.Status != Pending || !st.DelayNotified {
			t.Errorf("delay-notified recipient = %+v", st)
		}
		d, err := q.Get(dsn)
		must(t, err)
		if d.Envelope.From != "" || d.Envelope.Size != 6 {
			t.Errorf("DSN envelope = %+v", d.Envelope)
		}
	}
	check(q)
	must(t, q.Close())
	check(openTest(t, cfg))
}

func TestClaimDueUnclaim(t *testing.T) {
	now := time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := openTest(t, testConfig(t.TempDir()), WithClock(clock))
	a := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 100))
	b := enqueue(t, q, testEnvelope("c@x.jp"), msgData(2, 100))

	got := q.Due(now, 10)
	if len(got) != 2 || got[0].ID != a || got[1].ID != b || !got[0].Claimed {
		t.Fatalf("Due = %+v", got)
	}
	if again := q.Due(now, 10); len(again) != 0 {
		t.Fatalf("claimed messages handed out again: %d", len(again))
	}
	if d := got[0].Due(now); len(d) != 2 {
		t.Errorf("Message.Due = %v", d)
	}
	later := now.Add(2 * time.Minute)
	must(t, q.MarkDelivered(a, 0))
	must(t, q.MarkDeferred(a, 1, later, "421 busy"))
	q.Unclaim(a)
	q.Unclaim(b) // untouched: due again at once
	if got := q.Due(now, 10); len(got) != 1 || got[0].ID != b {
		t.Fatalf("after unclaim, due now = %+v", got)
	}
	if at, ok := q.NextDue(); !ok || !at.Equal(later) {
		t.Errorf("NextDue = %v %v, want %v", at, ok, later)
	}
	if got := q.Due(later, 10); len(got) != 1 || got[0].ID != a || len(got[0].Due(later)) != 1 {
		t.Fatalf("due at the retry time = %+v", got)
	}
	q.Unclaim(a)

	// Hold keeps it back; Retry and Release bring it forward.
	must(t, q.Hold(a))
	if got := q.Due(later, 10); len(got) != 0 {
		t.Fatalf("held message handed out")
	}
	must(t, q.Retry(a, now))
	must(t, q.Release(a))
	if got := q.Due(now, 10); len(got) != 1 || got[0].ID != a {
		t.Fatalf("after retry and release = %+v", got)
	}

	// Claim blocks until something is due.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := make(chan Message, 1)
	go func() {
		m, err := q.Claim(ctx)
		if err != nil {
			t.Errorf("Claim: %v", err)
		}
		res <- m
	}()
	time.Sleep(20 * time.Millisecond)
	c := enqueue(t, q, testEnvelope("d@x.jp"), msgData(3, 100))
	if m := <-res; m.ID != c {
		t.Fatalf("Claim = %s, want %s", m.ID, c)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := q.Claim(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Claim with nothing due: %v", err)
	}
}

func TestFull(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxMessages = 3
	q := openTest(t, cfg)
	var ids []ID
	for i := range 3 {
		ids = append(ids, enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 100)))
	}
	_, err := q.Enqueue(testEnvelope("a@x.jp"), strings.NewReader("x"))
	if !errors.Is(err, ErrFull) || !Temporary(err) {
		t.Fatalf("fourth message: %v, want ErrFull", err)
	}
	must(t, q.MarkDelivered(ids[0], 0))
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(9, 100))
	must(t, q.Close())

	// The byte bound: two segments' worth, then full.
	cfg = testConfig(t.TempDir())
	cfg.MaxBytes = 2 * cfg.SegmentSize
	q = openTest(t, cfg)
	accepted := 0
	for {
		_, err := q.Enqueue(testEnvelope("a@x.jp"), bytes.NewReader(msgData(accepted, 2048)))
		if errors.Is(err, ErrFull) {
			break
		}
		must(t, err)
		if accepted++; accepted > 1000 {
			t.Fatal("MaxBytes never reached")
		}
	}
	if s := q.Stats(); s.DiskBytes > int64(cfg.MaxBytes) || accepted < 50 {
		t.Fatalf("accepted %d, disk %d bytes, bound %d", accepted, s.DiskBytes, cfg.MaxBytes)
	}
	must(t, q.Close())
	if n := len(openTest(t, cfg).List()); n != accepted {
		t.Fatalf("after reopen %d messages, accepted %d", n, accepted)
	}
}

func TestLockedSpool(t *testing.T) {
	cfg := testConfig(t.TempDir())
	openTest(t, cfg)
	if _, err := Open(cfg, WithLockWait(-1)); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second Open: %v, want ErrLocked with the pid", err)
	}
}

func TestReadOnlyInspect(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	id := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 700))
	v, err := Inspect(cfg) // while the spool is open: no lock needed
	must(t, err)
	sameMessages(t, v.List(), q.List())
	if got := readAll(t, v, id); !bytes.Equal(got, msgData(1, 700)) {
		t.Errorf("data through Inspect differs")
	}
	if err := v.Hold(id); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Hold on a read-only view: %v", err)
	}
	if _, err := v.Enqueue(testEnvelope("a@x.jp"), strings.NewReader("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Enqueue on a read-only view: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	ids := make(chan ID, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id, err := q.Enqueue(testEnvelope("a@x.jp"), bytes.NewReader(msgData(w*1000+i, 2048)))
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := q.MarkDelivered(id, 0); err != nil {
						t.Error(err)
					}
					continue
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	want := map[ID]bool{}
	for id := range ids {
		want[id] = true
	}
	must(t, q.Close())
	q2 := openTest(t, cfg)
	got := q2.List()
	if len(got) != len(want) {
		t.Fatalf("%d messages after reopen, want %d", len(got), len(want))
	}
	for _, m := range got {
		if !want[m.ID] {
			t.Errorf("unexpected message %s", m.ID)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
