package routing

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/secretfile"
)

// route is one compiled rule: a table entry, the smart host or the MX
// default.
type route struct {
	rule   string // for Decision.Rule
	label  string // for reasons: `route "inner"`, `routes[3]`, ...
	rcpt   matcher
	sender matcher // kind matchAny: no sender condition
	spec   targetSpec
	tls    TLSPolicy
	auth   *Auth
	max    int
	rw     string
	// received is what the route's copy keeps of the inner Received
	// fields.
	received ReceivedMode
}

// Router picks the next hop for each recipient. It is immutable once
// built; a configuration reload builds a new one.
type Router struct {
	byAddress  map[string][]*route
	byDomain   map[string][]*route
	byWildcard map[string][]*route // keyed by the suffix after "*."
	catchAll   []*route            // domain "*" with a sender condition
	fallback   *route              // smart host, or the MX default
	resolver   *Resolver
	hosts      hostsTable
	self       selfSet
}

// New builds a router. It validates cfg, reads the hosts file and AUTH
// passwords, and refuses any route or smart host whose target is this
// gateway (its host names or listen addresses in self, plus cfg.Self).
// Every problem is reported, each starting with its key path.
func New(cfg Config, self Self) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hosts, err := loadHosts(cfg.Hosts, cfg.HostsFile)
	if err != nil {
		return nil, err
	}
	selves, err := newSelfSet(self, cfg.Self)
	if err != nil {
		return nil, fmt.Errorf("self: %v", err)
	}
	resolver, err := newResolver(cfg.DNS, hosts)
	if err != nil {
		return nil, err
	}
	r := &Router{
		byAddress:  map[string][]*route{},
		byDomain:   map[string][]*route{},
		byWildcard: map[string][]*route{},
		resolver:   resolver,
		hosts:      hosts,
		self:       selves,
	}
	var errs []error
	for i, rc := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		rule, label := key, key
		if rc.Name != "" {
			rule, label = rc.Name, fmt.Sprintf("route %q", rc.Name)
		}
		rt, problems := r.compile(key, label, rc.TargetConfig)
		errs = append(errs, problems...)
		rt.rcpt, rt.sender, _ = rc.conditions()
		rt.rule, rt.label = rule, label
		switch rt.rcpt.kind {
		case matchAddress:
			r.byAddress[rt.rcpt.value] = append(r.byAddress[rt.rcpt.value], rt)
		case matchDomain:
			r.byDomain[rt.rcpt.value] = append(r.byDomain[rt.rcpt.value], rt)
		case matchWildcard:
			r.byWildcard[rt.rcpt.value] = append(r.byWildcard[rt.rcpt.value], rt)
		default:
			r.catchAll = append(r.catchAll, rt)
		}
	}
	if cfg.SmartHost.isZero() {
		r.fallback = &route{spec: targetSpec{kind: KindMX}, tls: TLSPolicy{Mode: TLSOpportunistic}, received: ReceivedKeep}
	} else {
		rt, problems := r.compile("smart_host", "the smart host", cfg.SmartHost)
		errs = append(errs, problems...)
		rt.rule, rt.label = "smart_host", "the smart host"
		r.fallback = rt
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// compile turns a validated TargetConfig into a route: it reads the AUTH
// password and checks that no static target is this gateway.
func (r *Router) compile(key, label string, tc TargetConfig) (*route, []error) {
	spec, _ := parseTargets(tc.Targets)
	mode, _ := parseTLSMode(tc.TLS)
	recv, _ := parseReceivedMode(tc.Received)
	rt := &route{spec: spec, max: tc.MaxConnections, rw: tc.Rewrite, received: recv}
	if spec.kind != KindDir {
		rt.tls = TLSPolicy{Mode: mode, CAFile: tc.TLSCAFile, ServerName: tc.TLSServerName}
	}
	var errs []error
	if tc.Auth != (AuthConfig{}) {
		mech, _ := parseMechanism(tc.Auth.Mechanism)
		pw, err := readPassword(tc.Auth)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.auth: %v", key, err))
		}
		rt.auth = &Auth{Mechanism: mech, Username: tc.Auth.Username, Password: pw, AllowPlaintext: tc.Auth.AllowPlaintext}
	}
	for i, hp := range spec.hosts {
		if why := r.self.which(hp.host, hp.port, r.staticAddrs(hp)); why != "" {
			errs = append(errs, fmt.Errorf("%s.targets[%d]: %s sends mail to %s, which is this gateway (%s): the mail would loop",
				key, i, label, hp, why))
		}
	}
	return rt, errs
}

