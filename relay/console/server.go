package console

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sekisho/sekisho/relay/gateway"
)

//go:embed templates/*.html static/*
var assets embed.FS

// ConfigReport is the effective configuration with secrets redacted and
// config check's findings, as the command assembles them.
type ConfigReport struct {
	Source   string
	YAML     string
	Problems []string
	Warnings []string
}

// Options are what the command hands the console besides its section.
type Options struct {
	// Config returns the effective configuration report (the page
	// "configuration"); nil hides the page.
	Config func() ConfigReport
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Server is the console.
type Server struct {
	cfg    Config
	eng    *gateway.Engine
	log    *slog.Logger
	opt    Options
	pages  map[string]*pageSet // by language
	static http.Handler
	ldap   *ldapSignIn // nil without console.ldap

	mu      sync.Mutex
	servers []*http.Server
	addrs   []net.Addr
	key     []byte // the cookie signing key, from the store
}

// New prepares the console for a running engine.
func New(cfg Config, eng *gateway.Engine, opt Options) (*Server, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{cfg: cfg, eng: eng, log: eng.Log(), opt: opt}
	var err error
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assets, "static")
	s.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	if cfg.LDAP.URL != "" {
		if s.ldap, err = newLDAPSignIn(cfg.LDAP); err != nil {
			return nil, fmt.Errorf("console.ldap: %w", err)
		}
	}
	return s, nil
}

// Start binds every listener and serves until Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.Handler()
	for i, l := range s.cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.closeLocked()
			return fmt.Errorf("console.listeners[%d]: %w", i, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		if !l.HTTP {
			tc := s.eng.ServerTLS()
			if tc == nil {
				ln.Close()
				s.closeLocked()
				return fmt.Errorf("console.listeners[%d]: HTTPS needs relay.tls", i)
			}
			tc = tc.Clone()
			tc.NextProtos = []string{"h2", "http/1.1"}
			ln = tls.NewListener(ln, tc)
		}
		s.servers = append(s.servers, srv)
		s.addrs = append(s.addrs, ln.Addr())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("console listener stopped", "kind", "stop", "address", l.Address, "error", err)
			}
		}()
		scheme := "https"
		if l.HTTP {
			scheme = "http"
		}
		s.log.Info("console listening", "kind", "start", "address", ln.Addr().String(), "scheme", scheme)
	}
	return nil
}

// Addrs are the bound addresses, in configuration order.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

func (s *Server) closeLocked() {
	for _, srv := range s.servers {
		srv.Close()
	}
	s.servers = nil
}

// Shutdown stops serving, letting requests finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.servers = nil
	return errors.Join(errs...)
}

// maxForm bounds a request body: forms are small; an uploaded message's
// header is read up to the gateway's header limit.
const (
	maxForm   = 64 << 10
	maxUpload = 2 << 20
)

// Handler is the console's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("POST /signout", s.auth(roleAny, s.signout))

	mux.HandleFunc("GET /my/quarantine", s.auth(roleStaff, s.myQuarantine))
	mux.HandleFunc("GET /quarantine/{inst}/{id}", s.auth(roleAny, s.item))
	mux.HandleFunc("POST /quarantine/{inst}/{id}/request", s.auth(roleStaff, s.requestRelease))
	mux.HandleFunc("POST /quarantine/{inst}/{id}/unlock", s.auth(roleStaff, s.unlock))
	mux.HandleFunc("GET /my/requests", s.auth(roleStaff, s.myRequests))
	mux.HandleFunc("POST /requests/{rid}/cancel", s.auth(roleStaff, s.cancelRequest))

	mux.HandleFunc("GET /approvals", s.auth(roleApprover, s.approvals))
	mux.HandleFunc("POST /approvals/{rid}", s.auth(roleApprover, s.decide))

	mux.HandleFunc("GET /my/held", s.auth(roleStaff, s.myHeld))
	mux.HandleFunc("GET /outbound/approve", s.auth(roleAny, s.toApprove))
	mux.HandleFunc("POST /outbound/absence", s.auth(roleAny, s.absence))
	mux.HandleFunc("GET /outbound/{rid}", s.auth(roleAny, s.heldPage))
	mux.HandleFunc("POST /outbound/{rid}", s.auth(roleAny, s.heldDecide))
	mux.HandleFunc("GET /outbound/link/{token}", s.linkPage)
	mux.HandleFunc("POST /outbound/link/{token}", s.linkDecide)
	mux.HandleFunc("GET /admin/outbound", s.auth(roleAdmin, s.heldHistory))

	mux.HandleFunc("GET /admin", s.auth(roleAdmin, s.dashboard))
	mux.HandleFunc("GET /admin/queue", s.auth(roleAdmin, s.queueList))
	mux.HandleFunc("GET /admin/queue/{qid}", s.auth(roleAdmin, s.queueShow))
	mux.HandleFunc("POST /admin/queue/{qid}/{op}", s.auth(roleAdmin, s.queueChange))
	mux.HandleFunc("GET /admin/quarantine", s.auth(roleAdmin, s.quarantineList))
	mux.HandleFunc("POST /admin/quarantine/{inst}/{id}/release", s.auth(roleAdmin, s.adminRelease))
	mux.HandleFunc("POST /admin/quarantine/{inst}/{id}/purge", s.auth(roleAdmin, s.purge))
	mux.HandleFunc("POST /admin/quarantine/{inst}/{id}/unlock-reset", s.auth(roleAdmin, s.unlockReset))
	mux.HandleFunc("GET /admin/quarantine/{inst}/{id}/original", s.auth(roleAdmin, s.original))
	mux.HandleFunc("GET /admin/trace", s.auth(roleAdmin, s.traceSearch))
	mux.HandleFunc("GET /admin/trace/message/{qid}", s.auth(roleAdmin, s.traceMessage))
	mux.HandleFunc("GET /admin/trace/session/{sid}", s.auth(roleAdmin, s.traceSession))
	mux.HandleFunc("GET /admin/tests", s.auth(roleAdmin, s.tests))
	mux.HandleFunc("POST /admin/tests/{tool}", s.auth(roleAdmin, s.runTest))
	mux.HandleFunc("GET /admin/config", s.auth(roleAdmin, s.configPage))
	mux.HandleFunc("GET /admin/audit", s.auth(roleAdmin, s.auditPage))
	mux.HandleFunc("POST /admin/sessions/revoke", s.auth(roleAdmin, s.revokeSessions))
	return s.secure(mux)
}

// contentSecurityPolicy allows nothing but our own stylesheet and images:
// no script at all, no frames, forms only to us.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every answer carries and bounds request
// bodies.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		limit := int64(maxForm)
		if r.URL.Path == "/admin/tests/rewrite" {
			limit = maxUpload
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
