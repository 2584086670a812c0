package main

import (
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/relay/gateway"
)

// usePolicy makes rewrite test decide the transaction with the relay
// policy for a client at ip: the source follows from the client, and
// every rewritten recipient is checked again as the gateway checks it.
func (t *rewriteTest) usePolicy(env *cmdEnv, cfg *Config, client string) int {
	ip, err := netip.ParseAddr(client)
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho rewrite test: --client: %q is not an IP address\n", client)
		return exitUsage
	}
	dr, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	t.dr = dr
	t.source = dr.Policy().Source(gateway.ProbeConn(cfg.Relay, gateway.Probe{Client: ip}))
	t.policy = func(t *rewriteTest) []gateway.Step {
		return dr.Run(gateway.Probe{Client: ip, Helo: "client.example", From: t.from, Rcpts: t.rcpts, Header: t.header})
	}
	return -1
}

// printPolicy prints the relay policy's decision after the rewrite.
func (t *rewriteTest) printPolicy() {
	fmt.Fprintf(t.out, "\nrelay policy (source %s):\n", t.source)
	for _, s := range t.policy(t) {
		if s.Stage == "connect" || s.Stage == "helo" {
			continue
		}
		arg := s.Arg
		if s.Stage == "mail" && arg == "" {
			arg = "<>"
		}
		fmt.Fprintf(t.out, "  %-5s %s: %s %d %s (%s)", s.Stage, arg, s.Verdict, s.Code, s.Enhanced, s.Rule)
		if s.Rewritten != "" {
			fmt.Fprintf(t.out, " -> %s", s.Rewritten)
		}
		if s.NextHop != "" {
			fmt.Fprintf(t.out, ", next hop %s", s.NextHop)
		}
		fmt.Fprintln(t.out)
	}
}
