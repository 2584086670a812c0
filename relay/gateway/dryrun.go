package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Probe describes one imagined transaction for a policy dry run. Addresses
// are as the command parser hands them over (policy.ParsePath).
type Probe struct {
	Client   netip.Addr
	Helo     string
	AuthUser string // an account address; its password is not checked
	TLS      bool
	// Listener is a listener's name (relay.listeners[].name), whose mode
	// then applies, or a mode: mx (default), submission, smtps.
	Listener string
	// At is when the transaction happens, for time conditions; zero: now.
	At    time.Time
	From  string
	Rcpts []string
	// Header is the message's header block (with its empty line); nil
	// stands for a header with only "From: <From>", what most clients
	// write.
	Header []byte
	// Message is the whole message, when given: the outbound rules'
	// attachment and size conditions read it (Header is its header).
	Message []byte
}

// Step is the verdict of one SMTP stage in a dry run.
type Step struct {
	Stage    string `json:"stage"` // connect, helo, auth, mail, rcpt, data
	Arg      string `json:"arg"`
	Verdict  string `json:"verdict"` // accept, reject, tempfail
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	// Target is an accepted recipient's alias target, when it has one.
	Target string `json:"target,omitempty"`
	// Rewritten is the address after the receive-time rewrite (the
	// recipient at rcpt, the sender at mail), when it changed.
	Rewritten string `json:"rewritten,omitempty"`
	// NextHop names the route an accepted recipient is delivered by and
	// its hosts (table match, no DNS); Route is the whole decision.
	NextHop string            `json:"next_hop,omitempty"`
	Route   *routing.Decision `json:"route,omitempty"`
	// Limits, on the connect step, are the rate and connection limits
	// the session would meet (relay.rate_limits, relay.limits).
	Limits string `json:"limits,omitempty"`
}

// ProbeInput is one probe as relay test's flags, a --batch line or the
// console's form give it: addresses as a client writes them.
type ProbeInput struct {
	Client   string   `json:"client"`
	Helo     string   `json:"helo"`
	Auth     string   `json:"auth"`
	TLS      bool     `json:"tls"`
	Listener string   `json:"listener"`
	From     string   `json:"from"`
	Rcpts    []string `json:"rcpts"`
	// Header is the message's header block, with its empty line (--batch
	// only; default: a header with only From).
	Header string `json:"header"`
}

// Probe checks the input and reads its addresses as the server's command
// parser would; msg says what is wrong.
func (in ProbeInput) Probe() (Probe, string) {
	ip, err := netip.ParseAddr(in.Client)
	if err != nil {
		return Probe{}, fmt.Sprintf("client %q is not an IP address (e.g. 192.0.2.7)", in.Client)
	}
	if len(in.Rcpts) == 0 {
		return Probe{}, "give at least one recipient (rcpt)"
	}
	p := Probe{Client: ip, Helo: in.Helo, AuthUser: in.Auth, TLS: in.TLS, Listener: in.Listener}
	if in.Header != "" {
		p.Header = []byte(in.Header)
	}
	if p.From, err = policy.ParsePath(in.From); err != nil {
		return Probe{}, fmt.Sprintf("sender (from) %q: %v", in.From, err)
	}
	for _, r := range in.Rcpts {
		a, err := policy.ParsePath(r)
		if err == nil && a == "" {
			err = fmt.Errorf("empty address")
		}
		if err != nil {
			return Probe{}, fmt.Sprintf("recipient (rcpt) %q: %v", r, err)
		}
		p.Rcpts = append(p.Rcpts, a)
	}
	return p, ""
}

// Refused reports whether the step refuses.
func (s Step) Refused() bool { return s.Verdict != "accept" }

func stepOf(d policy.Decision) Step {
	s := Step{Stage: d.Stage, Arg: d.Arg, Verdict: d.Action.String(), Code: d.Code, Enhanced: d.Enhanced, Rule: d.Rule, Reason: d.Reason}
	if d.Target != "" && d.Target != d.Arg {
		s.Target = d.Target
	}
	if d.Rewritten != "" && d.Rewritten != d.Arg && d.Rewritten != d.Target {
		s.Rewritten = d.Rewritten
	}
	if d.Accepted() && d.Route != nil {
		s.Route = d.Route
		s.NextHop = d.Route.Summary()
	}
	if d.Accepted() && d.RouteErr != nil {
		s.NextHop = "unroutable: " + d.RouteErr.Error()
	}
	return s
}

