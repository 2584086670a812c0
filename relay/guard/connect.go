package guard

import (
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Built-in checks of the connect stage and the postmaster rule.
const (
	ruleConnect    = "builtin:connect"
	rulePostmaster = "builtin:postmaster"
)

// RulePostmaster names the verdict that accepted a postmaster recipient.
const RulePostmaster = rulePostmaster

// CheckConnect decides at the greeting, from the client's address alone,
// like Postfix's client restrictions. The first rule whose networks hold
// the client decides only if it names nothing but networks: a deny then
// answers 554 5.7.1. Any other first rule waits for MAIL and RCPT, where
// the whole rule list runs again.
func (g *Guard) CheckConnect(c Client) Verdict {
	for i := range g.c.rules {
		r := &g.c.rules[i]
		if !r.networks.contains(c.IP) {
			continue
		}
		networksOnly := r.auth == authAny && len(r.senders) == 0 && len(r.recipients) == 0 && len(r.networks) > 0
		if !networksOnly {
			break
		}
		if r.action == actDeny {
			text := r.message
			if text == "" {
				text = "Access denied by local policy"
			}
			return refuse(554, "5.7.1", text, r.name, "client "+c.IP.String()+" denied at connect by rule "+r.name)
		}
		return accept(r.name, "client "+c.IP.String()+" matched rule "+r.name)
	}
	return accept(ruleConnect, "no rule decides on the client address alone")
}

// IsPostmaster reports whether rcpt is the postmaster RFC 5321 §4.5.1
// requires every server to accept: "postmaster" without a domain, or
// postmaster@ one of our domains. Such a recipient is accepted before any
// rule.
func (g *Guard) IsPostmaster(rcpt string) bool {
	if strings.EqualFold(rcpt, "postmaster") {
		return true
	}
	local, domain, ok := addr.Split(rcpt)
	if !ok || !strings.EqualFold(local, "postmaster") {
		return false
	}
	d := g.dir()
	if d == nil {
		return false
	}
	res, err := d.Lookup("postmaster@" + domain)
	return err == nil && res.Ours()
}
