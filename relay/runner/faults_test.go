package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/queue/faultfs"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// hop is a fake next hop: it counts every copy each recipient receives,
// and records the MAIL and RCPT parameters it was given.
type hop struct {
	mu     sync.Mutex
	copies map[string]int
	mail   []smtp.MailOptions
	rcpt   map[string]smtp.RcptOptions
	dsn    bool // offer DSN in EHLO
	addr   string
	// Recipients starting with "temp" get 451 after stall, "perm" 550.
	stall time.Duration
}

func startHop(t *testing.T, offerDSN bool) *hop {
	t.Helper()
	h := &hop{copies: map[string]int{}, rcpt: map[string]smtp.RcptOptions{}, dsn: offerDSN}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &hopSession{h: h}, nil }))
	srv.Domain = "hop.test"
	srv.EnableDSN = offerDSN
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *hop) count(rcpt string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.copies[rcpt]
}

func (h *hop) total() (copies, recipients int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.copies {
		copies += n
	}
	return copies, len(h.copies)
}

type hopSession struct {
	h     *hop
	rcpts []string
}

func (s *hopSession) Reset()        { s.rcpts = nil }
func (s *hopSession) Logout() error { return nil }
func (s *hopSession) Mail(_ string, o *smtp.MailOptions) error {
	s.h.mu.Lock()
	if o != nil {
		s.h.mail = append(s.h.mail, *o)
	}
	s.h.mu.Unlock()
	return nil
}
func (s *hopSession) Rcpt(to string, o *smtp.RcptOptions) error {
	s.h.mu.Lock()
	if o != nil {
		s.h.rcpt[to] = *o
	}
	stall := s.h.stall
	s.h.mu.Unlock()
	switch {
	case strings.HasPrefix(to, "temp"):
		time.Sleep(stall)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
	case strings.HasPrefix(to, "perm"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *hopSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.h.mu.Lock()
	for _, rc := range s.rcpts {
		s.h.copies[rc]++
	}
	s.h.mu.Unlock()
	return nil
}

// lineCounter counts log records by level.
type lineCounter struct {
	n, errors atomic.Int64
	mu        sync.Mutex
	buf       bytes.Buffer
}

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	c.n.Add(1)
	if r.Level >= slog.LevelError {
		c.errors.Add(1)
	}
	c.mu.Lock()
	fmt.Fprintf(&c.buf, "%s %s\n", r.Level, r.Message)
	c.mu.Unlock()
	return nil
}
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *lineCounter) WithGroup(string) slog.Handler      { return c }

// fixtureConfig is what a test may change before the fixture starts.
type fixtureConfig struct {
	Routing  routing.Config
	Delivery Config
	Queue    queue.Config
}

// fixture is the real runner without a gateway around it: a spool whose
// disk is d, mail for city.toyokawa.lg.jp delivered into a folder (the
// inner server) and partner.example to the hop h.
type fixture struct {
	queue    *queue.Spool
	runner   *Runner
	metrics  *ops.Metrics
	snap     atomic.Pointer[Snapshot]
	innerDir string
}

