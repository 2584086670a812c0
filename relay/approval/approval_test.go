package approval

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
)

type queued struct {
	env  queue.Envelope
	data []byte
}

type fakeQueue struct {
	mu   sync.Mutex
	msgs []queued
	n    int
}

func (q *fakeQueue) enqueue(env queue.Envelope, data []byte) (queue.ID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	q.msgs = append(q.msgs, queued{env, data})
	return queue.ID(q.n), nil
}

func (q *fakeQueue) all() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queued(nil), q.msgs...)
}

type fixture struct {
	st  *store.Store
	q   *quarantine.Store
	fq  *fakeQueue
	svc *Service
	id  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "s.db")}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := quarantine.Open(filepath.Join(dir, "quarantine"), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id := q.NewID()
	env := queue.Envelope{From: "yamada@example.com", Rcpts: []queue.Recipient{{Addr: "tanaka@city.example.lg.jp"}, {Addr: "suzuki@city.example.lg.jp"}}}
	if _, err := q.Put(id, env, quarantine.Entry{Subject: "見積書"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	fq := &fakeQueue{}
	log := slog.New(slog.DiscardHandler)
	get := func() *store.Store { return st }
	svc := &Service{Store: get, Instance: "gw1", Log: log, Poll: 20 * time.Millisecond,
		Executors: map[string]Executor{store.KindRelease: &ReleaseExecutor{Quarantine: q, Enqueue: fq.enqueue, Store: get, Instance: "gw1", Log: log}},
		Notifier:  &MailNotifier{Hostname: "gw.example.lg.jp", Postmaster: "postmaster@city.example.lg.jp", Enqueue: fq.enqueue}}
	return &fixture{st: st, q: q, fq: fq, svc: svc, id: id}
}

func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitState(t *testing.T, st *store.Store, id int64, state string) store.Request {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := st.Request(context.Background(), id)
		if err == nil && r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d is %q, want %q (%v)", id, r.State, state, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func body(t *testing.T, data []byte) string {
	t.Helper()
	_, b, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	dec, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.ReplaceAll(b, []byte("\r\n"), nil))))
	if err != nil {
		t.Fatal(err)
	}
	return string(dec)
}

func TestSelfReleaseAtOnce(t *testing.T) {
	f := newFixture(t)
	f.run(t)
	r, err := f.svc.Ask(context.Background(), store.Request{Kind: store.KindRelease, Instance: "gw1", Item: f.id,
		Requester: "tanaka@city.example.lg.jp", Recipients: []string{"tanaka@city.example.lg.jp"}, Policy: PolicySelf})
	if err != nil || r.State != store.StateApproved {
		t.Fatal(r, err)
	}
	done := waitState(t, f.st, r.ID, store.StateDone)
	msgs := f.fq.all()
	if len(msgs) != 1 || msgs[0].env.Rcpts[0].Addr != "tanaka@city.example.lg.jp" || len(msgs[0].env.Rcpts) != 1 ||
		!bytes.HasPrefix(msgs[0].data, []byte(quarantine.HeaderReleased+": "+f.id)) || done.Result != queue.ID(1).String() {
		t.Fatalf("released %+v, request %+v", msgs, done)
	}
	if ok, _ := f.q.IsRelease(bytes.NewReader(msgs[0].data)); !ok {
		t.Errorf("the copy does not carry a valid release mark")
	}
	if e, _ := f.q.Get(f.id); len(e.Releases) != 1 {
		t.Errorf("release not noted: %+v", e.Releases)
	}
	// The outcome is recorded before its audit line: wait for the line.
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, _ := f.st.Audit(context.Background(), store.AuditQuery{Object: f.id})
		if len(a) == 1 && a[0].Action == "release" {
			break
		}
		if len(a) > 1 || time.Now().After(deadline) {
			t.Fatalf("audit %+v", a)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApprovalAndDenialTellTheRequester(t *testing.T) {
	f := newFixture(t)
	f.run(t)
	ctx := context.Background()
	ask := func() store.Request {
		r, err := f.svc.Ask(ctx, store.Request{Kind: store.KindRelease, Instance: "gw1", Item: f.id, Requester: "suzuki@city.example.lg.jp",
			Recipients: []string{"suzuki@city.example.lg.jp"}, Reason: "取引先の見積書", Policy: PolicyApproval})
		if err != nil || r.State != store.StatePending {
			t.Fatal(r, err)
		}
		return r
	}
	r := ask()
	time.Sleep(100 * time.Millisecond)
	if n := len(f.fq.all()); n != 0 {
		t.Fatalf("%d messages queued before a decision", n)
	}
	if _, err := f.svc.Decide(ctx, r.ID, true, "bucho@city.example.lg.jp", "了解"); err != nil {
		t.Fatal(err)
	}
	waitState(t, f.st, r.ID, store.StateDone)
	deadline := time.Now().Add(20 * time.Second)
	for len(f.fq.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	msgs := f.fq.all()
	if len(msgs) != 2 || msgs[1].env.From != "" || msgs[1].env.Rcpts[0].Addr != "suzuki@city.example.lg.jp" {
		t.Fatalf("the original and the notice: %+v", msgs)
	}
	if txt := body(t, msgs[1].data); !strings.Contains(txt, "承認され") || !strings.Contains(txt, "bucho@city.example.lg.jp") || !strings.Contains(txt, "了解") {
		t.Errorf("approval notice:\n%s", txt)
	}
	if _, err := f.svc.Decide(ctx, r.ID, false, "other@x", ""); err == nil {
		t.Errorf("a second decision was taken")
	}

	d := ask()
	if _, err := f.svc.Decide(ctx, d.ID, false, "bucho@city.example.lg.jp", "業務外"); err != nil {
		t.Fatal(err)
	}
	msgs = f.fq.all()
	if len(msgs) != 3 {
		t.Fatalf("%d messages after a denial", len(msgs))
	}
	if txt := body(t, msgs[2].data); !strings.Contains(txt, "却下") || !strings.Contains(txt, "業務外") {
		t.Errorf("denial notice:\n%s", txt)
	}
	for _, line := range strings.Split(string(msgs[2].data), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d octets in the notice", len(line))
		}
	}
}

// A release queued just before a crash is found again at start: the
// request is finished without a second copy.
func TestResumeAfterCrashDoesNotReleaseTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, _ := f.st.CreateRequest(ctx, store.Request{Kind: store.KindRelease, Instance: "gw1", Item: f.id, Requester: "tanaka@city.example.lg.jp",
		Recipients: []string{"tanaka@city.example.lg.jp"}, Policy: PolicySelf, State: store.StateApproved})
	if _, err := f.st.Start(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.q.ReleaseTo(f.id, r.Recipients, f.fq.enqueue); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	waitState(t, f.st, r.ID, store.StateDone)
	if n := len(f.fq.all()); n != 1 {
		t.Errorf("%d copies after the restart, want 1", n)
	}
}

// Requests for another gateway's originals are left to that gateway.
func TestOtherInstanceLeftAlone(t *testing.T) {
	f := newFixture(t)
	f.run(t)
	r, _ := f.svc.Ask(context.Background(), store.Request{Kind: store.KindRelease, Instance: "gw2", Item: f.id,
		Requester: "tanaka@city.example.lg.jp", Recipients: []string{"tanaka@city.example.lg.jp"}, Policy: PolicySelf})
	time.Sleep(200 * time.Millisecond)
	if got, _ := f.st.Request(context.Background(), r.ID); got.State != store.StateApproved || len(f.fq.all()) != 0 {
		t.Errorf("gw1 carried out gw2's request: %+v", got)
	}
}
