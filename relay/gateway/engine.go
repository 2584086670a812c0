// Package gateway is the engine of sekisho serve: it wires the rooms of
// relay together. It owns the listeners and their connection caps, the
// snapshot a reload swaps (accounts, rewrite, routing, policy, inspection,
// sanitize, built from one configuration in state.go), the relay section
// of the configuration and every cross-section reference (config.go,
// refs.go), config check's loading and warnings (check.go), the policy dry
// runs the commands and the console call (dryrun*.go, copies.go), the
// trace socket, the store's part of a gateway (store.go) and the daily
// quarantine maintenance. Sessions (relay/session) and the runner
// (relay/runner) are handed what they need at construction; neither
// imports this package.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/ops/trace"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/runner"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/convert"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// Engine is the running gateway: listeners, the snapshot sessions and
// deliveries take, the queue, the runner.
type Engine struct {
	startCfg Config // listeners and queue location: fixed until restart
	st       atomic.Pointer[snapshot]
	queue    *queue.Spool // nil in dry-run sessions: messages are discarded
	metrics  *ops.Metrics
	log      *slog.Logger
	// sessions is what every session shares: the queue, metrics, log and
	// the AUTH checker, which lives as long as the process so lockouts
	// survive a reload (it reads the current directory at each attempt).
	sessions *session.Shared
	// rates counts relay.rate_limits for the life of the process; a
	// reload gives it new limits.
	rates *ratelimit.Limiter
	cert  atomic.Pointer[tls.Certificate]

	mu        sync.Mutex
	listeners []*listener
	runner    *runner.Runner

	trace   *trace.Hub // the live protocol trace; nil in dry runs
	traceLn *net.UnixListener

	back       *backend // the store's part (store.go); nil without relay.store
	consoleURL string   // for the notices to requesters
	// notices are the mails to requesters, senders and approvers.
	notices *approval.MailNotifier
	// convPool bounds the conversions of relay.sanitize for the life of
	// the process: each snapshot's stage converts through it.
	convPool *convert.Pool
}

// stageDeps are what the sanitize stage of a snapshot is given.
func (e *Engine) stageDeps(sec Sections) *sanitize.StageDeps {
	return &sanitize.StageDeps{Pool: e.convPool, ConsoleURL: sec.ConsoleURL,
		Warn: func(msg string) { e.log.Warn(msg, "kind", "sanitize") }}
}

// New builds the engine and opens the queue (recovering it). It does not
// listen yet.
func New(sec Sections, log *slog.Logger, m *ops.Metrics) (*Engine, error) {
	if err := checkListeners(sec.Relay); err != nil {
		return nil, err
	}
	e := &Engine{startCfg: sec.Relay, consoleURL: sec.ConsoleURL, metrics: m, rates: ratelimit.New(sec.Relay.RateLimits, nil),
		convPool: convert.NewPool(sec.Relay.Sanitize.Convert.Workers)}
	e.log = e.newBackend(sec.Relay, log)
	st, err := buildState(sec, e.stageDeps(sec))
	if err != nil {
		return nil, err
	}
	e.st.Store(st)
	if err := e.loadCert(sec.Relay.TLS); err != nil {
		return nil, err
	}
	q, err := queue.Open(sec.Relay.Queue, queue.WithLogger(e.log.With("kind", "queue")))
	if err != nil {
		return nil, fmt.Errorf("relay.queue: %w", err)
	}
	e.queue = q
	e.trace = trace.NewHub()
	e.notices = e.newNotices()
	e.sessions = &session.Shared{Queue: q, Metrics: m, Log: e.log, Auth: e.newAuthenticator(sec.Relay), Rates: e.rates, Outbound: e}
	return e, nil
}

func (e *Engine) loadCert(c TLSConfig) error {
	if c.CertFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("relay.tls: %w", err)
	}
	e.cert.Store(&cert)
	return nil
}

func (e *Engine) tlsConfig() *tls.Config {
	if e.cert.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return e.cert.Load(), nil
		},
	}
}

func (e *Engine) newAuthenticator(c Config) *auth.Authenticator {
	a := auth.NewAuthenticator(c.Auth, func() *accounts.Directory { return e.st.Load().dir }, c.Hostname)
	a.OnFailure = func(ip netip.Addr, user, reason string) {
		e.log.Warn("auth failed", "kind", "auth", "client", ip.String(), "user", user, "reason", reason)
	}
	return a
}

// Preflight checks everything New checks, creating nothing: serve asks it
// before it opens its log files, so that a configuration that cannot
// serve leaves no file or folder behind.
func Preflight(sec Sections) error {
	if err := checkListeners(sec.Relay); err != nil {
		return err
	}
	if _, err := buildState(sec, nil); err != nil {
		return err
	}
	return (&Engine{}).loadCert(sec.Relay.TLS)
}

func checkListeners(c Config) error {
	if len(c.Listeners) == 0 {
		return errors.New("relay.listeners: at least one listener is needed to serve")
	}
	return nil
}

// Start binds every listener and starts serving and delivering.
func (e *Engine) Start(ctx context.Context) error {
	st := e.st.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	// The approval service and the quarantine first: a session held by
	// the outbound rules asks for them as soon as a listener serves.
	e.startBackend(ctx)
	for i, lc := range st.cfg.Listeners {
		l, err := e.listen(fmt.Sprintf("%s/%s", lc.Mode, lc.Address), lc)
		if err != nil {
			e.closeListeners()
			e.stopBackend()
			return fmt.Errorf("relay.listeners[%d]: %w", i, err)
		}
		e.listeners = append(e.listeners, l)
	}
	e.startTrace()
	e.runner = runner.New(&runner.Shared{Queue: e.queue, Metrics: e.metrics, Log: e.log, Trace: e.deliveryTrace()},
		func() *runner.Snapshot { return e.st.Load().runner })
	e.runner.Run(ctx)
	go e.maintenance(ctx)
	return nil
}

// Addrs returns the bound listener addresses, in configuration order.
func (e *Engine) Addrs() []net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]net.Addr, len(e.listeners))
	for i, l := range e.listeners {
		out[i] = l.limit.Addr()
	}
	return out
}

// Healthy reports whether the gateway can take mail: listening, with a
// queue that is open and not full.
func (e *Engine) Healthy() error {
	e.mu.Lock()
	n := len(e.listeners)
	e.mu.Unlock()
	if n == 0 {
		return errors.New("no listener")
	}
	st := e.queue.Stats()
	c := e.startCfg.Queue
	if c.MaxMessages > 0 && st.Messages >= c.MaxMessages {
		return fmt.Errorf("queue full: %d messages", st.Messages)
	}
	return e.degraded()
}

// degraded reports, for /healthz, what the runner knows is wrong: the
// spool's disk, its reserve, a paused delivery.
func (e *Engine) degraded() error {
	e.mu.Lock()
	r := e.runner
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Degraded()
}

func (e *Engine) closeListeners() {
	for _, l := range e.listeners {
		l.srv.Close()
	}
}

// Shutdown stops accepting, lets sessions finish until ctx ends, then
// stops delivery and closes the queue.
func (e *Engine) Shutdown(ctx context.Context) error {
	errs := make([]error, len(e.listeners))
	var wg sync.WaitGroup
	for i, l := range e.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil && !errors.Is(err, smtpd.ErrServerClosed) {
				l.srv.Close()
				errs[i] = fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	wg.Wait()
	e.stopTrace()
	if e.runner != nil {
		e.runner.Stop()
	}
	e.stopBackend()
	if e.queue != nil {
		if err := e.queue.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
