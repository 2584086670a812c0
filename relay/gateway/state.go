package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/runner"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Sections is the whole configuration the gateway needs; the command
// assembles it from the file.
type Sections struct {
	Accounts accounts.Config
	Rewrite  rewrite.Config
	Routing  routing.Config
	Relay    Config
	// ConsoleURL is where staff reach the console (console.url), linked
	// in the notices the gateway sends requesters; "" for none.
	ConsoleURL string
}

// snapshot is everything a reload replaces at once: what the sessions
// decide with and what the runner delivers with, built from one
// configuration. Sessions and deliveries take the snapshot of the moment
// they start and keep it for their whole transaction.
type snapshot struct {
	sec    Sections // what it was built from, for Engine.Warnings
	cfg    Config
	dir    *accounts.Directory
	router *routing.Router
	guard  *guard.Guard
	// outbound are the outbound rules, which pol decides with.
	outbound *guard.Outbound
	pol      *policy.Policy
	session  *session.Snapshot
	runner   *runner.Snapshot
}

// SelfFor lists this gateway's names and listen addresses for the
// routing layer's self-route check.
func SelfFor(c Config) routing.Self {
	self := routing.Self{Hostnames: []string{c.Hostname}}
	for _, l := range c.Listeners {
		if ap, err := netip.ParseAddrPort(l.Address); err == nil {
			self.Addrs = append(self.Addrs, ap)
		} else if host, port, err := net.SplitHostPort(l.Address); err == nil {
			p, _ := strconv.Atoi(port)
			if host == "" {
				self.Addrs = append(self.Addrs, netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)))
			} else {
				self.Hostnames = append(self.Hostnames, host)
			}
		}
	}
	return self
}

// buildState loads and checks everything a reload may change. The
// sanitize stage opens its quarantine folder, so only a gateway that
// delivers builds it (with the engine's stage dependencies); dry runs
// pass nil and leave it off.
func buildState(sec Sections, stageDeps *sanitize.StageDeps) (*snapshot, error) {
	dir, err := accounts.Open(sec.Accounts)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	rw, err := rewrite.New(sec.Rewrite)
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	router, err := routing.New(sec.Routing, SelfFor(sec.Relay))
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if err := referenceError(references(sec, rw, dir)); err != nil {
		return nil, err
	}
	g, err := guard.New(sec.Relay.Guard, func() *accounts.Directory { return dir })
	if err != nil {
		return nil, fmt.Errorf("relay.guard: %w", err)
	}
	out, err := guard.NewOutbound(sec.Relay.Outbound)
	if err != nil {
		return nil, keyerr.Prefix("relay.outbound.", err)
	}
	in, err := inspect.New(sec.Relay.Inspect, sec.Relay.Hostname, nil)
	if err != nil {
		return nil, keyerr.Prefix("relay.inspect.", err)
	}
	var stage *sanitize.Stage
	if stageDeps != nil {
		if stage, err = sanitize.NewStage(sec.Relay.Sanitize, archiveAddresses(sec.Relay.Archive), *stageDeps); err != nil {
			return nil, fmt.Errorf("relay.sanitize: %w", err)
		}
	}
	c := sec.Relay
	pol := policy.New(policy.Parts{Dir: dir, Rewriter: rw, Router: router, Guard: g, Outbound: out,
		MaxReceived: c.Limits.MaxReceivedFields, AllowInsecureAuth: c.Auth.AllowInsecure,
		Postmaster: c.PostmasterAddress(), Hostname: c.Hostname})
	st := &snapshot{sec: sec, cfg: c, dir: dir, router: router, guard: g, outbound: out, pol: pol}
	st.session = &session.Snapshot{Hostname: c.Hostname, MaxHeaderBytes: c.Limits.MaxHeaderBytes, Policy: pol,
		Lines: linePolicies(c.BareLineEndings), Inspect: in, Archive: c.Archive, CountFiles: countFiles}
	st.runner = &runner.Snapshot{Hostname: c.Hostname, Postmaster: c.PostmasterAddress(), MaxHeaderBytes: c.Limits.MaxHeaderBytes,
		Delivery: c.Delivery, Router: router, Rewriter: rw, Inner: g.Inner, Sanitize: stage, Inspect: in}
	return st, nil
}

// linePolicies reads relay.bare_line_endings (validated).
func linePolicies(c BareLineConfig) session.LinePolicies {
	var p session.LinePolicies
	for src, v := range map[rewrite.Source]string{
		rewrite.SourceInternet:      c.Internet,
		rewrite.SourceInner:         c.Inner,
		rewrite.SourceAuthenticated: c.Authenticated,
	} {
		p[src], _ = smtpd.ParseLinePolicy(v)
	}
	return p
}

// archiveAddresses are relay.archive's addresses: a release from the
// quarantine does not send the original to them again.
func archiveAddresses(list []session.ArchiveConfig) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}
