package main

import (
	"fmt"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay"
	"github.com/sekisho/sekisho/relay/policy"
)

// fateSender is the envelope sender accounts check imagines for mail from
// the internet (RFC 2606's example domain: never one of ours).
const fateSender = "sender@example.com"

// recipientFate answers "what does the gateway do with mail to this
// address" through the relay policy itself: the guard, the alias, the
// receive-time rewrite and its re-check, and the route.
type recipientFate struct {
	pol  *policy.Policy
	conn policy.Conn
}

// checkDirectory loads the configuration, the directory and the relay
// policy over it.
func (env *cmdEnv) checkDirectory(cfgPath string) (*accounts.Directory, *recipientFate, bool) {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return nil, nil, false
	}
	dr, err := relay.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return nil, nil, false
	}
	// The zero client address is in no network: a client on the internet.
	return dr.Policy().Dir(), &recipientFate{pol: dr.Policy(), conn: policy.Conn{Mode: policy.ModeMX}}, true
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
	if d.Target != r.Input {
		s += ", alias of " + d.Target
	}
	if d.Rewritten != d.Target {
		s += ", rewritten to " + d.Rewritten
	}
	switch {
	case d.RouteErr != nil:
		s += ", but it cannot be routed: " + d.RouteErr.Error()
	case d.Route != nil:
		s += ", delivered to " + relay.NextHopLabel(d.Route)
	}
	return s
}
