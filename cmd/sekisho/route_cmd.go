package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/keyerr"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/routing"
)

func init() {
	register(&command{
		name:    "route test",
		summary: "explain where mail for each address would go (no mail is sent)",
		run:     runRouteTest,
	})
}

// routeTestTimeout bounds the DNS lookups of one `route test` run.
const routeTestTimeout = 2 * time.Minute

func runRouteTest(env *cmdEnv, args []string) int {
	fs := newFlags(env, "route test", "[-c FILE] ADDRESS... [--from ADDRESS] [--no-dns] [--json]", `
Explains, for each recipient ADDRESS, the routing rule that matches (or the
smart host, or DNS MX), the ordered next hops with their resolved addresses,
the TLS policy, whether AUTH is used, the rewrite set applied at delivery
time, and why. Nothing is sent. DNS is asked as the gateway would ask it
(the routing.dns servers, or resolv.conf), unless --no-dns is given.
Exit 1 when an address cannot be routed or the routing configuration is
refused (for example a route back to this gateway).`)
	cfgPath := fs.String("c", "", "configuration `file` (the embedded quickstart without it)")
	from := fs.String("from", "", "envelope sender `address`, for routes with sender conditions")
	noDNS := fs.Bool("no-dns", false, "match the table only: do not look anything up in DNS")
	client := fs.String("client", "", "the client's IP `address`: the message source the receive-time rewrite keys on (default: internet for our addresses, inner for others)")
	asJSON := fs.Bool("json", false, "print one JSON list")
	addrs, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(addrs) == 0 {
		fmt.Fprintln(env.stderr, "sekisho route test: give at least one ADDRESS")
		return exitUsage
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	// The routing section's own problems first, each under its key.
	if _, err := routing.New(cfg.Routing, gateway.SelfFor(cfg.Relay)); err != nil {
		for _, e := range keyerr.Flatten(err) {
			fmt.Fprintf(env.stderr, "%s: routing.%v\n", cfg.Source, e)
		}
		return exitFinding
	}
	// Mail is routed as it is queued: aliases resolved and the
	// receive-time rewrite applied, by the relay policy itself.
	var clientIP *netip.Addr
	if *client != "" {
		ip, err := netip.ParseAddr(*client)
		if err != nil {
			fmt.Fprintf(env.stderr, "%s: --client: %q is not an IP address\n", cfg.Source, *client)
			return exitFinding
		}
		clientIP = &ip
	}
	dr, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
	defer cancel()
	var results []gateway.RouteResult
	status := exitOK
	for _, a := range addrs {
		res := dr.ExplainRoute(ctx, a, *from, clientIP, *noDNS)
		if res.Error != "" {
			status = exitFinding
		}
		results = append(results, res)
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		return status
	}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		writeRouteText(env.stdout, &res, *noDNS)
	}
	return status
}

func writeRouteText(w io.Writer, res *gateway.RouteResult, noDNS bool) {
	head := res.Address
	if res.Sender != "" {
		head += " (from " + res.Sender + ")"
	}
	fmt.Fprintln(w, head)
	if res.Target != "" {
		fmt.Fprintf(w, "  %-9s %s\n", "alias:", res.Target)
	}
	if res.Rewritten != "" {
		fmt.Fprintf(w, "  %-9s %s\n", "rewrite:", res.Rewritten+" (on receipt)")
	}
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "  %-9s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	if res.Kind == "" { // not even the table could be asked
		line("error", "%s", res.Error)
		return
	}
	rule := res.Rule
	if rule == "" {
		rule = "(none: DNS MX)"
	}
	line("rule", "%s", rule)
	line("reason", "%s", res.Reason)
	switch {
	case res.Kind == routing.KindDir:
		line("next hop", "directory %s", res.Dir)
	case res.Kind == routing.KindMX && len(res.Hops) == 0 && noDNS:
		line("next hop", "MX of the recipient domain (not looked up: --no-dns)")
	default:
		line("next hop", "%s", res.Kind)
		for i, h := range res.Hops {
			fmt.Fprintf(w, "    %d. %s\n", i+1, hopText(h, res.Kind, noDNS))
		}
	}
	if res.TLS != nil {
		line("tls", "%s", tlsText(*res.TLS))
		if res.Auth == nil {
			line("auth", "no")
		} else {
			line("auth", "yes, %s as %q", res.Auth.Mechanism, res.Auth.Username)
		}
	}
	if res.Rewrite == "" {
		line("rewrite", "-")
	} else {
		line("rewrite", "%s (at delivery)", res.Rewrite)
	}
	if res.Received != "" && res.Received != routing.ReceivedKeep {
		line("received", "%s (the inner Received fields of this route's copy)", res.Received)
	}
	if res.MaxConnections > 0 {
		line("limit", "%d connections", res.MaxConnections)
	}
	if res.Error != "" {
		kind := "permanent"
		if res.Temporary {
			kind = "temporary"
		}
		line("error", "%s (%s)", res.Error, kind)
	}
}

func hopText(h routing.Hop, kind routing.Kind, noDNS bool) string {
	s := h.String()
	if kind == routing.KindMX {
		s += fmt.Sprintf("  pref %d", h.Pref)
	}
	switch {
	case len(h.Addrs) > 0:
		ips := make([]string, len(h.Addrs))
		for i, a := range h.Addrs {
			ips[i] = a.String()
		}
		return s + "  " + strings.Join(ips, ", ")
	case h.Error != "":
		return s + "  (no address: " + h.Error + ")"
	case noDNS:
		return s + "  (not looked up: --no-dns)"
	}
	return s
}

func tlsText(p routing.TLSPolicy) string {
	s := string(p.Mode)
	if p.CAFile != "" {
		s += ", CA " + p.CAFile
	}
	if p.ServerName != "" {
		s += ", name " + p.ServerName
	}
	return s
}
