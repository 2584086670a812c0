package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// listener is one configured socket with its own protocol server.
type listener struct {
	name  string // "mx/0.0.0.0:25", for logs and metrics
	cfg   ListenerConfig
	srv   *smtpd.Server
	limit *limitListener
	// info is what its sessions know of it.
	info *session.Listener
}

func newListenerInfo(name string, lc ListenerConfig, implicitTLS bool) *session.Listener {
	return &session.Listener{Label: name, Name: lc.Name, Mode: lc.Mode, RequireTLS: lc.RequireTLS, ImplicitTLS: implicitTLS}
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
	l := &listener{name: name, cfg: lc, info: newListenerInfo(name, lc, false)}
	l.limit = newLimitListener(ln, lim.MaxConnections, lim.MaxConnectionsIP, lim.IdleTimeout, lim.SessionTimeout, connHooks{
		admit: func(ip string) string { return e.admit(name, lc, ip) },
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
	l.srv = e.newServer(l, st.cfg, e.tlsConfig())
	var serveOn net.Listener = l.limit
	if lc.Mode == "smtps" {
		serveOn = tls.NewListener(l.limit, l.srv.TLS)
	}
	go l.srv.Serve(serveOn)
	return l, nil
}

// admit asks the policy of the moment whether a new connection from ip
// is within the client's connection rate (relay.rate_limits), counting
// it; the reply line that refuses it, or "".
func (e *Engine) admit(name string, lc ListenerConfig, ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	d := e.st.Load().pol.Admit(policy.Conn{IP: a, Mode: lc.Mode, Listener: lc.Name, Rates: e.rates.Session()})
	if d.Accepted() {
		return ""
	}
	e.metrics.Connections.WithLabelValues(name, "refused_rate").Inc()
	e.log.Info("refused", "kind", "reject", "stage", "connect", "client", ip, "listener", name,
		"code", d.Code, "enhanced", d.Enhanced, "rule", d.Rule, "reason", d.Reason)
	return d.Reply.String() + "\r\n"
}

// newServer is the protocol server of one listener; each session is
// answered with the snapshot of the moment it connects.
func (e *Engine) newServer(l *listener, cfg Config, tlsConfig *tls.Config) *smtpd.Server {
	return &smtpd.Server{
		Config: serverConfig(l, cfg, tlsConfig),
		NewHandler: func(c *smtpd.Conn) smtpd.Handler {
			return session.New(e.sessions, e.st.Load().session, l.info, c)
		},
		Trace: e.serverTrace(),
	}
}

// serverConfig is what the protocol needs of the configuration, at start
// and at every reload. Whether AUTH is offered is not here: the session
// asks the policy of its snapshot (policy.AuthOffered).
func serverConfig(l *listener, cfg Config, tlsConfig *tls.Config) smtpd.Config {
	lim := cfg.Limits
	return smtpd.Config{
		Hostname:        cfg.Hostname,
		MaxMessageBytes: lim.MaxMessageBytes,
		MaxRecipients:   lim.MaxRecipients,
		MaxLineLength:   lim.MaxLineLength,
		ErrorLimit:      lim.ErrorLimit,
		TLS:             tlsConfig,
		ImplicitTLS:     l.cfg.Mode == "smtps" && tlsConfig != nil,
		WriteTimeout:    time.Minute,
		SMTPUTF8:        true,
		DSN:             true,
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