// staticAddrs are the addresses of a target known without DNS.
func (r *Router) staticAddrs(hp hostPort) []netip.Addr {
	switch {
	case hp.ip.IsValid():
		return []netip.Addr{hp.ip}
	case r.hosts[hp.host] != nil:
		return slices.Clone(r.hosts[hp.host])
	case hp.host == "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	return nil
}

// readPassword reads the AUTH secret. A password file readable by every
// user is refused: it would leak the relay's credentials.
func readPassword(a AuthConfig) (string, error) {
	if a.PasswordEnv != "" {
		pw, ok := os.LookupEnv(a.PasswordEnv)
		if !ok || pw == "" {
			return "", fmt.Errorf("password_env: environment variable %s is not set", a.PasswordEnv)
		}
		return pw, nil
	}
	pw, err := secretfile.Password(a.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password_file: %v", err)
	}
	return pw, nil
}

// Resolver returns the router's resolver (for re-resolving at send time).
func (r *Router) Resolver() *Resolver { return r.resolver }

// Route decides where mail for rcpt (from sender, "" for the null sender)
// goes: it matches the table, then resolves the next hops through the hosts
// override and DNS. Failures are *Error values with the SMTP reply to
// record; the Decision returned with a resolution failure still holds the
// rule, the reason and the hops looked up so far, for logs (no Key: it
// must not be delivered).
func (r *Router) Route(ctx context.Context, rcpt, sender string) (Decision, error) {
	d, domain, err := r.match(rcpt, sender)
	if err != nil {
		return Decision{}, err
	}
	if err := r.resolve(ctx, &d, domain); err != nil {
		return d, err
	}
	d.computeKey(domain)
	return d, nil
}

// Match is Route without DNS: the rule, targets, policy and reason, with
// addresses filled in only for IP literals and the hosts override, and no
// hops for MX decisions.
func (r *Router) Match(rcpt, sender string) (Decision, error) {
	d, domain, err := r.match(rcpt, sender)
	if err != nil {
		return Decision{}, err
	}
	d.computeKey(domain)
	return d, nil
}

func (r *Router) match(rcpt, sender string) (Decision, string, error) {
	local, domain, err := addr.Parse(rcpt)
	if err != nil {
		return Decision{}, "", permError(501, "5.1.3", "bad recipient address: %v", err)
	}
	key := addressKey(local, domain)
	var sDomain, sKey string
	if sl, sd, err := addr.Parse(sender); err == nil {
		sDomain, sKey = sd, addressKey(sl, sd)
	}
	rt := r.pick(domain, key, sDomain, sKey)
	// Every delivery and every RCPT asks this: the reason is joined
	// with +, which costs a third of fmt.Sprintf's reflection.
	reason := ""
	switch {
	case rt == nil:
		rt = r.fallback
		if rt.rule == "" {
			reason = "no route matches " + domain + ": delivery by DNS MX"
		} else {
			reason = "no route matches " + domain + ": the smart host takes it"
		}
	case rt.rcpt.kind == matchAddress:
		reason = "recipient address " + key + " matches " + rt.label + " (address " + rt.rcpt.String() + ")"
	default:
		reason = "recipient domain " + domain + " matches " + rt.label + " (domain " + rt.rcpt.String() + ")"
	}
	if rt.sender.kind != matchAny {
		reason += " and sender " + sKey + " matches its sender condition " + rt.sender.String()
	}
	d := Decision{
		Rule:           rt.rule,
		Kind:           rt.spec.kind,
		Dir:            rt.spec.dir,
		TLS:            rt.tls,
		MaxConnections: rt.max,
		Rewrite:        rt.rw,
		Received:       rt.received,
		Reason:         reason,
	}
	if rt.auth != nil {
		a := *rt.auth
		d.Auth = &a
	}
	for _, hp := range rt.spec.hosts {
		d.Hops = append(d.Hops, Hop{Host: hp.host, Port: hp.port, Addrs: r.staticAddrs(hp)})
	}
	return d, domain, nil
}

// pick returns the most specific route for a recipient, or nil. Tiers go
// from the most to the least specific recipient condition; within a tier
// the most specific matching sender condition wins, then the first route.
func (r *Router) pick(domain, key, sDomain, sKey string) *route {
	if rt := bestBySender(r.byAddress[key], sDomain, sKey); rt != nil {
		return rt
	}
	if rt := bestBySender(r.byDomain[domain], sDomain, sKey); rt != nil {
		return rt
	}
	if !addr.IsDomainLiteral(domain) {
		for i := 0; i < len(domain); i++ {
			if domain[i] == '.' {
				if rt := bestBySender(r.byWildcard[domain[i+1:]], sDomain, sKey); rt != nil {
					return rt
				}
			}
		}
	}
	return bestBySender(r.catchAll, sDomain, sKey)
}

func bestBySender(routes []*route, sDomain, sKey string) *route {
	var best *route
	bestScore := -1
	for _, rt := range routes {
		if rt.sender.kind != matchAny && (sKey == "" || !rt.sender.matches(sDomain, sKey)) {
			continue
		}
		if s := rt.sender.score(); s > bestScore {
			best, bestScore = rt, s
		}
	}
	return best
}
