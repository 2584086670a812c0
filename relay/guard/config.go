package guard

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the relay policy section (embedded by relay as relay.guard).
type Config struct {
	// InnerNetworks are the inner mail server(s) and other hosts trusted to
	// relay anywhere without SMTP AUTH.
	InnerNetworks []string `koanf:"inner_networks"`
	// Rules are checked in order before the built-in policy; the first rule
	// that matches decides (E-Post's effect.dat).
	Rules []RuleConfig `koanf:"rules"`
	// AllowIPLiterals accepts recipients like user@[192.0.2.1]. They are
	// always foreign: only trusted clients may relay to them.
	AllowIPLiterals bool `koanf:"allow_ip_literals"`
	// ProtectedNeedAuth: protected names of our domains (postmaster@,
	// abuse@; accounts.protected) as sender only with SMTP AUTH from
	// outside the inner networks.
	ProtectedNeedAuth bool `koanf:"protected_need_auth"`
	// SpoofCheck refuses senders in our domains from clients that are
	// neither trusted nor authenticated.
	SpoofCheck bool `koanf:"spoof_check"`
	// SenderTrust is E-Post's sender trust level for authenticated users:
	// "any" (any sender), "envelope" (the login must own the envelope
	// sender) or "header" (also every header From address).
	SenderTrust string `koanf:"sender_trust"`
	// NullSender: "local_only" (MAIL FROM:<> only towards our domains, from
	// anyone: E-Post's "#<> default") or "trusted" (also towards foreign
	// domains from trusted clients, e.g. the inner server's own bounces).
	NullSender string `koanf:"null_sender"`
}

// RuleConfig is one ordered rule. Every condition that is set must match;
// an empty list matches everything.
type RuleConfig struct {
	// Name appears in logs and in `relay test`; default "rules[N]".
	Name string `koanf:"name"`
	// Action: allow (trusted: may relay, our-domain sender checks waived),
	// deny (550 5.7.1), require_auth (relay only after SMTP AUTH, even from
	// inner networks: E-Post's "default", "norelay,2") or no_relay (no relay
	// at all, even after SMTP AUTH: E-Post's "norelay", "norelay,0").
	Action string `koanf:"action"`
	// Networks: client addresses or CIDR blocks.
	Networks []string `koanf:"networks"`
	// Auth: "any" (default), "none" (unauthenticated clients only), or
	// login patterns ("*" is any authenticated user).
	Auth []string `koanf:"auth"`
	// Senders and Recipients: *, <> (null sender), user@domain,
	// prefix*@domain, *@domain, and *@*.domain (subdomains only).
	Senders    []string `koanf:"senders"`
	Recipients []string `koanf:"recipients"`
	// Listeners: the names of the listeners (relay.listeners[].name) the
	// connection may have arrived on, e.g. one per network interface.
	Listeners []string `koanf:"listeners"`
	// Times: weekly windows in the gateway's local time, "[DAYS]
	// [HH:MM-HH:MM]" like "Mon-Fri 08:30-17:15".
	Times []string `koanf:"times"`
	// Message replaces the default refusal text of a deny rule.
	Message string `koanf:"message"`
}

// Sender trust levels.
const (
	TrustAny      = "any"
	TrustEnvelope = "envelope"
	TrustHeader   = "header"
)

// Null sender policies.
const (
	NullLocalOnly = "local_only"
	NullTrusted   = "trusted"
)

// DefaultConfig is secure by default: no trusted networks, protected names
// and our domains need AUTH, the login must own the envelope sender, null
// sender only towards our domains.
func DefaultConfig() Config {
	return Config{
		ProtectedNeedAuth: true,
		SpoofCheck:        true,
		SenderTrust:       TrustEnvelope,
		NullSender:        NullLocalOnly,
	}
}

// Validate reports every problem; each message starts with its key path
// relative to the section.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

type ruleAction uint8

const (
	actAllow ruleAction = iota
	actDeny
	actRequireAuth
	actNoRelay
)

var ruleActions = map[string]ruleAction{
	"allow": actAllow, "deny": actDeny, "require_auth": actRequireAuth, "no_relay": actNoRelay,
}

type authKind uint8

const (
	authAny authKind = iota
	authNone
	authUsers
)

type rule struct {
	name       string
	action     ruleAction
	networks   networkList
	auth       authKind
	users      patternList
	senders    patternList
	recipients patternList
	listeners  map[string]bool // nil: any listener
	times      windowList
	message    string
}