func newFixture(t *testing.T, d *faultfs.Disk, h *hop, tune func(*fixtureConfig)) (*fixture, *lineCounter) {
	t.Helper()
	dir := t.TempDir()
	c := fixtureConfig{Routing: routing.DefaultConfig(), Delivery: DefaultConfig(), Queue: queue.DefaultConfig()}
	c.Routing.Routes = []routing.RouteConfig{
		{Name: "inner", Domain: "city.toyokawa.lg.jp", TargetConfig: routing.TargetConfig{Targets: []string{"dir:" + filepath.Join(dir, "inner")}}},
		{Name: "partner", Domain: "partner.example", TargetConfig: routing.TargetConfig{Targets: []string{h.addr}, TLS: "none"}},
	}
	c.Queue.Dir = filepath.Join(dir, "queue")
	c.Queue.Reserve = 1 // the injected faults, not the reserve, are under test
	c.Delivery.Workers = 4
	c.Delivery.RetryInterval = time.Second
	if tune != nil {
		tune(&c)
	}
	router, err := routing.New(c.Routing, routing.Self{Hostnames: []string{"gw.test"}})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := rewrite.New(rewrite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	lc := &lineCounter{}
	log := slog.New(lc)
	q, err := queue.Open(c.Queue, queue.WithLogger(log), queue.WithStorage(d))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{queue: q, metrics: ops.NewMetrics(), innerDir: filepath.Join(dir, "inner")}
	f.snap.Store(&Snapshot{Hostname: "gw.test", Postmaster: "postmaster@gw.test", MaxHeaderBytes: 1 << 20,
		Delivery: c.Delivery, Router: router, Rewriter: rw})
	f.runner = New(&Shared{Queue: q, Metrics: f.metrics, Log: log}, f.snap.Load)
	f.runner.unit = 100 * time.Millisecond // back-offs of 0.1 s to 3 s
	t.Cleanup(func() {
		f.runner.Stop()
		q.Close()
		if t.Failed() {
			t.Logf("log:\n%s", lc.buf.String())
		}
	})
	return f, lc
}

// start runs the workers until ctx ends.
func (f *fixture) start(ctx context.Context) { f.runner.Run(ctx) }

// innerFiles lists what was delivered to the inner server's folder.
func (f *fixture) innerFiles(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(f.innerDir, "*.eml"))
	return files
}

