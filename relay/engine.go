package relay

import (
	"context"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ops/trace"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Sections is the whole configuration the engine needs; the command
// assembles it from the file.
type Sections struct {
	Accounts accounts.Config
	Rewrite  rewrite.Config
	Routing  routing.Config
	Relay    Config
}

// state is everything a reload replaces at once. Sessions and deliveries
// take a snapshot and keep it for their whole transaction.
type state struct {
	cfg      Config
	dir      *accounts.Directory
	rewriter *rewrite.Rewriter
	router   *routing.Router
	guard    *guard.Guard
	// pol decides every stage over the fields above.
	pol      *policy.Policy
	policies [rewrite.SourceInternet + 1]LinePolicy // by rewrite.Source
	// sanitize is nil when relay.sanitize has no rules, and in dry runs.
	sanitize *SanitizeStage
	// inspect is relay.inspect, built anew on reload: SIGHUP rereads the
	// DKIM keys.
	inspect *Inspection
}

func (st *state) linePolicy(src rewrite.Source) LinePolicy {
	if int(src) < len(st.policies) {
		return st.policies[src]
	}
	return LineReject
}

// Engine is the running gateway: listeners, policy state, queue, delivery.
type Engine struct {
	startCfg Config // listeners and queue location: fixed until restart
	st       atomic.Pointer[state]
	queue    *queue.Spool // nil in dry-run sessions: messages are discarded
	metrics  *Metrics
	log      *slog.Logger
	// auth lives as long as the process, so lockouts survive a reload;
	// it reads the current directory at each attempt.
	auth *auth.Authenticator
	cert atomic.Pointer[tls.Certificate]

	mu        sync.Mutex
	listeners []*listener
	runner    *runner

	trace   *trace.Hub // the live protocol trace; nil in dry runs
	traceLn *net.UnixListener
}

// listener is one configured socket with its own protocol server.
type listener struct {
	name              string
	cfg               ListenerConfig
	srv               *smtpd.Server
	limit             *limitListener
	allowInsecureAuth bool
	// implicitTLS: the dry-run session of an smtps listener, whose
	// standard input stands for the stream inside TLS.
	implicitTLS bool
}

// SelfFor lists this gateway's names and listen addresses for the
// routing layer's self-route check.
func SelfFor(c Config) routing.Self {
	self := routing.Self{Hostnames: []string{c.Hostname}}
	for _, l := range c.Listeners {
		if ap, err := netip.ParseAddrPort(l.Address); err == nil {
			self.Addrs = append(self.Addrs, ap)
		} else if host, port, err := net.SplitHostPort(l.Address); err == nil {
			p, _ := strconv.Atoi(port)
			if host == "" {
				self.Addrs = append(self.Addrs, netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)))
			} else {
				self.Hostnames = append(self.Hostnames, host)
			}
		}
	}
	return self
}

// buildState loads and checks everything a reload may change.
func buildState(sec Sections) (*state, error) {
	dir, err := accounts.Open(sec.Accounts)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	rw, err := rewrite.New(sec.Rewrite)
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	router, err := routing.New(sec.Routing, SelfFor(sec.Relay))
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	for _, r := range sec.Routing.Routes {
		if r.Rewrite != "" {
			if _, ok := rw.Set(r.Rewrite); !ok {
				return nil, fmt.Errorf("routing: route %q names rewrite set %q, which rewrite.sets does not define", r.Name, r.Rewrite)
			}
		}
	}
	if err := sanitizeRoutesExist(sec.Relay.Sanitize, sec.Routing); err != nil {
		return nil, err
	}
	g, err := guard.New(sec.Relay.Guard, func() *accounts.Directory { return dir })
	if err != nil {
		return nil, fmt.Errorf("relay.guard: %w", err)
	}
	in, err := NewInspection(sec.Relay.Inspect, sec.Relay.Hostname, nil)
	if err != nil {
		return nil, fmt.Errorf("relay.inspect: %w", err)
	}
	st := &state{cfg: sec.Relay, dir: dir, rewriter: rw, router: router, guard: g, inspect: in}
	st.pol = policy.New(policy.Parts{Dir: dir, Rewriter: rw, Router: router, Guard: g,
		MaxReceived: sec.Relay.Limits.MaxReceivedFields, AllowInsecureAuth: sec.Relay.Auth.AllowInsecure,
		Postmaster: sec.Relay.postmaster()})
	for src, p := range map[rewrite.Source]string{
		rewrite.SourceInternet:      sec.Relay.BareLineEndings.Internet,
		rewrite.SourceInner:         sec.Relay.BareLineEndings.Inner,
		rewrite.SourceAuthenticated: sec.Relay.BareLineEndings.Authenticated,
	} {
		st.policies[src], _ = ParseLinePolicy(p)
	}
	return st, nil
}