type compiled struct {
	inner       networkList
	rules       []rule
	ipLiterals  bool
	protected   bool
	spoof       bool
	senderTrust string
	nullSender  string
}

func compile(c Config) (*compiled, error) {
	var errs []error
	out := &compiled{
		ipLiterals:  c.AllowIPLiterals,
		protected:   c.ProtectedNeedAuth,
		spoof:       c.SpoofCheck,
		senderTrust: c.SenderTrust,
		nullSender:  c.NullSender,
	}
	var e []error
	out.inner, e = parseNetworks("inner_networks", c.InnerNetworks)
	errs = append(errs, e...)
	switch c.SenderTrust {
	case TrustAny, TrustEnvelope, TrustHeader:
	default:
		errs = append(errs, fmt.Errorf("sender_trust: %q is not a trust level (any, envelope, header)", c.SenderTrust))
	}
	switch c.NullSender {
	case NullLocalOnly, NullTrusted:
	default:
		errs = append(errs, fmt.Errorf("null_sender: %q is not a null sender policy (local_only, trusted)", c.NullSender))
	}
	names := map[string]int{}
	for i, rc := range c.Rules {
		r, e := compileRule(fmt.Sprintf("rules[%d]", i), rc)
		errs = append(errs, e...)
		if j, dup := names[r.name]; dup {
			errs = append(errs, fmt.Errorf("rules[%d].name: %q is already the name of rules[%d]", i, r.name, j))
		}
		names[r.name] = i
		out.rules = append(out.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func compileRule(key string, rc RuleConfig) (rule, []error) {
	var errs []error
	bad := func(k, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, a...)))
	}
	r := rule{name: rc.Name, message: rc.Message}
	if r.name == "" {
		r.name = key
	} else if strings.HasPrefix(r.name, "builtin:") {
		bad("name", "%q: the prefix builtin: is reserved for the built-in checks", r.name)
	}
	act, ok := ruleActions[rc.Action]
	switch {
	case rc.Action == "":
		bad("action", "missing (allow, deny, require_auth, no_relay)")
	case !ok:
		bad("action", "%q is not an action (allow, deny, require_auth, no_relay)", rc.Action)
	}
	r.action = act
	var e []error
	r.networks, e = parseNetworks(key+".networks", rc.Networks)
	errs = append(errs, e...)
	switch {
	case len(rc.Auth) == 0 || len(rc.Auth) == 1 && rc.Auth[0] == "any":
		r.auth = authAny
	case len(rc.Auth) == 1 && rc.Auth[0] == "none":
		r.auth = authNone
	default:
		r.auth = authUsers
		for i, a := range rc.Auth {
			if a == "any" || a == "none" {
				bad(fmt.Sprintf("auth[%d]", i), "%q must stand alone", a)
			}
		}
		r.users, e = compilePatterns(key+".auth", rc.Auth)
		errs = append(errs, e...)
	}
	errs = append(errs, compileConditions(key, rc, &r)...)
	r.senders, e = compilePatterns(key+".senders", rc.Senders)
	errs = append(errs, e...)
	r.recipients, e = compilePatterns(key+".recipients", rc.Recipients)
	errs = append(errs, e...)
	// "*" among the patterns is the same as no condition; normalizing it
	// away lets MAIL tell recipient-dependent rules apart.
	r.senders, r.recipients = r.senders.orAll(), r.recipients.orAll()
	for _, p := range r.recipients {
		if p.null {
			bad("recipients", "<> is the null sender; it is never a recipient")
			break
		}
	}
	if len(rc.Message) > 400 {
		bad("message", "longer than 400 characters")
	}
	for _, ch := range rc.Message {
		if ch < 0x20 || ch > 0x7e {
			bad("message", "only printable ASCII can be sent in an SMTP reply (found %q)", ch)
			break
		}
	}
	if rc.Message != "" && act != actDeny {
		bad("message", "only a deny rule sends a message")
	}
	// An allow rule that names no client and no recipient trusts whoever
	// writes the right MAIL FROM: that is an open relay.
	if ok && act == actAllow && r.auth != authUsers && len(r.recipients) == 0 {
		switch {
		case len(r.networks) == 0 && len(rc.Listeners) > 0:
			// Relay permission by interface (one listener per
			// interface): the relay checks that each listener is bound
			// to one address (ListenerRefs).
		case len(r.networks) == 0:
			bad("action", "allow without networks, listeners, auth users or recipients opens the relay to anyone who forges the sender")
		case r.networks.everyone():
			bad("networks", "allow for every address (/0) without auth users or recipients is an open relay")
		}
	}
	return r, errs
}
