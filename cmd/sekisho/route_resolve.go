package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// routeResolver turns an address into what the gateway routes: the relay
// policy's alias resolution and receive-time rewrite, for a client.
type routeResolver struct {
	pol    *policy.Policy
	conn   *policy.Conn // nil: source by the address (see newRouteResolver)
	client string
}

func newRouteResolver(cfg *Config, client string) (*routeResolver, error) {
	dr, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		return nil, err
	}
	r := &routeResolver{pol: dr.Policy(), client: client}
	if client != "" {
		ip, err := netip.ParseAddr(client)
		if err != nil {
			return nil, fmt.Errorf("--client: %q is not an IP address", client)
		}
		c := gateway.ProbeConn(cfg.Relay, gateway.Probe{Client: ip})
		r.conn = &c
	}
	return r, nil
}

// source is the message source for the rewrite: the client's when given,
// otherwise the one mail for the address usually comes from.
func (r *routeResolver) source(address string) rewrite.Source {
	if r.conn != nil {
		return r.pol.Source(*r.conn)
	}
	return r.pol.UsualSource(address)
}

// explain routes one address as written by a client.
func (r *routeResolver) explain(ctx context.Context, router *routing.Router, address, sender string, noDNS bool) routeResult {
	a, err := policy.ParsePath(address)
	if err == nil && a == "" {
		err = fmt.Errorf("empty address")
	}
	s, serr := policy.ParsePath(sender)
	if err != nil || serr != nil {
		msg := fmt.Sprintf("501 5.1.3 bad recipient address %q: %v", address, err)
		if err == nil {
			msg = fmt.Sprintf("501 5.1.7 bad sender address %q: %v", sender, serr)
		}
		return routeResult{Address: address, Sender: sender, Hops: []routing.Hop{}, Error: msg, Code: 501, Enhanced: "5.1.3"}
	}
	res := r.pol.Resolve(r.source(a), s, a)
	out := explainRoute(ctx, router, res.Rewritten, res.From, noDNS)
	out.Address, out.Sender = address, sender
	if res.Target != a {
		out.Target = res.Target
	}
	if res.Rewritten != res.Target {
		out.Rewritten = res.Rewritten
	}
	if res.From != s {
		out.RoutedSender = res.From
	}
	return out
}
