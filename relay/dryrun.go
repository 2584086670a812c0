package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/rewrite"
)

// Probe describes one imagined transaction for a policy dry run.
type Probe struct {
	Client   netip.Addr
	Helo     string
	AuthUser string // an account address; its password is not checked
	TLS      bool
	Listener string // listener mode: mx (default), submission, smtps
	From     string
	Rcpts    []string
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
	// Rewritten is the recipient after the receive-time rewrite.
	Rewritten string `json:"rewritten,omitempty"`
}

func stepOf(stage, arg string, v guard.Verdict) Step {
	s := Step{Stage: stage, Arg: arg, Verdict: v.Action.String(), Code: v.Code, Enhanced: v.Enhanced, Rule: v.Rule, Reason: v.Reason}
	if v.Accepted() && s.Code == 0 {
		// The replies the live session gives.
		switch stage {
		case "connect":
			s.Code, s.Enhanced = 220, ""
		case "mail":
			s.Code, s.Enhanced = 250, "2.1.0"
		case "rcpt":
			s.Code, s.Enhanced = 250, "2.1.5"
		default:
			s.Code, s.Enhanced = 250, "2.0.0"
		}
	}
	return s
}

// DryRun runs the real policy over a probe and returns every step's
// verdict. Nothing is sent, queued or logged. It stops at the first
// refusal of connect, helo, auth or mail, as a client would.
func DryRun(sec Sections, p Probe) ([]Step, error) {
	st, err := buildState(sec)
	if err != nil {
		return nil, err
	}
	mode := p.Listener
	if mode == "" {
		mode = "mx"
	}
	client := guard.Client{IP: p.Client.Unmap(), Helo: p.Helo, TLS: p.TLS}
	steps := []Step{stepOf("connect", p.Client.String(), st.guard.CheckConnect(client))}
	if steps[0].Verdict != "accept" {
		return steps, nil
	}
	steps = append(steps, Step{Stage: "helo", Arg: p.Helo, Verdict: "accept", Code: 250, Rule: "builtin:helo", Reason: "any HELO name is accepted, none too; it is recorded in Received"})
	if p.AuthUser != "" {
		a := st.dir.Account(p.AuthUser)
		switch {
		case !p.TLS && !(sec.Relay.Auth.AllowInsecure && mode != "smtps"):
			steps = append(steps, Step{Stage: "auth", Arg: p.AuthUser, Verdict: "reject", Code: 523, Enhanced: "5.7.10",
				Rule: "builtin:auth-tls", Reason: "AUTH is offered only under TLS (relay.auth.allow_insecure is off)"})
			return steps, nil
		case a == nil:
			steps = append(steps, Step{Stage: "auth", Arg: p.AuthUser, Verdict: "reject", Code: 535, Enhanced: "5.7.8",
				Rule: "builtin:auth", Reason: "no such account"})
			return steps, nil
		case a.Secret == "":
			steps = append(steps, Step{Stage: "auth", Arg: p.AuthUser, Verdict: "reject", Code: 535, Enhanced: "5.7.8",
				Rule: "builtin:auth", Reason: "the account has no SMTP AUTH secret"})
			return steps, nil
		}
		client.AuthUser = a.Address()
		steps = append(steps, Step{Stage: "auth", Arg: p.AuthUser, Verdict: "accept", Code: 235, Enhanced: "2.7.0",
			Rule: "builtin:auth", Reason: "assuming the right password (it is not checked in a dry run)"})
	}
	source := rewrite.SourceInternet
	switch {
	case client.AuthUser != "":
		source = rewrite.SourceAuthenticated
	case st.guard.Inner(client.IP):
		source = rewrite.SourceInner
	}
	switch {
	case (mode == "submission" || mode == "smtps") && client.AuthUser == "":
		steps = append(steps, Step{Stage: "mail", Arg: p.From, Verdict: "reject", Code: 530, Enhanced: "5.7.0",
			Rule: "builtin:submission", Reason: "the submission listener requires SMTP AUTH"})
		return steps, nil
	}
	v := st.guard.CheckMail(client, p.From)
	steps = append(steps, stepOf("mail", p.From, v))
	if !v.Accepted() {
		return steps, nil
	}
	accepted := 0
	for _, r := range p.Rcpts {
		v := st.guard.CheckRcpt(client, p.From, r)
		step := stepOf("rcpt", r, v)
		if v.Accepted() {
			out, err := st.rewriter.Default().Rewrite(rewrite.Input{From: p.From, To: []string{r}, Source: source})
			if err == nil && len(out.To) == 1 && out.To[0] != r {
				step.Rewritten = out.To[0]
				if v2 := st.guard.Recheck(client, p.From, out.To[0]); !v2.Accepted() {
					step = stepOf("rcpt", r, v2)
					step.Rewritten = out.To[0]
					step.Reason = fmt.Sprintf("rewritten to %s: %s", out.To[0], v2.Reason)
				}
			}
		}
		if step.Verdict == "accept" {
			accepted++
		}
		steps = append(steps, step)
	}
	if accepted == 0 {
		steps = append(steps, Step{Stage: "data", Verdict: "reject", Code: 554, Enhanced: "5.5.1", Rule: "builtin:no-recipients", Reason: "no valid recipients"})
		return steps, nil
	}
	steps = append(steps, Step{Stage: "data", Verdict: "accept", Code: 250, Enhanced: "2.0.0", Rule: "builtin:data",
		Reason: fmt.Sprintf("would be queued for %d recipient(s); the header From check and the hop count apply to the message itself (source %s)", accepted, source)})
	return steps, nil
}

// Session runs a fake SMTP dialogue on in/out as if a client at p.Client
// had connected, answered by the real policy; messages are read through
// the real pipeline and discarded (like exim -bh).
func Session(sec Sections, clientIP netip.Addr, mode string, in io.Reader, out io.Writer, log *slog.Logger) error {
	st, err := buildState(sec)
	if err != nil {
		return err
	}
	e := &Engine{startCfg: sec.Relay, metrics: NewMetrics(), log: log}
	e.st.Store(st)
	e.auth = e.newAuthenticator(sec.Relay)
	if mode == "" {
		mode = "mx"
	}
	// There is no TLS on standard input: AUTH is allowed without it.
	l := &listener{name: "dry-run", cfg: ListenerConfig{Mode: mode, Address: "stdio"}, allowInsecureAuth: true}
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
