package console

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/export"
	"github.com/sekisho/sekisho/relay/guard"
)

// The approval groups of relay.outbound name people as the console knows
// them: an LDAP group is resolved when its members sign in, so it needs
// console.ldap.

// CheckOutbound reports groups naming LDAP groups when console.ldap.url
// is not set, and DNs that do not parse; keys relative to relay.
func (c Config) CheckOutbound(o guard.OutboundConfig) error {
	var errs []error
	for i, g := range o.Groups {
		for _, list := range []struct {
			key string
			v   []string
		}{{"members", g.Members}, {"delegates", g.Delegates}} {
			for j, p := range list.v {
				if !strings.HasPrefix(p, ldapGroupPrefix) {
					continue
				}
				if err := checkPrincipal(p, c.LDAP.URL != ""); err != nil {
					errs = append(errs, fmt.Errorf("outbound.groups[%d].%s[%d]: %v", i, list.key, j, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// OutboundWarnings finds approval groups whose only members are LDAP
// groups with nobody in them (or none in the directory): their requests
// could only time out. It asks the directory (console.ldap); one it
// cannot reach is said so.
func (c Config) OutboundWarnings(ctx context.Context, o guard.OutboundConfig) []string {
	if c.LDAP.URL == "" {
		return nil
	}
	approving := map[string]bool{}
	for _, r := range o.Rules {
		approving[r.Approve] = true
	}
	var out []string
	var l *ldapSignIn
	for i, g := range o.Groups {
		if !approving[g.Name] || hasPlain(g.Members) || hasPlain(g.Delegates) {
			continue
		}
		if l == nil {
			var err error
			if l, err = newLDAPSignIn(c.LDAP); err != nil {
				return append(out, fmt.Sprintf("console.ldap: %v: the approval groups' directory groups were not checked", err))
			}
		}
		total := 0
		var problems []string
		for _, p := range append(append([]string(nil), g.Members...), g.Delegates...) {
			dn := strings.TrimPrefix(p, ldapGroupPrefix)
			n, err := export.LDAPGroupMembers(ctx, export.LDAPOptions{URL: c.LDAP.URL, BindDN: c.LDAP.BindDN, Password: l.password,
				StartTLS: c.LDAP.StartTLS, TLS: l.tls, Timeout: c.LDAP.Timeout}, dn)
			switch {
			case errors.Is(err, export.ErrLDAPNoGroup):
				problems = append(problems, dn+" is not in the directory")
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s could not be read (%v)", dn, err))
				total = -1 << 30 // unknown: not said to be empty
			default:
				total += n
			}
		}
		if total == 0 {
			why := "its directory groups have no member"
			if len(problems) > 0 {
				why = strings.Join(problems, "; ")
			}
			out = append(out, fmt.Sprintf("relay.outbound.groups[%d]: approval group %q has nobody to decide: %s", i, g.Name, why))
		} else if total < 0 {
			out = append(out, fmt.Sprintf("relay.outbound.groups[%d]: approval group %q: %s", i, g.Name, strings.Join(problems, "; ")))
		}
	}
	return out
}

// hasPlain reports whether a list names someone without the directory.
func hasPlain(list []string) bool {
	for _, p := range list {
		if !strings.HasPrefix(p, ldapGroupPrefix) {
			return true
		}
	}
	return false
}