// ProbeConn is what the policy would know about the probe's client: the
// listener it names (by name or mode) gives the mode, the name for rules
// by listener and require_tls; smtps is TLS by definition.
func ProbeConn(c Config, p Probe) policy.Conn {
	lc := dryRunListener(c, p.Listener)
	return policy.Conn{IP: p.Client.Unmap(), Helo: p.Helo, TLS: p.TLS || lc.Mode == policy.ModeSMTPS,
		Mode: lc.Mode, RequireTLS: lc.RequireTLS, Listener: lc.Name, At: p.At}
}

// DryRun runs the real policy over a probe and returns every step's
// verdict. Nothing is sent, queued or logged. It stops at the first
// refusal of connect, helo, auth, mail or data, as a client would.
func DryRun(sec Sections, p Probe) ([]Step, error) {
	if err := checkProbeListener(sec.Relay, p.Listener); err != nil {
		return nil, err
	}
	st, err := buildState(sec, nil)
	if err != nil {
		return nil, err
	}
	return dryRun(st.pol, sec.Relay, p), nil
}

// DryRunner decides many probes with one loaded configuration (relay test
// --batch).
type DryRunner struct {
	st  *snapshot
	cfg Config
}

// NewDryRunner loads the configuration once.
func NewDryRunner(sec Sections) (*DryRunner, error) {
	st, err := buildState(sec, nil)
	if err != nil {
		return nil, err
	}
	return &DryRunner{st: st, cfg: sec.Relay}, nil
}

// Run decides one probe.
func (r *DryRunner) Run(p Probe) []Step { return dryRun(r.st.pol, r.cfg, p) }

// dryRun decides one probe. Its rate limits count in a limiter of its
// own: a probe is one session of a client that has not been seen this
// minute, and probes of a batch do not count against each other.
func dryRun(pol *policy.Policy, cfg Config, p Probe) (out []Step) {
	conn := ProbeConn(cfg, p)
	conn.Rates = ratelimit.New(cfg.RateLimits, nil).Session()
	if a := pol.Admit(conn); !a.Accepted() {
		return []Step{stepOf(a)}
	}
	steps := []Step{stepOf(pol.Connect(conn))}
	// Said on the connect step once AUTH has named the user they count.
	defer func() { out[0].Limits = limitsOf(pol, cfg, conn) }()
	if steps[0].Refused() {
		return steps
	}
	h := pol.Helo(conn, p.Helo)
	steps = append(steps, stepOf(h))
	if !h.Accepted() {
		return steps
	}
	if p.AuthUser != "" {
		a := pol.Auth(conn, p.AuthUser)
		s := stepOf(a)
		s.Rewritten = ""
		if a.Accepted() {
			s.Reason = "assuming the right password (it is not checked in a dry run)"
		}
		steps = append(steps, s)
		if !a.Accepted() {
			return steps
		}
		conn.AuthUser = a.Rewritten
	}
	m := pol.Mail(conn, p.From)
	steps = append(steps, stepOf(m))
	if !m.Accepted() {
		return steps
	}
	var accepted []policy.Decision
	for _, r := range p.Rcpts {
		d := pol.Rcpt(conn, p.From, r)
		steps = append(steps, stepOf(d))
		if d.Accepted() {
			accepted = append(accepted, d)
		}
	}
	header := p.Header
	if header == nil {
		header = []byte("\r\n")
		if p.From != "" {
			header = []byte("From: <" + p.From + ">\r\n\r\n")
		}
	}
	msg, d := pol.Data(conn, p.From, accepted, header)
	s := stepOf(d)
	if d.Accepted() {
		to := make([]string, len(msg.Rcpts))
		for i, q := range msg.Rcpts {
			to[i] = q.Addr
		}
		s.Arg = strings.Join(to, ",")
		if msg.Rewritten != p.From {
			s.Rewritten = msg.Rewritten
		}
		s.Reason = fmt.Sprintf("would be queued from <%s> for %s (source %s)", msg.From, s.Arg, pol.Source(conn))
	}
	steps = append(steps, s)
	if d.Accepted() && pol.HasOutbound() {
		steps = append(steps, outboundStep(pol, conn, msg, header, p.Message))
	}
	return steps
}

