package main

import (
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/routing"
)

// mirrorRouteWarnings finds mirror domains whose accounts' mail would go
// to the smart host: no route names the domain (exactly or as *.parent,
// without a sender condition) and it is no twin of a domain that has one.
// That is the trap of an export under the regional domain while only the
// LG domain is routed to the inner server: accepted mail leaves by MX or
// the smart host, which in production loops back (451 4.4.6).
func mirrorRouteWarnings(ac accounts.Config, rc routing.Config) []string {
	routed := func(domain string) bool {
		for _, r := range rc.Routes {
			d := strings.ToLower(strings.TrimSuffix(r.Domain, "."))
			if r.Domain == "" || r.Sender != "" {
				continue
			}
			if d == domain || strings.HasPrefix(d, "*.") && strings.HasSuffix(domain, d[1:]) {
				return true
			}
		}
		return false
	}
	mailboxes := accounts.MailboxDomains(ac)
	var out []string
	for i, dc := range ac.Domains {
		name, err := addr.Domain(dc.Name)
		if err != nil || (dc.Mode != "" && dc.Mode != "mirror") {
			continue
		}
		mb := mailboxes(name)
		if routed(mb) {
			continue
		}
		if mb != name {
			out = append(out, fmt.Sprintf("accounts.domains[%d]: %s is a twin of %s, which no route in routing.routes names: mail for its accounts goes to the smart host or MX, not to the inner server", i, name, mb))
			continue
		}
		out = append(out, fmt.Sprintf("accounts.domains[%d]: no route in routing.routes names %s, and it is no twin of a routed domain: mail for its accounts goes to the smart host or MX, not to the inner server (add a route, or declare it a twin of the inner server's domain: twin: DOMAIN)", i, name))
	}
	return out
}
