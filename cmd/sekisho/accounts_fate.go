package main

import (
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/policy"
)

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

// checkDirectory loads the configuration, the directory and the relay
// policy over it.
func (env *cmdEnv) checkDirectory(cfgPath string) (*accounts.Directory, *recipientFate, bool) {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return nil, nil, false
	}
	dr, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return nil, nil, false
	}
	// The zero client address is in no network: a client on the internet.
	f := &recipientFate{pol: dr.Policy(), conn: policy.Conn{Mode: policy.ModeMX, Helo: "client.example"}}
	for _, n := range cfg.Relay.Guard.InnerNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			f.inner = &policy.Conn{IP: p.Addr(), Mode: policy.ModeMX, Helo: "inner.example"}
			break
		}
		if a, err := netip.ParseAddr(n); err == nil {
			f.inner = &policy.Conn{IP: a, Mode: policy.ModeMX, Helo: "inner.example"}
			break
		}
	}
	return dr.Policy().Dir(), f, true
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
