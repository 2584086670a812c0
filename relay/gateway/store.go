package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/ops/events"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
)

// What every gateway with a store (relay.store) does, console or not:
// its log records become trace events (relay/ops/events), the originals
// it keeps are indexed, and it carries out the approved requests for
// them (relay/approval). The store is opened in the background and
// opened again while it cannot be reached: mail never waits for it.

// backend is the engine's part for the store; zero when relay.store is
// off.
type backend struct {
	cfg      store.Config
	instance string
	recorder *events.Recorder
	approval *approval.Service
	quar     *quarantine.Store // nil when relay.sanitize keeps no originals
	// unlock is set by startBackend (nil without quar), while the
	// maintenance may already run.
	unlock atomic.Pointer[approval.UnlockExecutor]
	index  chan string // release IDs to index, bounded

	mu     sync.Mutex
	st     *store.Store
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// storeRetry is the wait between attempts to open an unreachable store.
const storeRetry = 30 * time.Second

// newBackend prepares the store's part and returns the logger to use: the
// given one with the trace tap when the store is on.
func (e *Engine) newBackend(c Config, log *slog.Logger) *slog.Logger {
	if !c.Store.On() {
		return log
	}
	b := &backend{cfg: c.Store, instance: c.Instance(), index: make(chan string, 1024)}
	b.recorder = events.New(c.Store.Buffer, b.instance)
	e.back = b
	return slog.New(b.recorder.Handler(log.Handler()))
}

// Store returns the store, nil while it is off or unavailable.
func (e *Engine) Store() *store.Store {
	if e.back == nil {
		return nil
	}
	e.back.mu.Lock()
	defer e.back.mu.Unlock()
	return e.back.st
}

// Unlocker opens the password archives this gateway holds (nil without a
// store or a quarantine).
func (e *Engine) Unlocker() *approval.UnlockExecutor {
	if e.back == nil {
		return nil
	}
	return e.back.unlock.Load()
}

// Approvals is the request service (nil without a store).
func (e *Engine) Approvals() *approval.Service {
	if e.back == nil {
		return nil
	}
	return e.back.approval
}

// Quarantine is the folder of originals this gateway keeps (nil when
// relay.sanitize keeps none).
func (e *Engine) Quarantine() *quarantine.Store {
	if e.back == nil {
		return nil
	}
	return e.back.quar
}

// EventsDropped is the number of trace events dropped since the start.
func (e *Engine) EventsDropped() int64 {
	if e.back == nil {
		return 0
	}
	return e.back.recorder.Dropped()
}

// startBackend opens the quarantine folder and starts the store's
// goroutines: opening the store, writing events, indexing, carrying out
// requests.
func (e *Engine) startBackend(ctx context.Context) {
	b := e.back
	if b == nil {
		return
	}
	sc := e.startCfg.Sanitize
	if len(sc.Rules) > 0 {
		q, err := quarantine.Open(sc.Quarantine.Dir, sc.Quarantine.Retention)
		if err != nil {
			e.log.Error("the quarantine cannot be opened for the console; releases wait", "kind", "store", "error", err)
		} else {
			b.quar = q
		}
	}
	get := e.Store
	b.approval = &approval.Service{Store: get, Instance: b.instance, Log: e.log, Notifier: e.notices,
		Executors: map[string]approval.Executor{store.KindOutbound: &approval.OutboundExecutor{Queue: e.queue}}}
	if b.quar != nil {
		b.approval.Executors[store.KindRelease] = &approval.ReleaseExecutor{Quarantine: b.quar, Enqueue: e.notices.Enqueue,
			Store: get, Instance: b.instance, Log: e.log}
		unlock := &approval.UnlockExecutor{Quarantine: b.quar,
			Enqueue: func(env queue.Envelope, r io.Reader) (queue.ID, error) { return e.queue.Enqueue(env, r) },
			Stage:   func() *sanitize.Stage { return e.st.Load().runner.Sanitize },
			Dir:     filepath.Join(sc.Quarantine.Dir, "unlocked"), Hostname: e.startCfg.Hostname,
			Postmaster: e.startCfg.PostmasterAddress(), Log: e.log}
		b.approval.Executors[store.KindUnlock] = unlock
		b.unlock.Store(unlock)
	}
	b.recorder.AfterWrite(func(ev store.Event) {
		if ev.Kind == "sanitize" && ev.Ref != "" && ev.Instance == b.instance {
			select {
			case b.index <- ev.Ref:
			default: // the next reconcile indexes it
			}
		}
	})
	ctx, b.cancel = context.WithCancel(ctx)
	b.wg.Add(4)
	go func() { defer b.wg.Done(); e.openStore(ctx) }()
	go func() { defer b.wg.Done(); b.recorder.Run(ctx, get, b.cfg, e.log) }()
	go func() { defer b.wg.Done(); b.approval.Run(ctx) }()
	go func() { defer b.wg.Done(); e.indexer(ctx) }()
}

// openStore opens the store, again every storeRetry until it answers.
func (e *Engine) openStore(ctx context.Context) {
	b := e.back
	for {
		octx, cancel := context.WithTimeout(ctx, storeRetry)
		st, err := store.Open(octx, b.cfg, b.instance)
		cancel()
		if err == nil {
			b.mu.Lock()
			b.st = st
			b.mu.Unlock()
			e.log.Info("store open", "kind", "store", "driver", driverName(b.cfg), "instance", b.instance)
			b.approval.Wake()
			return
		}
		e.log.Error("the store cannot be opened; the trace and the console wait for it (mail is not affected)",
			"kind", "store", "error", err, "retry_in", storeRetry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(storeRetry):
		}
	}
}

func driverName(c store.Config) string {
	if c.Driver == "" {
		return store.DriverSQLite
	}
	return c.Driver
}

// stopBackend stops the goroutines (the event writer writes what it
// holds) and closes the store.
func (e *Engine) stopBackend() {
	b := e.back
	if b == nil || b.cancel == nil {
		return
	}
	b.cancel()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st != nil {
		b.st.Close()
		b.st = nil
	}
}

// indexer keeps the store's quarantine index in step with this gateway's
// folder: each newly kept original as its trace event is written, and the
// whole folder at start and daily (originals purged, events dropped).
func (e *Engine) indexer(ctx context.Context) {
	b := e.back
	if b.quar == nil {
		return
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	var reconciled time.Time
	for {
		if st := e.Store(); st != nil && time.Since(reconciled) > 24*time.Hour {
			if err := e.reconcileIndex(ctx, st); err != nil {
				e.log.Warn("indexing the quarantine", "kind", "store", "error", err)
			} else {
				reconciled = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case id := <-b.index:
			if st := e.Store(); st != nil {
				if err := e.indexOne(ctx, st, id); err != nil {
					e.log.Warn("indexing a quarantined original", "kind", "store", "release_id", id, "error", err)
				}
			}
		case <-tick.C:
		}
	}
}

// reconcileIndex adds what the folder holds and the index lacks, and
// removes what the folder no longer holds.
func (e *Engine) reconcileIndex(ctx context.Context, st *store.Store) error {
	b := e.back
	list, lerr := b.quar.List()
	indexed, err := st.QuarantineIDs(ctx, b.instance)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for _, ent := range list {
		held[ent.ID] = true
		if !indexed[ent.ID] {
			if err := e.indexOne(ctx, st, ent.ID); err != nil {
				return err
			}
		}
	}
	if lerr != nil {
		return lerr // an unreadable entry: do not remove anything
	}
	for id := range indexed {
		if !held[id] {
			if err := st.DeleteQuarantine(ctx, b.instance, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxIndexText bounds the sanitized text kept in the index per original;
// maxIndexHeader the header read for its From.
const (
	maxIndexText   = 64 << 10
	maxIndexHeader = 256 << 10
)

// headerFrom is the first From field, display names decoded, as the
// recipient's mail client shows it; the raw value when it cannot be read.
func headerFrom(h []byte) string {
	// Not append(h, ...): h may have room after it that is not ours.
	m, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(h), strings.NewReader("\r\n")))
	if err != nil {
		return ""
	}
	v := m.Header.Get("From")
	p := mail.AddressParser{WordDecoder: mimeWords}
	if list, err := p.ParseList(v); err == nil {
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = a.Address
			if a.Name != "" {
				parts[i] = a.Name + " <" + a.Address + ">"
			}
		}
		return strings.Join(parts, ", ")
	}
	return sanitize.DecodeHeader(v)
}

// indexOne indexes one original with the text its recipients got (the
// sanitize stage run again on it, as it was configured at start).
func (e *Engine) indexOne(ctx context.Context, st *store.Store, id string) error {
	b := e.back
	ent, err := b.quar.Get(id)
	if err != nil {
		return err
	}
	it := store.QuarantineItem{Instance: b.instance, ID: id, Stored: ent.Stored, Expires: ent.Expires, Sender: ent.Envelope.From,
		Subject: ent.Subject, Route: ent.Route, Client: ent.Envelope.ClientIP, Size: ent.Size, Report: string(ent.Report),
		Released: len(ent.Releases)}
	for _, r := range ent.Envelope.Rcpts {
		it.Rcpts = append(it.Rcpts, r.Addr)
	}
	if rc, err := b.quar.Open(id); err == nil {
		br := bufio.NewReader(rc)
		if h, err := rewrite.ReadHeader(br, maxIndexHeader); err == nil {
			it.HeaderFrom = headerFrom(h)
		}
		rc.Close()
	}
	if rc, err := b.quar.Open(id); err == nil {
		opts := e.startCfg.Sanitize.Options(id, ent.Expires)
		opts.TempDir, opts.PlanOnly = "", true // the converted files are not needed for the text
		it.Text, _, _ = sanitize.Text(rc, opts, maxIndexText)
		rc.Close()
	}
	return st.PutQuarantine(ctx, it)
}
