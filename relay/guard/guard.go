// Package guard owns the relay policy: who may send what to whom through the
// gateway, decided without I/O from the client, the envelope, the ordered
// allow/deny rules and the accounts directory, plus the effect.dat importer.
//
// # Order of the checks
//
// MAIL FROM (CheckMail): address syntax (501 5.1.7); the ordered rules that
// do not depend on the recipient (a deny answers 550 5.7.1 here); a sender
// whose account is disabled (553 5.7.1); for an authenticated client with
// sender_trust envelope or header, the login must own the sender, as the
// account itself or an alias resolving to it (553 5.7.1); a protected name
// (postmaster@, abuse@ of our domains) from a client that is neither
// trusted nor authenticated (553 5.7.1); any other sender in our domains
// from such a client, the spoofing check (553 5.7.1). 553 ("mailbox name not
// allowed") is used for every sender refusal so that a client can tell them
// from recipient refusals (550). The null sender is accepted here and
// restricted at RCPT.
//
// RCPT TO (CheckRcpt, and Recheck after the rewrite): syntax (501 5.1.3);
// relay tricks (550 5.7.1): a source route, a local part hiding another
// destination with '@' (also from a quoted "a@b"@ours, which go-smtp hands
// over unquoted), '%' or '!', an address literal unless allow_ip_literals;
// then the first matching rule; then the sender checks again with the
// trust that rule gives; the null sender towards a foreign domain (550
// 5.7.1); our domains: an unknown account 550 5.1.1 (refused at RCPT, so no
// backscatter), a disabled one 550 5.2.1, otherwise accepted from anyone;
// foreign domains: relay needs a trusted client (inner network, SMTP AUTH or
// an allow rule), otherwise 554 5.7.1; an outbound-blocked account (as
// sender or as login) may not send outside, 550 5.7.1.
//
// # Rules and trust
//
// A rule matches when every condition it sets matches: client network,
// authentication (any, none, login patterns), sender, recipient. The first
// matching rule decides: allow trusts the client for this recipient (relay,
// our-domain senders); deny refuses even a trusted client; require_auth
// withdraws the inner-network trust, so only SMTP AUTH lets the client
// relay; no_relay forbids relaying even after SMTP AUTH. Without a match the
// built-in policy trusts inner_networks and authenticated clients. Mail to
// our existing accounts is accepted from anyone; rules only refuse it with
// deny. No rule opens a relay trick, an unknown recipient, a disabled
// account, an outbound-blocked account or the null sender.
//
// At MAIL a rule that names recipients cannot be decided yet; if such a rule
// could trust the client, the sender checks wait for RCPT, which always
// runs the whole policy again.
//
// # effect.dat
//
// ImportEffectDat converts E-Post's "マシンごとの中継" file (effect.dat): one
// entry a line, "PATTERN [KEYWORD]", read top-down, the first match deciding (FAQ
// faq04-01, faq10-60, faq01-09, faq01-99; the SPA-MS manual of the same
// engine). The mapping to guard rules:
//
//	PATTERN                                  condition
//	192.168.0.10, 2001:db8::1                networks: [that address]
//	192.168.1.0/28                           networks: [that block]
//	192.168.*.*  (trailing * octets)         networks: [192.168.0.0/16]
//	*.*.*.*, *                               no condition (every client, IPv6 too)
//	user@domain.jp, *@domain.jp              senders: [the pattern]
//	domain.jp                                senders: ["*@domain.jp"] (E-Post
//	                                         matches it against the envelope sender)
//	#<>                                      the null sender
//	#blank                                   MAIL FROM: with no address at all
//
//	KEYWORD                                  action
//	(none), true                             allow
//	false                                    deny
//	default, norelay,2                       require_auth (relay only after SMTP AUTH)
//	norelay, norelay,0                       no_relay (no relay even after SMTP AUTH)
//	only                                     allow, then no_relay for every other
//	                                         client; later lines are never reached
//
// A bare "norelay" line is a no_relay rule for every client: E-Post's final
// norelay line. Lines that cannot be carried over faithfully are reported,
// never guessed: an allow by sender alone or for every client (an open relay,
// which Validate refuses), "#<> true" (bounces relayed for anyone), anything
// for "#blank" but false, "norelay,1", partial wildcards like 192.168.*.5, and
// lines after "only". "#<> default" and "#blank false" need no rule: the
// built-in null_sender: local_only and the SMTP parser already do that. Other
// lines starting with '#' are taken as comments and carried over as YAML
// comments.
package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
)