func enqueueTo(t *testing.T, q *queue.Spool, rcpt []queue.Recipient, env func(*queue.Envelope)) queue.ID {
	t.Helper()
	en := queue.Envelope{From: "tanaka@city.toyokawa.lg.jp", Rcpts: rcpt, Source: rewrite.SourceInner, BodyType: "7BIT"}
	if env != nil {
		env(&en)
	}
	id, err := q.Enqueue(en, strings.NewReader("From: tanaka@city.toyokawa.lg.jp\r\nSubject: t\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDiskFullNoStorm is the disk-full scenario at the storage seam: the
// spool's disk fails every write (ENOSPC, half the bytes written) while 32
// queued messages are due. Before the fix each unrecorded result left its
// message due at once and it was delivered again in a tight loop. Now each
// acknowledged message reaches the next hop once, log lines stay few, the
// runner pauses and /healthz says so; once the disk is healed everything
// is delivered exactly once and the runner resumes by itself.
func TestDiskFullNoStorm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		short bool
	}{
		{"ENOSPC short writes", syscall.ENOSPC, true},
		{"EIO", syscall.EIO, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHop(t, false)
			d := &faultfs.Disk{}
			f, lc := newFixture(t, d, h, nil)
			const n = 32
			for i := range n {
				enqueueTo(t, f.queue, []queue.Recipient{{Addr: fmt.Sprintf("u%d@partner.example", i)}}, nil)
			}
			d.Break(tc.err, tc.short)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.start(ctx)

			waitFor(t, 5*time.Second, "the runner to pause", func() bool { return f.runner.Paused() != nil })
			time.Sleep(time.Second) // long enough for a storm to show (it took 5 s for 3,742 deliveries)
			copies, rcpts := h.total()
			if copies != rcpts {
				t.Errorf("while the disk is broken: %d copies to %d recipients, want no second copy", copies, rcpts)
			}
			// The workers that were busy when the disk broke, plus a probe
			// or two: not the whole queue, let alone many times over.
			if copies > f.snap.Load().Delivery.Workers+3 {
				t.Errorf("while the disk is broken: %d messages delivered, want delivery paused", copies)
			}
			if err := f.runner.Degraded(); err == nil || !strings.Contains(err.Error(), "paused") || !strings.Contains(err.Error(), "storage failing") {
				t.Errorf("health while the disk is broken: %v, want the pause and the failing storage", err)
			}
			if v := gaugeValue(f.metrics.DeliveryPaused); v != 1 {
				t.Errorf("sekisho_delivery_paused = %v, want 1", v)
			}
			if lines := lc.n.Load(); lines > 60 {
				t.Errorf("%d log lines in 1 s of a broken disk, want a bounded few", lines)
			}
			_, _, failed := d.Counts()
			if failed > 40 {
				t.Errorf("%d failed writes and syncs in 1 s, want the disk left alone while paused", failed)
			}

			d.Heal()
			waitFor(t, 20*time.Second, "the queue to drain", func() bool { return f.queue.Stats().Messages == 0 })
			for i := range n {
				if c := h.count(fmt.Sprintf("u%d@partner.example", i)); c != 1 {
					t.Errorf("u%d@ got %d copies, want 1", i, c)
				}
			}
			waitFor(t, 5*time.Second, "the runner to resume", func() bool { return f.runner.Degraded() == nil })
			if err := f.runner.Paused(); err != nil {
				t.Errorf("still paused after the disk healed: %v", err)
			}
			if v := gaugeValue(f.metrics.UnrecordedResults); v != 0 {
				t.Errorf("sekisho_delivery_unrecorded_messages = %v after recovery, want 0", v)
			}
			t.Logf("%d log lines, %d of them errors", lc.n.Load(), lc.errors.Load())
		})
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

// A paused runner does not wait out its back-off when the spool's file
// system climbs back above its reserve (an administrator made room): it
// probes at once. The disk is a small tmpfs filled by another file; the
// writes fail through the storage seam. Needs root to mount.
func TestPauseEndsWhenSpaceReturns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	h := startHop(t, false)
	d := &faultfs.Disk{}
	f, _ := newFixture(t, d, h, func(c *fixtureConfig) {
		c.Queue.Dir = filepath.Join(mnt, "queue")
		c.Queue.Reserve = 0 // automatic: a quarter of this small file system
	})
	for i := range 8 {
		enqueueTo(t, f.queue, []queue.Recipient{{Addr: fmt.Sprintf("u%d@partner.example", i)}}, nil)
	}
	fill := filepath.Join(mnt, "fill")
	ff, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ff.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	ff.Close()
	d.Break(syscall.ENOSPC, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.start(ctx)
	waitFor(t, 5*time.Second, "the runner to pause", func() bool { return f.runner.Paused() != nil })
	waitFor(t, 5*time.Second, "the low space to show", func() bool { return f.queue.Health().LowSpace })
	// A long back-off: only the space coming back can end it soon.
	f.runner.faultMu.Lock()
	f.runner.pause.resumeAt = time.Now().Add(time.Hour)
	f.runner.pause.low = true
	f.runner.faultMu.Unlock()
	d.Heal()
	os.Remove(fill)
	waitFor(t, 5*time.Second, "the queue to drain", func() bool { return f.queue.Stats().Messages == 0 })
	for i := range 8 {
		if c := h.count(fmt.Sprintf("u%d@partner.example", i)); c != 1 {
			t.Errorf("u%d@ got %d copies, want 1", i, c)
		}
	}
}

// Kept outcomes of a message deleted meanwhile are forgotten.
func TestPruneKept(t *testing.T) {
	h := startHop(t, false)
	f, _ := newFixture(t, &faultfs.Disk{}, h, nil)
	id := enqueueTo(t, f.queue, []queue.Recipient{{Addr: "a@partner.example"}}, nil)
	gone := enqueueTo(t, f.queue, []queue.Recipient{{Addr: "b@partner.example"}}, nil)
	r := f.runner
	r.kept[id] = &keptResult{tries: 1}
	r.kept[gone] = &keptResult{tries: 1}
	if err := f.queue.Delete(gone); err != nil {
		t.Fatal(err)
	}
	r.pruneKept()
	if _, ok := r.kept[gone]; ok || r.kept[id] == nil {
		t.Errorf("after pruning: %v, want only %s", r.kept, id)
	}
	if v := gaugeValue(f.metrics.UnrecordedResults); v != 1 {
		t.Errorf("sekisho_delivery_unrecorded_messages = %v, want 1", v)
	}
}
