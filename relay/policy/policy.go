// Package policy owns the decision at every SMTP stage (connect, HELO, AUTH,
// MAIL, RCPT, the DATA header checks) and the next hop of each accepted
// recipient: one decision core, called by the live session and by every
// dry run, and free of any SMTP server library.
//
// A stage function takes what the server knows about the client (Conn) and
// the transaction so far (Tx) and returns a Decision: the verdict, the
// reply the client gets, the rule that decided and why. Nothing here reads
// from or writes to a network; the caller turns a Decision into a reply.
//
// # What a recipient goes through
//
// RCPT: the guard decides the address as given; an alias of ours is
// resolved to its target; the receive-time rewrite runs on the target and
// the sender; when it changed either, the guard decides the rewritten pair
// again, so a rewrite never turns an accepted address into a relay and a
// sender rewritten into our domains meets the spoofing, protected-name and
// outbound checks. The next hop is the route of the rewritten address, as
// the delivery runner will pick it.
//
// MAIL: the guard decides the sender; a receive-time rewrite that changes
// it is decided again the same way.
//
// DATA: the hop count, the header From trust, the full rewrite (envelope
// and header) and, for every address that came out differently from the
// RCPT preview, the guard again. Duplicates are dropped by the mailbox key:
// folded only where the domain folds local parts.
package policy

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Parts are the snapshot a policy decides with; a reload builds new ones.
type Parts struct {
	Dir      *accounts.Directory
	Rewriter *rewrite.Rewriter
	Router   *routing.Router
	Guard    *guard.Guard
	// Outbound are the outbound rules (relay.outbound); nil: none.
	Outbound *guard.Outbound
	// MaxReceived is relay.limits.max_received_fields: more Received
	// fields than this is a mail loop.
	MaxReceived int
	// AllowInsecureAuth is relay.auth.allow_insecure: AUTH without TLS.
	AllowInsecureAuth bool
	// Postmaster is relay.postmaster: where postmaster mail goes for a
	// domain without such an account (RFC 5321 §4.5.1).
	Postmaster string
	// Hostname is relay.hostname, which our Received fields name: a
	// message that holds one has been through this gateway.
	Hostname string
}

// Policy decides with one snapshot. It is safe for concurrent use.
type Policy struct {
	p Parts
}

// New returns the policy for one snapshot.
func New(p Parts) *Policy { return &Policy{p: p} }

// Dir is the snapshot's directory.
func (p *Policy) Dir() *accounts.Directory { return p.p.Dir }

// Listener modes.
const (
	ModeMX         = "mx"
	ModeSubmission = "submission"
	ModeSMTPS      = "smtps"
)

// Conn is what the server knows about the client and the listener.
type Conn struct {
	IP       netip.Addr
	Helo     string
	AuthUser string // the account address after SMTP AUTH; "" if none
	TLS      bool
	// Mode is the listener's mode: mx (""), submission or smtps.
	Mode string
	// RequireTLS is the listener's require_tls.
	RequireTLS bool
	// Listener is the listener's configured name, for rules by listener.
	Listener string
	// At is when the transaction happens, for rules with time windows;
	// zero means now.
	At time.Time
	// Rates is the session's part in relay.rate_limits; nil counts
	// nothing (the explaining commands: route test, accounts check).
	Rates *ratelimit.Session
}

func (c Conn) guard() guard.Client {
	return guard.Client{IP: c.IP.Unmap(), Helo: c.Helo, AuthUser: c.AuthUser, TLS: c.TLS, Listener: c.Listener, At: c.At}
}

func (c Conn) needsAuth() bool { return c.Mode == ModeSubmission || c.Mode == ModeSMTPS }

// Decision is the outcome of one stage. The embedded Verdict holds the
// action, the reply (Code, Enhanced, Text: filled for acceptances too),
// the rule that decided and the reason.
type Decision struct {
	Stage string
	Arg   string
	guard.Verdict
	// Target is an accepted recipient after alias resolution.
	Target string
	// Rewritten is the address after the receive-time rewrite: the
	// recipient at RCPT, the sender at MAIL.
	Rewritten string
	// From is the sender after the receive-time rewrite, at RCPT.
	From string
	// Route is where delivery will take an accepted recipient (table
	// match, without DNS); RouteErr says why it cannot be routed.
	Route    *routing.Decision
	RouteErr error
	// Key is the mailbox key of an accepted recipient: two recipients
	// with one key are one mailbox and get one copy.
	Key string
}