// Client is what the guard knows about the SMTP client.
type Client struct {
	IP       netip.Addr
	Helo     string
	AuthUser string // the account address after SMTP AUTH; "" if none
	TLS      bool
	// Listener is the name of the listener the connection arrived on
	// (relay.listeners[].name); "" for an unnamed one.
	Listener string
	// At is when the command is decided; zero means the guard's clock.
	At time.Time
}

// Guard applies one compiled Config; build a new one on reload.
type Guard struct {
	c   *compiled
	dir func() *accounts.Directory
	now func() time.Time
}

// New compiles cfg. dir returns the current directory; it is read once per
// check.
func New(cfg Config, dir func() *accounts.Directory) (*Guard, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return &Guard{c: c, dir: dir, now: time.Now}, nil
}

// SetClock replaces the clock that time conditions read (tests, dry runs).
func (g *Guard) SetClock(now func() time.Time) { g.now = now }

// Built-in check names, reported in Verdict.Rule.
const (
	ruleDirectory     = "builtin:directory"
	ruleSyntax        = "builtin:syntax"
	ruleRelayTrick    = "builtin:relay-trick"
	ruleIPLiteral     = "builtin:ip-literal"
	ruleNullSender    = "builtin:null-sender"
	ruleDisabledFrom  = "builtin:disabled-sender"
	ruleSenderLogin   = "builtin:sender-login"
	ruleProtected     = "builtin:protected-sender"
	ruleSpoof         = "builtin:spoof"
	ruleSender        = "builtin:sender"
	ruleUnknownRcpt   = "builtin:unknown-recipient"
	ruleDisabledRcpt  = "builtin:disabled-recipient"
	ruleLocalRcpt     = "builtin:local-recipient"
	ruleRelay         = "builtin:relay"
	ruleInner         = "builtin:inner-network"
	ruleAuthenticated = "builtin:authenticated"
	ruleOutbound      = "builtin:outbound-blocked"
	ruleHeaderFrom    = "builtin:header-from"
)

// check holds what one decision needs.
type check struct {
	g      *compiled
	d      *accounts.Directory
	c      Client
	inner  bool
	authed bool
	login  *accounts.Account
	user   envAddr   // the login as an address, for auth patterns
	at     time.Time // for time conditions
}

func (g *Guard) newCheck(c Client) (*check, *Verdict) {
	d := g.dir()
	if d == nil {
		v := refuse(451, "4.3.0", "Service not ready, try again later", ruleDirectory, "the accounts directory is not loaded")
		return nil, &v
	}
	k := &check{g: g.c, d: d, c: c, inner: g.c.inner.has(c.IP), at: c.At}
	if k.at.IsZero() {
		k.at = g.now()
	}
	if c.AuthUser != "" {
		// A login whose account vanished or was disabled since AUTH no
		// longer vouches for anything.
		if a := d.Account(c.AuthUser); a != nil && a.Flags&accounts.Disabled == 0 {
			k.authed, k.login = true, a
			k.user, _ = parseAddr(c.AuthUser)
		}
	}
	return k, nil
}

// parseAddr splits and normalizes an envelope address; "" is the null
// sender.
func parseAddr(s string) (envAddr, error) {
	if s == "" {
		return envAddr{null: true}, nil
	}
	l, d, err := addr.Parse(s)
	if err != nil {
		return envAddr{raw: s}, err
	}
	return envAddr{raw: s, local: l, folded: addr.FoldLocal(l), domain: d}, nil
}

// outcome is the trust one rule (or the built-in policy) gives.
type outcome struct {
	r        *rule // nil: built-in
	mayRelay bool  // foreign recipients allowed
	trusted  bool  // our-domain sender checks waived
	source   string
}

func (k *check) outcomeOf(r *rule) outcome {
	if r == nil {
		switch {
		case k.inner:
			return outcome{mayRelay: true, trusted: true, source: ruleInner}
		case k.authed:
			return outcome{mayRelay: true, trusted: true, source: ruleAuthenticated}
		}
		return outcome{source: ruleRelay}
	}
	o := outcome{r: r, source: r.name}
	switch r.action {
	case actAllow:
		o.mayRelay, o.trusted = true, true
	case actRequireAuth:
		o.mayRelay, o.trusted = k.authed, k.authed
	case actNoRelay:
		o.trusted = k.authed
	}
	return o
}

