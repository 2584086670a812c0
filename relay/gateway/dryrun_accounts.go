package gateway

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/policy"
)

// AddressCheck is what the gateway does with one address as a recipient
// and as a sender (accounts check, the console's dry run; the JSON of
// accounts check --json).
type AddressCheck struct {
	Address   string   `json:"address"`
	Error     string   `json:"error,omitempty"`
	Ours      bool     `json:"ours"`
	Kind      string   `json:"kind,omitempty"`
	Target    string   `json:"target,omitempty"`
	Account   string   `json:"account,omitempty"`
	Flags     string   `json:"flags,omitempty"`
	Chain     []string `json:"chain,omitempty"`
	Protected bool     `json:"protected"`
	Allow     []string `json:"outbound_allow,omitempty"`
	Recipient string   `json:"as_recipient,omitempty"`
	Sender    string   `json:"as_sender,omitempty"`
}

// fateSender is the envelope sender accounts check imagines for mail from
// the internet (RFC 2606's example domain: never one of ours).
const fateSender = "sender@example.com"

// recipientFate answers "what does the gateway do with mail to this
// address" through the relay policy itself: the guard, the alias, the
// receive-time rewrite and its re-check, and the route.
type recipientFate struct {
	pol   *policy.Policy
	conn  policy.Conn  // a client on the internet
	inner *policy.Conn // a host of relay.guard.inner_networks, if any
}

// fate is the recipient fate of the dry runner's snapshot: a client on
// the internet, and a host of relay.guard.inner_networks if any.
func (r *DryRunner) fate() *recipientFate {
	// The zero client address is in no network: a client on the internet.
	f := &recipientFate{pol: r.st.pol, conn: policy.Conn{Mode: policy.ModeMX, Helo: "client.example"}}
	for _, n := range r.cfg.Guard.InnerNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			f.inner = &policy.Conn{IP: p.Addr(), Mode: policy.ModeMX, Helo: "inner.example"}
			break
		}
		if a, err := netip.ParseAddr(n); err == nil {
			f.inner = &policy.Conn{IP: a, Mode: policy.ModeMX, Helo: "inner.example"}
			break
		}
	}
	return f
}

// CheckAddress tells whether an address is ours, which account or alias
// target it reaches, its flags, and what the gateway does with it as a
// recipient and as a sender, through the relay policy itself.
func (r *DryRunner) CheckAddress(a string) AddressCheck {
	dir := r.st.pol.Dir()
	f := r.fate()
	c := AddressCheck{Address: a}
	res, err := dir.Lookup(a)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Ours, c.Kind, c.Target, c.Chain, c.Protected = res.Ours(), res.Kind.String(), res.Target, res.Chain, res.Protected
	if res.Account != nil {
		c.Account = res.Account.Address()
		if fl := res.Flags(); fl != 0 {
			c.Flags = fl.String()
		}
	}
	c.Recipient, c.Sender = f.asRecipient(res), f.asSender(res)
	if res.Flags()&accounts.OutboundBlocked != 0 {
		if c.Allow = dir.AllowList(res.Account); len(c.Allow) > 0 {
			c.Sender += "; also to " + strings.Join(c.Allow, ", ")
		}
	}
	return c
}

// asSender says what happens to r as the envelope sender: from a client
// on the internet, and from the inner networks towards the internet.
func (f *recipientFate) asSender(r accounts.Result) string {
	verdict := func(d policy.Decision) string {
		if d.Accepted() {
			return "accepted"
		}
		return fmt.Sprintf("refused %d %s (%s)", d.Code, d.Enhanced, d.Rule)
	}
	s := "from the internet: " + verdict(f.pol.Mail(f.conn, r.Input))
	if f.inner != nil {
		d := f.pol.Mail(*f.inner, r.Input)
		if d.Accepted() {
			d = f.pol.Rcpt(*f.inner, r.Input, fateSender)
		}
		s += "; from the inner networks to the internet: " + verdict(d)
	}
	return s
}

// asRecipient says what happens to mail for r from a client on the
// internet, and where accepted mail is delivered.
func (f *recipientFate) asRecipient(r accounts.Result) string {
	if !r.Ours() {
		return asRecipient(r)
	}
	d := f.pol.Rcpt(f.conn, fateSender, r.Input)
	if !d.Accepted() {
		return fmt.Sprintf("rejected from the internet: %d %s (%s: %s)", d.Code, d.Enhanced, d.Rule, d.Reason)
	}
	s := "accepted"
	switch {
	case d.Rule == guard.RulePostmaster && d.Target != r.Input:
		s += ", postmaster without an account: to relay.postmaster " + d.Target
	case d.Target != r.Input:
		s += ", alias of " + d.Target
	}
	if d.Rewritten != d.Target {
		s += ", rewritten to " + d.Rewritten
	}
	switch {
	case d.RouteErr != nil:
		s += ", but it cannot be routed: " + d.RouteErr.Error()
	case d.Route != nil:
		s += ", delivered to " + d.Route.Summary()
	}
	return s
}

// asRecipient says what happens to mail for an address that is not
// accepted through the policy check (not ours, unknown, disabled).
func asRecipient(r accounts.Result) string {
	switch {
	case !r.Ours():
		return "not ours: relayed only for trusted clients (inner networks, authenticated users)"
	case r.Exists() && r.Target != r.Input && !strings.EqualFold(r.Target, r.Input):
		return "accepted, forwarded to " + r.Target
	case r.Exists():
		return "accepted, forwarded to the inner server"
	case r.Flags()&accounts.Disabled != 0:
		return "rejected: 550 5.2.1 mailbox disabled"
	default:
		return "rejected: 550 5.1.1 no such account"
	}
}