// limitsOf says which limits a session of conn meets: the rate limits as
// the policy counts them and the connection cap per client address.
func limitsOf(pol *policy.Policy, cfg Config, conn policy.Conn) string {
	s := "rate limits: " + pol.RateLimits(conn)
	if n := cfg.Limits.MaxConnectionsIP; n > 0 {
		s += fmt.Sprintf("; at most %d connections at once per client address (relay.limits.max_connections_per_ip)", n)
	}
	return s
}

// dryRunListener is the listener a dry run pretends the client came in
// on: the configured one named nameOrMode (its mode and name, for rules by
// listener), or an unnamed one of that mode (mx when empty).
// checkProbeListener refuses a --listener that is neither a configured
// listener's name nor a mode.
func checkProbeListener(c Config, nameOrMode string) error {
	switch nameOrMode {
	case "", policy.ModeMX, policy.ModeSubmission, policy.ModeSMTPS:
		return nil
	}
	for _, l := range c.Listeners {
		if l.Name == nameOrMode {
			return nil
		}
	}
	return fmt.Errorf("--listener: %q is neither the name of a listener in relay.listeners nor mx, submission or smtps", nameOrMode)
}

func dryRunListener(c Config, nameOrMode string) ListenerConfig {
	for _, l := range c.Listeners {
		if l.Name != "" && l.Name == nameOrMode {
			return ListenerConfig{Name: l.Name, Mode: l.Mode, RequireTLS: l.RequireTLS, Address: "stdio"}
		}
	}
	if nameOrMode == "" {
		nameOrMode = policy.ModeMX
	}
	lc := ListenerConfig{Mode: nameOrMode, Address: "stdio"}
	for _, l := range c.Listeners {
		if l.Mode == nameOrMode || (l.Mode == "" && nameOrMode == policy.ModeMX) {
			lc.RequireTLS = l.RequireTLS
			break
		}
	}
	return lc
}

// Session runs a fake SMTP dialogue on in/out as if a client at p.Client
// had connected, answered by the real policy; messages are read through
// the real pipeline and discarded (like exim -bh).
func Session(sec Sections, clientIP netip.Addr, mode string, in io.Reader, out io.Writer, log *slog.Logger) error {
	st, err := buildState(sec, nil)
	if err != nil {
		return err
	}
	e := &Engine{startCfg: sec.Relay, metrics: ops.NewMetrics(), log: log, rates: ratelimit.New(sec.Relay.RateLimits, nil)}
	e.st.Store(st)
	e.sessions = &session.Shared{Metrics: e.metrics, Log: log, Auth: e.newAuthenticator(sec.Relay), Rates: e.rates}
	// There is no TLS on standard input: AUTH is offered as the policy
	// decides for a client without TLS; smtps stands for a client inside
	// implicit TLS.
	lc := dryRunListener(sec.Relay, mode)
	l := &listener{name: "dry-run", cfg: lc, info: newListenerInfo("dry-run", lc, lc.Mode == policy.ModeSMTPS)}
	l.srv = e.newServer(l, st.cfg, nil)
	conn := &stdioConn{r: in, w: out, remote: &net.TCPAddr{IP: clientIP.AsSlice(), Port: 0}, done: make(chan struct{})}
	l.srv.ServeConn(conn)
	return nil
}

// stdioConn is a net.Conn over standard input and output.
type stdioConn struct {
	r      io.Reader
	w      io.Writer
	remote net.Addr
	once   sync.Once
	done   chan struct{}
}

func (c *stdioConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err != nil {
		c.Close()
	}
	return n, err
}
func (c *stdioConn) Write(b []byte) (int, error) {
	if _, err := c.w.Write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (c *stdioConn) Close() error                     { c.once.Do(func() { close(c.done) }); return nil }
func (c *stdioConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (c *stdioConn) RemoteAddr() net.Addr             { return c.remote }
func (c *stdioConn) SetDeadline(time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

// Policy is the loaded configuration's decision core.
func (r *DryRunner) Policy() *policy.Policy { return r.st.pol }

// Decide decides one probe after checking that its listener exists (the
// console's relay test; relay test checks it in DryRun).
func (r *DryRunner) Decide(p Probe) ([]Step, error) {
	if err := checkProbeListener(r.cfg, p.Listener); err != nil {
		return nil, err
	}
	return r.Run(p), nil
}

// Rewriter is the rewrite rules of the dry runner's configuration.
func (r *DryRunner) Rewriter() *rewrite.Rewriter { return r.st.runner.Rewriter }