func (k *check) matchClient(r *rule) bool {
	if !r.networks.contains(k.c.IP) || !k.matchWhereWhen(r) {
		return false
	}
	switch r.auth {
	case authNone:
		return !k.authed
	case authUsers:
		return k.authed && r.users.match(k.user)
	}
	return true
}

// firstRule returns the first rule matching the whole envelope, or nil.
func (k *check) firstRule(from, rcpt envAddr) *rule {
	for i := range k.g.rules {
		r := &k.g.rules[i]
		if k.matchClient(r) && r.senders.match(from) && r.recipients.match(rcpt) {
			return r
		}
	}
	return nil
}

func denyVerdict(r *rule, what string) Verdict {
	text := r.message
	if text == "" {
		text = "Refused by local policy"
	}
	return refuse(550, "5.7.1", text, r.name, what+" denied by rule "+r.name)
}

// CheckMail decides MAIL FROM.
func (g *Guard) CheckMail(c Client, from string) Verdict {
	k, v := g.newCheck(c)
	if v != nil {
		return *v
	}
	f, err := parseAddr(from)
	if err != nil || strings.HasPrefix(from, "@") {
		return refuse(501, "5.1.7", "Bad sender address syntax", ruleSyntax, fmt.Sprintf("sender %q: %v", from, errOr(err, "source route")))
	}
	// Rules that do not depend on the recipient decide now, unless a
	// recipient-dependent rule before them that is not a deny may match
	// first.
	var decisive *rule
	mayDiffer, maybeTrusted := false, false
	for i := range k.g.rules {
		r := &k.g.rules[i]
		if !k.matchClient(r) || !r.senders.match(f) {
			continue
		}
		if len(r.recipients) > 0 {
			mayDiffer = mayDiffer || r.action != actDeny
			maybeTrusted = maybeTrusted || k.outcomeOf(r).trusted
			continue
		}
		decisive = r
		break
	}
	if decisive != nil && decisive.action == actDeny {
		if !mayDiffer {
			return denyVerdict(decisive, "sender "+f.String())
		}
		decisive = nil
	}
	o := k.outcomeOf(decisive)
	o.trusted = o.trusted || maybeTrusted
	if v, bad := k.senderChecks(f, o); bad {
		return v
	}
	if f.null {
		if k.g.nullSender == NullLocalOnly {
			return accept(ruleNullSender, "null sender: only recipients in our domains will be accepted")
		}
		return accept(ruleNullSender, "null sender: foreign recipients only from trusted clients")
	}
	rule := o.source
	if rule == ruleRelay {
		rule = ruleSender
	}
	return accept(rule, "sender "+f.String()+" accepted ("+o.describe(k)+")")
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func (o outcome) describe(k *check) string {
	switch {
	case o.r != nil && o.r.action == actAllow:
		return "trusted by rule " + o.r.name
	case o.r != nil && o.r.action == actRequireAuth && !k.authed:
		return "rule " + o.r.name + ": relay needs SMTP AUTH"
	case o.r != nil && o.r.action == actNoRelay:
		return "rule " + o.r.name + ": no relay"
	case o.source == ruleInner:
		return "client in inner_networks"
	case k.authed:
		return "authenticated as " + k.login.Address()
	}
	return "untrusted client"
}

// senderChecks are the refusals that depend on the sender and the trust
// the client has. bad is true when v refuses.
func (k *check) senderChecks(f envAddr, o outcome) (v Verdict, bad bool) {
	if f.null {
		return Verdict{}, false
	}
	res, err := k.d.Lookup(f.raw)
	if err != nil {
		return refuse(451, "4.3.0", "Temporary lookup failure", ruleDirectory, fmt.Sprintf("sender %s: %v", f, err)), true
	}
	if a := res.Account; res.Ours() && a != nil && a.Flags&accounts.Disabled != 0 {
		return refuse(553, "5.7.1", "Sender account is disabled", ruleDisabledFrom, "sender "+f.String()+" resolves to the disabled account "+a.Address()), true
	}
	if k.authed && k.g.senderTrust != TrustAny && res.Account != k.login {
		return refuse(553, "5.7.1", fmt.Sprintf("Sender <%s> does not belong to the authenticated user", f), ruleSenderLogin,
			fmt.Sprintf("sender_trust %s: login %s does not own sender %s", k.g.senderTrust, k.login.Address(), f)), true
	}
	if !res.Ours() || o.trusted {
		return Verdict{}, false
	}
	if res.Protected && k.g.protected {
		return refuse(553, "5.7.1", fmt.Sprintf("Sender <%s> requires authentication", f), ruleProtected,
			"protected sender "+f.String()+" from an untrusted, unauthenticated client"), true
	}
	if k.g.spoof {
		return refuse(553, "5.7.1", fmt.Sprintf("Sender <%s> in a local domain requires authentication", f), ruleSpoof,
			"sender "+f.String()+" is in our domain "+f.domain+" but the client is untrusted and unauthenticated"), true
	}
	return Verdict{}, false
}

// CheckRcpt decides RCPT TO, running the whole policy (sender included).
func (g *Guard) CheckRcpt(c Client, from, rcpt string) Verdict {
	k, v := g.newCheck(c)
	if v != nil {
		return *v
	}
	if g.IsPostmaster(rcpt) {
		return accept(rulePostmaster, "postmaster is always accepted (RFC 5321 §4.5.1)")
	}
	return k.rcpt(from, rcpt)
}

// Recheck decides a recipient produced by the rewrite exactly like
// CheckRcpt: a rewrite never opens a relay.
func (g *Guard) Recheck(c Client, from, rewrittenRcpt string) Verdict {
	v := g.CheckRcpt(c, from, rewrittenRcpt)
	v.Reason = "after rewrite to " + rewrittenRcpt + ": " + v.Reason
	return v
}

func (k *check) rcpt(from, rcpt string) Verdict {
	f, err := parseAddr(from)
	if err != nil || strings.HasPrefix(from, "@") {
		return refuse(501, "5.1.7", "Bad sender address syntax", ruleSyntax, fmt.Sprintf("sender %q: %v", from, errOr(err, "source route")))
	}
	t, v, bad := k.parseRcpt(rcpt)
	if bad {
		return v
	}
	r := k.firstRule(f, t)
	if r != nil && r.action == actDeny {
		return denyVerdict(r, "recipient "+t.String())
	}
	o := k.outcomeOf(r)
	if v, bad := k.senderChecks(f, o); bad {
		return v
	}
	res, err := k.d.Lookup(t.raw)
	if err != nil {
		return refuse(451, "4.3.0", "Temporary lookup failure", ruleDirectory, fmt.Sprintf("recipient %s: %v", t, err))
	}
	if f.null && !res.Ours() && (k.g.nullSender == NullLocalOnly || !o.mayRelay) {
		return refuse(550, "5.7.1", "Null sender is accepted only for local recipients", ruleNullSender,
			"null sender towards the foreign recipient "+t.String())
	}
	if res.Ours() {
		return k.local(t, res, o)
	}
	if !o.mayRelay {
		return refuse(554, "5.7.1", fmt.Sprintf("Relay access denied for <%s>", t), o.source,
			"foreign recipient "+t.String()+": "+o.describe(k))
	}
	if v, bad := k.outbound(f, t); bad {
		return v
	}
	return accept(o.source, "foreign recipient "+t.String()+": "+o.describe(k))
}

// parseRcpt checks the recipient's syntax and refuses relay tricks.
func (k *check) parseRcpt(rcpt string) (envAddr, Verdict, bool) {
	trick := func(why string) (envAddr, Verdict, bool) {
		return envAddr{}, refuse(550, "5.7.1", "Routing in recipient addresses is not accepted", ruleRelayTrick,
			fmt.Sprintf("recipient %q: %s", rcpt, why)), true
	}
	if strings.HasPrefix(rcpt, "@") {
		return trick("source route")
	}
	local, domain, ok := addr.Split(rcpt)
	if !ok {
		return envAddr{}, refuse(501, "5.1.3", "Bad recipient address syntax", ruleSyntax,
			fmt.Sprintf("recipient %q is not local@domain", rcpt)), true
	}
	if i := strings.IndexAny(local, "@%!"); i >= 0 {
		return trick(fmt.Sprintf("'%c' in the local part hides another destination", local[i]))
	}
	t, err := parseAddr(rcpt)
	if err != nil {
		return envAddr{}, refuse(501, "5.1.3", "Bad recipient address syntax", ruleSyntax,
			fmt.Sprintf("recipient %q: %v", rcpt, err)), true
	}
	if addr.IsDomainLiteral(domain) && !k.g.ipLiterals {
		return envAddr{}, refuse(550, "5.7.1", "Address literals are not accepted", ruleIPLiteral,
			fmt.Sprintf("recipient %q: address literal (allow_ip_literals is off)", rcpt)), true
	}
	return t, Verdict{}, false
}

func (k *check) local(t envAddr, res accounts.Result, o outcome) Verdict {
	if a := res.Account; a != nil && a.Flags&accounts.Disabled != 0 {
		return refuse(550, "5.2.1", "Mailbox disabled", ruleDisabledRcpt,
			"recipient "+t.String()+" resolves to the disabled account "+a.Address())
	}
	if !res.Exists() {
		return refuse(550, "5.1.1", fmt.Sprintf("No such user <%s>", t), ruleUnknownRcpt,
			"recipient "+t.String()+" is not an account or alias of "+res.Domain.Name)
	}
	matched := ""
	if o.r != nil {
		matched = "; rule " + o.r.name + " matched"
	}
	// Concatenated, not fmt.Sprintf: every accepted recipient pays for it.
	return accept(ruleLocalRcpt, "local recipient "+t.String()+" ("+res.Kind.String()+", delivered to "+res.Target+")"+matched)
}

// outbound refuses mail to a foreign recipient from an outbound-blocked
// account, whether it shows as the sender or as the login.
func (k *check) outbound(f, t envAddr) (Verdict, bool) {
	var blocked *accounts.Account
	if k.login != nil && k.login.Flags&accounts.OutboundBlocked != 0 {
		blocked = k.login
	}
	if !f.null && blocked == nil {
		if res, err := k.d.Lookup(f.raw); err == nil && res.Ours() && res.Flags()&accounts.OutboundBlocked != 0 {
			blocked = res.Account
		}
	}
	if blocked == nil || k.d.OutboundAllowed(blocked, t.raw) {
		return Verdict{}, false // not blocked, or the account's allow list names t
	}
	return refuse(550, "5.7.1", "This account may not send mail outside the organisation", ruleOutbound,
		fmt.Sprintf("account %s is outbound_blocked; recipient %s is outside our domains", blocked.Address(), t)), true
}

// CheckHeaderFrom decides the header From addresses (bare addr-specs) at
// DATA, for sender_trust header: each must belong to the login. For other
// trust levels and unauthenticated clients it accepts. headerFrom reads
// the addresses, which means parsing the header: it is called only when
// the check needs them.
func (g *Guard) CheckHeaderFrom(c Client, from string, headerFrom func() []string) Verdict {
	k, v := g.newCheck(c)
	if v != nil {
		return *v
	}
	if g.c.senderTrust != TrustHeader {
		return accept(ruleHeaderFrom, "header From not checked: sender_trust is "+g.c.senderTrust)
	}
	if !k.authed {
		return accept(ruleHeaderFrom, "header From not checked: client not authenticated")
	}
	addrs := headerFrom()
	if len(addrs) == 0 {
		return refuse(550, "5.7.1", "The message has no From address", ruleHeaderFrom,
			"sender_trust header: no header From address (envelope sender <"+from+">)")
	}
	for _, h := range addrs {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "<"), ">")
		res, err := k.d.Lookup(h)
		if err != nil || res.Account != k.login {
			return refuse(550, "5.7.1", fmt.Sprintf("Header From <%s> does not belong to the authenticated user", h), ruleHeaderFrom,
				fmt.Sprintf("sender_trust header: login %s does not own header From %s", k.login.Address(), h))
		}
	}
	return accept(ruleHeaderFrom, "every header From belongs to "+k.login.Address())
}

// Inner reports whether ip is in the trusted inner networks: the relay
// uses it to tell an "inner" message source from an "internet" one.
func (g *Guard) Inner(ip netip.Addr) bool { return g.c.inner.has(ip) }