// New builds the engine and opens the queue (recovering it). It does not
// listen yet.
func New(sec Sections, log *slog.Logger, m *Metrics) (*Engine, error) {
	st, err := buildState(sec)
	if err != nil {
		return nil, err
	}
	if st.sanitize, err = NewSanitizeStage(sec.Relay.Sanitize); err != nil {
		return nil, fmt.Errorf("relay.sanitize: %w", err)
	}
	e := &Engine{startCfg: sec.Relay, metrics: m, log: log}
	e.st.Store(st)
	e.auth = e.newAuthenticator(sec.Relay)
	if err := e.loadCert(sec.Relay.TLS); err != nil {
		return nil, err
	}
	q, err := queue.Open(sec.Relay.Queue, queue.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("relay.queue: %w", err)
	}
	e.queue = q
	e.trace = trace.NewHub()
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

// Reload swaps in a new configuration. Listeners and the queue location
// need a restart; a change to them is reported and ignored. On any error
// the running state is kept.
func (e *Engine) Reload(sec Sections) error {
	st, err := buildState(sec)
	if err != nil {
		return err
	}
	if st.sanitize, err = NewSanitizeStage(sec.Relay.Sanitize); err != nil {
		return fmt.Errorf("relay.sanitize: %w", err)
	}
	if err := e.loadCert(sec.Relay.TLS); err != nil {
		return err
	}
	e.st.Store(st)
	e.mu.Lock()
	if e.runner != nil {
		e.runner.reconfigure(sec.Relay)
	}
	e.mu.Unlock()
	e.reconfigureListeners(sec.Relay)
	restart := restartOnly(e.startCfg, sec.Relay)
	e.log.Info("configuration reloaded", "kind", "reload", "accounts", st.dir.Len(),
		"applied", "accounts, rewrite, routing, relay.guard, relay.bare_line_endings, relay.hostname, relay.tls, relay.limits, relay.delivery (for new connections and messages), relay.sanitize, relay.inspect (DKIM keys reread)",
		"needs_restart", restartNote(restart))
	return nil
}

// Start binds every listener and starts serving and delivering.
func (e *Engine) Start(ctx context.Context) error {
	st := e.st.Load()
	if len(st.cfg.Listeners) == 0 {
		return errors.New("relay.listeners: at least one listener is needed to serve")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, lc := range st.cfg.Listeners {
		l, err := e.listen(fmt.Sprintf("%s/%s", lc.Mode, lc.Address), lc)
		if err != nil {
			e.closeListeners()
			return fmt.Errorf("relay.listeners[%d]: %w", i, err)
		}
		e.listeners = append(e.listeners, l)
	}
	e.startTrace()
	e.runner = newRunner(e)
	e.runner.run(ctx)
	go e.sanitizeMaintenance(ctx)
	return nil
}

func (e *Engine) listen(name string, lc ListenerConfig) (*listener, error) {
	st := e.st.Load()
	// No TCP keep-alive: the idle and session deadlines end dead
	// sessions, and the three setsockopt calls it costs per accepted
	// connection showed in the profile.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", lc.Address)
	if err != nil {
		return nil, err
	}
	lim := st.cfg.Limits
	l := &listener{name: name, cfg: lc}
	l.limit = newLimitListener(ln, lim.MaxConnections, lim.MaxConnectionsIP, lim.IdleTimeout, lim.SessionTimeout, connHooks{
		open: func(ip string) {
			e.metrics.Connections.WithLabelValues(name, "accepted").Inc()
			e.metrics.Sessions.WithLabelValues(name).Inc()
		},
		refuse: func(ip, reason string) {
			e.metrics.Connections.WithLabelValues(name, "refused_limit").Inc()
			e.log.Warn("connection refused", "kind", "accept", "client", ip, "listener", name, "reason", reason)
		},
		close: func(ip string) { e.metrics.Sessions.WithLabelValues(name).Dec() },
	})
	l.allowInsecureAuth = st.cfg.Auth.AllowInsecure && !lc.RequireTLS
	l.srv = e.newServer(l, st.cfg, e.tlsConfig())
	var serveOn net.Listener = l.limit
	if lc.Mode == "smtps" {
		serveOn = tls.NewListener(l.limit, l.srv.TLS)
	}
	go l.srv.Serve(serveOn)
	return l, nil
}

// newServer is the protocol server of one listener; its sessions are
// answered by the policy of the moment they connect.
func (e *Engine) newServer(l *listener, cfg Config, tlsConfig *tls.Config) *smtpd.Server {
	return &smtpd.Server{
		Config:     serverConfig(l, cfg, tlsConfig),
		NewHandler: func(c *smtpd.Conn) smtpd.Handler { return e.newSession(l, c) },
		Trace:      e.serverTrace(),
	}
}

// serverConfig is what the protocol needs of the configuration, at start
// and at every reload.
func serverConfig(l *listener, cfg Config, tlsConfig *tls.Config) smtpd.Config {
	lim := cfg.Limits
	return smtpd.Config{
		Hostname:          cfg.Hostname,
		MaxMessageBytes:   lim.MaxMessageBytes,
		MaxRecipients:     lim.MaxRecipients,
		MaxLineLength:     lim.MaxLineLength,
		ErrorLimit:        lim.ErrorLimit,
		TLS:               tlsConfig,
		ImplicitTLS:       l.cfg.Mode == "smtps" && tlsConfig != nil,
		AllowInsecureAuth: l.allowInsecureAuth,
		WriteTimeout:      time.Minute,
		SMTPUTF8:          true,
		DSN:               true,
	}
}

// reconfigureListeners gives the listeners a reloaded configuration: the
// limits, the hostname and TLS (a certificate given only now turns
// STARTTLS on) for every connection accepted from now on.
func (e *Engine) reconfigureListeners(cfg Config) {
	lim := cfg.Limits
	tc := e.tlsConfig()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.listeners {
		l.limit.setLimits(lim.MaxConnections, lim.MaxConnectionsIP, lim.IdleTimeout, lim.SessionTimeout)
		ltc := tc
		if l.cfg.Mode == "smtps" {
			// The TLS listener keeps the configuration it started with
			// (its certificate is reloaded through GetCertificate).
			ltc = l.srv.TLS
		}
		l.srv.SetConfig(serverConfig(l, cfg, ltc))
	}
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

func (e *Engine) newSession(l *listener, c *smtpd.Conn) *session {
	ip := c.RemoteAddr().Addr()
	s := &session{e: e, st: e.st.Load(), lis: l, conn: c, id: newID(), ip: ip, implicitTLS: l.implicitTLS}
	s.log = e.log.With("session", s.id, "client", ip.String())
	return s
}

func (e *Engine) newAuthenticator(c Config) *auth.Authenticator {
	a := auth.NewAuthenticator(c.Auth, func() *accounts.Directory { return e.st.Load().dir }, c.Hostname)
	a.OnFailure = func(ip netip.Addr, user, reason string) {
		e.log.Warn("auth failed", "kind", "auth", "client", ip.String(), "user", user, "reason", reason)
	}
	return a
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
		e.runner.stop()
	}
	if e.queue != nil {
		if err := e.queue.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newID is a short random identifier for sessions, for logs only: no
// secret, so math/rand (no system call per session) is enough.
func newID() string {
	var b [5]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
