package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/routing/dnsclient"
)

// maxCNAMEs bounds how many aliases a lookup follows.
const maxCNAMEs = 8

// MX is one mail exchanger of a domain.
type MX struct {
	Host string // canonical, no trailing dot
	Pref uint16
}

// Resolver looks up MX and address records over DNS (dnsclient: UDP, TCP
// when the answer is truncated, answers cached for their TTL), with a
// hosts override consulted first. It is safe for concurrent use.
type Resolver struct {
	dns     *dnsclient.Client
	hosts   hostsTable
	shuffle func(n int, swap func(i, j int))
}

func newResolver(cfg DNSConfig, hosts hostsTable) (*Resolver, error) {
	opt := dnsclient.Options{
		ResolvConf: cfg.ResolvConf,
		Timeout:    cfg.Timeout,
		Attempts:   cfg.Attempts,
		CacheSize:  cfg.CacheSize,
	}
	for i, s := range cfg.Servers {
		ap, err := parseServer(s)
		if err != nil {
			return nil, fmt.Errorf("dns.servers[%d]: %v", i, err)
		}
		opt.Servers = append(opt.Servers, ap)
	}
	return &Resolver{dns: dnsclient.New(opt), hosts: hosts, shuffle: rand.Shuffle}, nil
}

// query asks for name/qtype and returns a NOERROR or NXDOMAIN answer. Any
// other outcome (SERVFAIL, REFUSED, timeouts, no server) is a temporary
// *Error.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m, err := r.dns.Query(ctx, name, qtype)
	if err != nil {
		return nil, tempError("%v", err)
	}
	return m, nil
}

// lookup returns the records of qtype for name, following CNAMEs, and
// whether the name does not exist.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (rrs []dns.RR, nxdomain bool, err error) {
	target := dns.Fqdn(strings.ToLower(name))
	for range maxCNAMEs + 1 {
		msg, err := r.query(ctx, target, qtype)
		if err != nil {
			return nil, false, err
		}
		// Walk the alias chain inside the answer, as recursive resolvers
		// include it, then keep only records owned by names on the chain.
		chain := map[string]bool{target: true}
		for changed := true; changed; {
			changed = false
			for _, rr := range msg.Answer {
				if c, ok := rr.(*dns.CNAME); ok && chain[strings.ToLower(c.Hdr.Name)] && !chain[strings.ToLower(c.Target)] {
					chain[strings.ToLower(c.Target)] = true
					target, changed = strings.ToLower(c.Target), true
				}
			}
		}
		for _, rr := range msg.Answer {
			if rr.Header().Rrtype == qtype && chain[strings.ToLower(rr.Header().Name)] {
				rrs = append(rrs, rr)
			}
		}
		if len(rrs) > 0 || len(chain) == 1 || msg.Rcode != dns.RcodeSuccess || hasSOA(msg) {
			return rrs, msg.Rcode == dns.RcodeNameError, nil
		}
		// The answer ended at an alias with neither its records nor a
		// negative answer for it (a server that does not chase aliases):
		// ask for the alias target itself.
	}
	return nil, false, tempError("DNS lookup of %s: more than %d CNAMEs", name, maxCNAMEs)
}

func hasSOA(msg *dns.Msg) bool {
	for _, rr := range msg.Ns {
		if _, ok := rr.(*dns.SOA); ok {
			return true
		}
	}
	return false
}

// LookupMX returns the MX hosts of domain, sorted by preference with equal
// preferences in random order, or none when the domain has no MX records
// (the caller then uses the implicit MX). A null MX is a 556 5.1.10
// *Error, a domain that does not exist 550 5.1.2, a DNS failure a
// temporary 451 4.4.3.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, nx, err := r.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	if nx {
		return nil, permError(550, "5.1.2", "domain %s does not exist (DNS NXDOMAIN)", domain)
	}
	var out []MX
	null := false
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		if mx.Mx == "." {
			null = true
			continue
		}
		host, err := addr.Domain(mx.Mx)
		if err != nil {
			continue // an MX host that is no host name cannot be used
		}
		out = append(out, MX{Host: host, Pref: mx.Preference})
	}
	// RFC 7505 §3: "." among real MX records is an error we skip; alone it
	// says the domain accepts no mail.
	if null && len(out) == 0 {
		return nil, permError(556, "5.1.10", "domain %s accepts no mail (null MX)", domain)
	}
	slices.SortStableFunc(out, func(a, b MX) int { return cmp.Compare(a.Pref, b.Pref) })
	out = slices.CompactFunc(out, func(a, b MX) bool { return a == b })
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j].Pref == out[i].Pref {
			j++
		}
		group := out[i:j]
		r.shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
		i = j
	}
	return out, nil
}

// LookupAddrs returns the addresses of host: the hosts override if it
// lists the host, the loopback addresses for "localhost", the address
// itself for an IP literal, else its A then AAAA records. A host that does
// not exist or has no address is a permanent 550 5.4.4 *Error; a DNS
// failure a temporary 451 4.4.3, unless the other family answered.
func (r *Resolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	name, err := addr.Domain(host)
	if err != nil {
		return nil, permError(550, "5.4.4", "%v", err)
	}
	if ips, ok := r.hosts[name]; ok {
		return slices.Clone(ips), nil
	}
	if name == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	type result struct {
		ips []netip.Addr
		nx  bool
		err error
	}
	families := []uint16{dns.TypeA, dns.TypeAAAA}
	results := make([]result, len(families))
	var wg sync.WaitGroup
	for i, qt := range families {
		wg.Go(func() {
			rrs, nx, err := r.lookup(ctx, name, qt)
			results[i] = result{nx: nx, err: err}
			for _, rr := range rrs {
				var ip netip.Addr
				switch v := rr.(type) {
				case *dns.A:
					ip, _ = netip.AddrFromSlice(v.A.To4())
				case *dns.AAAA:
					ip, _ = netip.AddrFromSlice(v.AAAA)
				}
				if ip.IsValid() && !slices.Contains(results[i].ips, ip.Unmap()) {
					results[i].ips = append(results[i].ips, ip.Unmap())
				}
			}
		})
	}
	wg.Wait()
	var ips []netip.Addr
	var failed error
	nx := true
	for _, res := range results {
		ips = append(ips, res.ips...)
		if res.err != nil {
			failed = res.err
		}
		nx = nx && res.nx
	}
	switch {
	case len(ips) > 0:
		return ips, nil
	case failed != nil:
		return nil, failed
	case nx:
		return nil, permError(550, "5.4.4", "host %s does not exist (DNS NXDOMAIN)", name)
	}
	return nil, permError(550, "5.4.4", "host %s has no A or AAAA record", name)
}

// asError returns err as an *Error, wrapping anything else as temporary.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return tempError("%v", err)
}
