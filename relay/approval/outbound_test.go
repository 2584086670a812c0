package approval

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/store"
)

// heldQueue stands for the spool: messages held or released, and what
// was done to each.
type heldQueue struct {
	mu       sync.Mutex
	held     map[queue.ID]bool
	released map[queue.ID]int
	deleted  map[queue.ID]int
}

func newHeldQueue(ids ...queue.ID) *heldQueue {
	q := &heldQueue{held: map[queue.ID]bool{}, released: map[queue.ID]int{}, deleted: map[queue.ID]int{}}
	for _, id := range ids {
		q.held[id] = true
	}
	return q
}

func (q *heldQueue) Get(id queue.ID) (queue.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h, ok := q.held[id]
	if !ok {
		return queue.Message{}, queue.ErrNotFound
	}
	return queue.Message{ID: id, Held: h}, nil
}

func (q *heldQueue) Release(id queue.ID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[id]; !ok {
		return queue.ErrNotFound
	}
	q.held[id] = false
	q.released[id]++
	return nil
}

func (q *heldQueue) Delete(id queue.ID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[id]; !ok {
		return queue.ErrNotFound
	}
	delete(q.held, id)
	q.deleted[id]++
	return nil
}

func (q *heldQueue) counts(id queue.ID) (released, deleted int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.released[id], q.deleted[id]
}

type outboundFixture struct {
	st  *store.Store
	hq  *heldQueue
	fq  *fakeQueue
	svc *Service
}

func newOutboundFixture(t *testing.T, ids ...queue.ID) *outboundFixture {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), "s.db")}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &outboundFixture{st: st, hq: newHeldQueue(ids...), fq: &fakeQueue{}}
	get := func() *store.Store { return st }
	f.svc = &Service{Store: get, Instance: "gw1", Log: slog.New(slog.DiscardHandler), Poll: 20 * time.Millisecond,
		Executors: map[string]Executor{store.KindOutbound: &OutboundExecutor{Queue: f.hq}},
		Notifier: &MailNotifier{Hostname: "gw.city.lg.jp", Postmaster: "postmaster@city.lg.jp", Enqueue: f.fq.enqueue,
			ConsoleURL: "https://gw.city.lg.jp:8443/", LinkKey: func(ctx context.Context) ([]byte, error) { return LinkKey(ctx, st) }}}
	return f
}