// Source is the message source the rewrite rules and the line-ending
// policy key on.
func (p *Policy) Source(c Conn) rewrite.Source {
	switch {
	case c.AuthUser != "":
		return rewrite.SourceAuthenticated
	case p.p.Guard.Inner(c.IP.Unmap()):
		return rewrite.SourceInner
	}
	return rewrite.SourceInternet
}

// UsualSource is the source mail for rcpt comes from when no client is
// named (route test without --client): the internet for our addresses
// (mail arriving for the inner server), the inner networks for others
// (mail the inner server sends out).
func (p *Policy) UsualSource(rcpt string) rewrite.Source {
	if res, err := p.p.Dir.Lookup(rcpt); err == nil && res.Ours() {
		return rewrite.SourceInternet
	}
	return rewrite.SourceInner
}

func decided(stage, arg string, v guard.Verdict, code int, enhanced, text string) Decision {
	if v.Accepted() && v.Code == 0 {
		v.Code, v.Enhanced, v.Text = code, enhanced, text
	}
	return Decision{Stage: stage, Arg: arg, Verdict: v}
}

func refusal(code int, enhanced, text, rule, reason string) guard.Verdict {
	a := guard.Reject
	if code < 500 {
		a = guard.TempFail
	}
	return guard.Verdict{Action: a, Reply: smtpd.R(code, enhanced, text), Rule: rule, Reason: reason}
}

// Connect decides the greeting: a deny rule that names only networks
// refuses here (554 5.7.1), like Postfix's client restrictions.
func (p *Policy) Connect(c Conn) Decision {
	return decided("connect", c.IP.String(), p.p.Guard.CheckConnect(c.guard()), 220, "", "ESMTP")
}

// Helo decides HELO/EHLO. Any name is accepted, a missing one too (E-Post
// answers a bare HELO with 250; the client's address stands in for it in
// Received); only a name that could not be written into a header is
// refused.
func (p *Policy) Helo(c Conn, name string) Decision {
	for _, ch := range []byte(name) {
		if ch < ' ' || ch == 0x7f {
			return decided("helo", name, refusal(501, "5.5.4", "Invalid HELO name", "builtin:helo",
				fmt.Sprintf("HELO name %q has control characters", name)), 0, "", "")
		}
	}
	return decided("helo", name, guard.Verdict{Action: guard.Accept, Rule: "builtin:helo",
		Reason: "any HELO name is accepted, none too; it is recorded in Received"}, 250, "", "Hello")
}

// AuthOffered reports whether AUTH is offered (and allowed) on this
// connection: under TLS, or without it where relay.auth.allow_insecure
// says so and the listener does not require TLS.
func (p *Policy) AuthOffered(c Conn) bool {
	return c.TLS || (p.p.AllowInsecureAuth && !c.RequireTLS && c.Mode != ModeSMTPS)
}

// Auth decides an AUTH attempt for user, everything but the password:
// relay/auth checks that. It is what a dry run shows and what the live
// server answers before the exchange.
func (p *Policy) Auth(c Conn, user string) Decision {
	if !p.AuthOffered(c) {
		return decided("auth", user, refusal(523, "5.7.10", "TLS is required", "builtin:auth-tls",
			"AUTH is offered only under TLS (relay.auth.allow_insecure is off or the listener requires TLS)"), 0, "", "")
	}
	a := p.p.Dir.Account(user)
	reason := ""
	switch {
	case a == nil:
		reason = "no such account"
	case a.Flags&accounts.Disabled != 0:
		reason = "the account is disabled"
	case a.Secret == "":
		reason = "the account has no SMTP AUTH secret"
	}
	if reason != "" {
		return decided("auth", user, refusal(535, "5.7.8", "Authentication credentials invalid", "builtin:auth", reason), 0, "", "")
	}
	d := decided("auth", user, guard.Verdict{Action: guard.Accept, Rule: "builtin:auth",
		Reason: "accepted with the right password"}, 235, "2.7.0", "Authentication succeeded")
	d.Rewritten = a.Address()
	return d
}
