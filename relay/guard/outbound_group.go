package guard

// The outbound rules' groups: who approves a group's requests (members,
// delegates, directory groups) and where its approval mail goes.

import (
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Group is a compiled group.
type Group struct {
	Name      string
	Members   []string // as configured
	Delegates []string
	// Notify is where the approval mail goes (Notify, or the plain
	// addresses among the members); DelegateNotify the delegates' plain
	// addresses, for when everyone in Notify is away.
	Notify         []string
	DelegateNotify []string
	Timeout        time.Duration
	OnTimeout      string

	members, delegates []principal
}

// principal is a member: an address pattern or a directory group.
type principal struct {
	pat addrPattern
	dn  string // set for ldap-group:DN
}

func compileGroup(key string, gc GroupConfig) (*Group, []error) {
	var errs []error
	bad := func(k, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, a...)))
	}
	if !groupNameRE.MatchString(gc.Name) {
		bad("name", "%q: give a name of letters, digits, '.', '_' and '-' (at most 64)", gc.Name)
	}
	g := &Group{Name: gc.Name, Members: gc.Members, Delegates: gc.Delegates, Timeout: gc.Timeout, OnTimeout: gc.OnTimeout}
	if g.Timeout == 0 {
		g.Timeout = DefaultApprovalTimeout
	}
	if g.Timeout < time.Minute {
		bad("timeout", "must be at least 1m, got %v", gc.Timeout)
	}
	switch g.OnTimeout {
	case "":
		g.OnTimeout = OnTimeoutReject
	case OnTimeoutReject, OnTimeoutSend:
	default:
		bad("on_timeout", "%q is not a time-out action (reject, send)", gc.OnTimeout)
	}
	var plain []string
	for _, list := range []struct {
		key   string
		in    []string
		out   *[]principal
		plain *[]string
	}{{"members", gc.Members, &g.members, &plain}, {"delegates", gc.Delegates, &g.delegates, &g.DelegateNotify}} {
		for j, m := range list.in {
			p, err := compilePrincipal(m)
			if err != nil {
				bad(fmt.Sprintf("%s[%d]", list.key, j), "%v", err)
				continue
			}
			*list.out = append(*list.out, p)
			if p.dn == "" && !p.pat.anyLocal && !p.pat.prefix && !p.pat.subdomains {
				*list.plain = append(*list.plain, strings.ToLower(m))
			}
		}
	}
	for j, n := range gc.Notify {
		if _, _, err := addr.Parse(n); err != nil {
			bad(fmt.Sprintf("notify[%d]", j), "%q is not an address: %v", n, err)
		}
	}
	g.Notify = gc.Notify
	if len(g.Notify) == 0 {
		g.Notify = dedupe(plain)
	}
	g.DelegateNotify = dedupe(g.DelegateNotify)
	return g, errs
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// compilePrincipal reads an address, an address pattern or ldap-group:DN.
func compilePrincipal(s string) (principal, error) {
	if dn, ok := strings.CutPrefix(s, LDAPGroupPrefix); ok {
		if !strings.Contains(dn, "=") {
			return principal{}, fmt.Errorf("%q: not a DN (cn=...,dc=...)", s)
		}
		return principal{dn: dn}, nil
	}
	p, err := compilePattern(s)
	if err != nil {
		return principal{}, err
	}
	if p.any || p.null {
		return principal{}, fmt.Errorf("%q: name people (an address, *@domain or ldap-group:DN)", s)
	}
	return principal{pat: p}, nil
}

func (g *Group) hasLDAP() bool {
	for _, p := range append(append([]principal(nil), g.members...), g.delegates...) {
		if p.dn != "" {
			return true
		}
	}
	return false
}

// Member reports whether a principal (a lower-case address) is one of
// the group's members; inLDAP says whether they belong to a directory
// group (nil: to none).
func (g *Group) Member(who string, inLDAP func(dn string) bool) bool {
	return matchPrincipals(g.members, who, inLDAP)
}

// Delegate reports whether who is one of the group's delegates.
func (g *Group) Delegate(who string, inLDAP func(dn string) bool) bool {
	return matchPrincipals(g.delegates, who, inLDAP)
}

// Notified reports whether the group's approval mail goes to address (a
// mailing list in notify, say): a link in that mail decides in its name.
func (g *Group) Notified(address string) bool {
	for _, n := range append(append([]string(nil), g.Notify...), g.DelegateNotify...) {
		if strings.EqualFold(n, address) {
			return true
		}
	}
	return false
}

// LDAPGroups lists the directory groups among members and delegates.
func (g *Group) LDAPGroups() []string {
	var out []string
	for _, p := range append(append([]principal(nil), g.members...), g.delegates...) {
		if p.dn != "" {
			out = append(out, p.dn)
		}
	}
	return out
}

// Empty reports whether the group names nobody who could decide: no
// member and no delegate.
func (g *Group) Empty() bool { return len(g.members) == 0 && len(g.delegates) == 0 }

func matchPrincipals(ps []principal, who string, inLDAP func(string) bool) bool {
	e, err := parseAddr(who)
	for _, p := range ps {
		if p.dn != "" {
			if inLDAP != nil && inLDAP(p.dn) {
				return true
			}
			continue
		}
		if err == nil && !e.null && p.pat.match(e) {
			return true
		}
	}
	return false
}