func (f *outboundFixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// mailTo returns the bodies of the notices queued for an address.
func (f *outboundFixture) mailTo(t *testing.T, addr string) []string {
	var out []string
	for _, m := range f.fq.all() {
		if m.env.Rcpts[0].Addr == addr {
			out = append(out, body(t, m.data))
		}
	}
	return out
}

func (f *outboundFixture) waitMail(t *testing.T, addr string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := f.mailTo(t, addr)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notices for %s, want %d", len(got), addr, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func held(id queue.ID, policy string, until time.Time) Held {
	h := Held{QueueID: id, Sender: "tanaka@city.lg.jp", Recipients: []string{"x@example.com", "y@example.com"}, Policy: policy,
		Until: until, OnExpiry: store.ExpirySend,
		Detail: OutboundDetail{Rule: "files-out", Summary: sanitize.Summary{Subject: "見積書",
			Attachments: []sanitize.Attachment{{Name: "見積.xlsx", Size: 1234}}}}}
	if policy == PolicyApproval {
		h.Group, h.OnExpiry, h.Notify, h.DelegateNotify = "somu", store.ExpiryReject, []string{"bucho@city.lg.jp"}, []string{"kakari@city.lg.jp"}
	}
	return h
}

// A hold ends at its deadline: released once, nobody told but at the
// hold.
func TestHoldEndsAtItsDeadline(t *testing.T) {
	f := newOutboundFixture(t, 101)
	f.run(t)
	r, err := f.svc.Hold(context.Background(), held(101, PolicyHold, time.Now().Add(300*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	note := f.waitMail(t, "tanaka@city.lg.jp", 1)[0]
	for _, want := range []string{"見積書", "保留", "x@example.com", "https://gw.city.lg.jp:8443/my/held"} {
		if !strings.Contains(note, want) {
			t.Errorf("the hold notice lacks %q:\n%s", want, note)
		}
	}
	if rel, _ := f.hq.counts(101); rel != 0 {
		t.Fatal("released before the deadline")
	}
	done := waitState(t, f.st, r.ID, store.StateDone)
	if rel, del := f.hq.counts(101); rel != 1 || del != 0 || done.DecidedBy != store.ExpiredBy || done.Result != queue.ID(101).String() {
		t.Errorf("released %d deleted %d, request %+v", rel, del, done)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.mailTo(t, "tanaka@city.lg.jp")); n != 1 {
		t.Errorf("%d notices for the sender of a hold that ended, want the one at the hold", n)
	}
}

// The sender cancels: the message is removed and they are told; sending
// it at once releases it.
func TestSenderCancelsOrSendsNow(t *testing.T) {
	f := newOutboundFixture(t, 201, 202)
	f.run(t)
	ctx := context.Background()
	c, _ := f.svc.Hold(ctx, held(201, PolicyHold, time.Now().Add(time.Hour)))
	s, _ := f.svc.Hold(ctx, held(202, PolicyHold, time.Now().Add(time.Hour)))
	if _, err := f.svc.Cancel(ctx, c.ID, "tanaka@city.lg.jp"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Decide(ctx, s.ID, true, "tanaka@city.lg.jp", "sent now by the sender"); err != nil {
		t.Fatal(err)
	}
	waitState(t, f.st, s.ID, store.StateDone)
	notes := f.waitMail(t, "tanaka@city.lg.jp", 3)
	if !strings.Contains(notes[2], "取り消されました") || !strings.Contains(notes[2], "送信されていません") {
		t.Errorf("the cancellation notice:\n%s", notes[2])
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, _ := f.st.Request(ctx, c.ID); !r.DoneAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancellation was not carried out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rel, del := f.hq.counts(201); rel != 0 || del != 1 {
		t.Errorf("cancelled: released %d deleted %d", rel, del)
	}
	if rel, del := f.hq.counts(202); rel != 1 || del != 0 {
		t.Errorf("sent now: released %d deleted %d", rel, del)
	}
}

// An approval: the approvers get the mail with a signed link, an absent
// approver's goes to the delegate; a rejection removes the message and
// tells the sender with the comment; at the deadline an undecided one is
// rejected.
func TestApprovalMailDecisionsAndDeadline(t *testing.T) {
	f := newOutboundFixture(t, 301, 302, 303, 304)
	f.run(t)
	ctx := context.Background()
	a, _ := f.svc.Hold(ctx, held(301, PolicyApproval, time.Now().Add(time.Hour)))
	ask := f.waitMail(t, "bucho@city.lg.jp", 1)[0]
	for _, want := range []string{"tanaka@city.lg.jp", "見積書", "見積.xlsx (1234 bytes)", "somu", "https://gw.city.lg.jp:8443/outbound/link/"} {
		if !strings.Contains(ask, want) {
			t.Errorf("the approval mail lacks %q:\n%s", want, ask)
		}
	}
	if len(f.mailTo(t, "kakari@city.lg.jp")) != 0 {
		t.Error("the delegate was asked while the approver is in")
	}
	token := ask[strings.Index(ask, "/outbound/link/")+len("/outbound/link/"):]
	token = strings.Fields(token)[0]
	key, _ := LinkKey(ctx, f.st)
	if id, who, err := ParseLink(key, token, time.Now()); err != nil || id != a.ID || who != "bucho@city.lg.jp" {
		t.Errorf("the link: %d %s %v", id, who, err)
	}

	if _, err := f.svc.Decide(ctx, a.ID, false, "bucho@city.lg.jp", "宛先が違います"); err != nil {
		t.Fatal(err)
	}
	notes := f.waitMail(t, "tanaka@city.lg.jp", 2)
	if !strings.Contains(notes[1], "却下") || !strings.Contains(notes[1], "宛先が違います") {
		t.Errorf("the rejection notice:\n%s", notes[1])
	}
	if rel, del := f.hq.counts(301); rel != 0 || del != 1 {
		t.Errorf("rejected: released %d deleted %d", rel, del)
	}

	// The approver is away: the delegate is asked, and approves.
	f.st.SetAbsence(ctx, "bucho@city.lg.jp", time.Now().Add(24*time.Hour))
	b, _ := f.svc.Hold(ctx, held(302, PolicyApproval, time.Now().Add(time.Hour)))
	f.waitMail(t, "kakari@city.lg.jp", 1)
	if n := len(f.mailTo(t, "bucho@city.lg.jp")); n != 1 {
		t.Errorf("the absent approver got %d mails", n)
	}
	f.svc.Decide(ctx, b.ID, true, "kakari@city.lg.jp", "")
	waitState(t, f.st, b.ID, store.StateDone)
	notes = f.waitMail(t, "tanaka@city.lg.jp", 4)
	if !strings.Contains(notes[3], "承認され") || !strings.Contains(notes[3], "kakari@city.lg.jp") {
		t.Errorf("the approval notice:\n%s", notes[3])
	}

	// Nobody decides: rejected at the deadline.
	c, _ := f.svc.Hold(ctx, held(303, PolicyApproval, time.Now().Add(200*time.Millisecond)))
	done := waitState(t, f.st, c.ID, store.StateDenied)
	notes = f.waitMail(t, "tanaka@city.lg.jp", 6)
	if done.DecidedBy != store.ExpiredBy || !strings.Contains(notes[5], "承認期限") {
		t.Errorf("at the deadline: %+v\n%s", done, notes[5])
	}
	if _, err := f.svc.Decide(ctx, c.ID, true, "bucho@city.lg.jp", ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a decision after the deadline: %v", err)
	}
}

// A removal claimed before a crash is done at the next start, once.
func TestRemovalResumesAfterCrash(t *testing.T) {
	f := newOutboundFixture(t, 401)
	ctx := context.Background()
	r, _ := f.svc.Hold(ctx, held(401, PolicyHold, time.Now().Add(time.Hour)))
	f.st.Cancel(ctx, r.ID, "tanaka@city.lg.jp")
	if _, err := f.st.ClaimClosed(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, _ := f.st.Request(ctx, r.ID); !got.DoneAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claimed removal was not resumed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, del := f.hq.counts(401); del != 1 {
		t.Errorf("deleted %d times", del)
	}
}

func TestLinks(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	exp := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tok := SignLink(key, 42, "Bucho@City.lg.jp", exp)
	if id, who, err := ParseLink(key, tok, exp.Add(-time.Minute)); err != nil || id != 42 || who != "bucho@city.lg.jp" {
		t.Errorf("%d %s %v", id, who, err)
	}
	for name, c := range map[string]struct {
		tok string
		now time.Time
		key []byte
	}{
		"expired":     {tok, exp.Add(time.Second), key},
		"another key": {tok, exp, []byte(strings.Repeat("x", 32))},
		"altered":     {strings.Replace(tok, tok[:3], "AAA", 1), exp, key},
		"no mac":      {strings.Split(tok, ".")[0], exp, key},
		"garbage":     {"..", exp, key},
	} {
		if _, _, err := ParseLink(c.key, c.tok, c.now); !errors.Is(err, ErrBadLink) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
