package routing

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// resolve fills in the hops' addresses (and the hops themselves for MX
// decisions) and refuses hops that are this gateway.
func (r *Router) resolve(ctx context.Context, d *Decision, domain string) error {
	switch d.Kind {
	case KindDir:
		return nil
	case KindHosts:
		return r.resolveStatic(ctx, d)
	}
	return r.resolveMX(ctx, d, domain)
}

// loopError is a next hop that turned out to be us. From our own table it
// is temporary (an administrator can fix the table before the queue gives
// up); from the recipient's DNS it is permanent, as in Postfix.
func loopError(temporary bool, format string, a ...any) *Error {
	if temporary {
		return &Error{Temporary: true, Code: 451, Enhanced: "4.4.6", Msg: fmt.Sprintf(format, a...)}
	}
	return permError(554, "5.4.6", format, a...)
}

// resolveStatic looks up configured targets. A target that does not
// resolve is a problem of our table, so the failure is temporary even
// when DNS says the name does not exist.
func (r *Router) resolveStatic(ctx context.Context, d *Decision) error {
	errs := r.lookupHops(ctx, d.Hops, nil)
	for _, h := range d.Hops {
		if why := r.self.which(h.Host, h.Port, h.Addrs); why != "" {
			return loopError(true, "%s sends mail to %s, which is this gateway (%s): the mail would loop", ruleLabel(d.Rule), h, why)
		}
	}
	if anyAddrs(d.Hops) {
		return nil
	}
	return tempError("no target of %s has an address: %s", ruleLabel(d.Rule), joinErrors(errs))
}

// resolveMX finds the MX hosts of domain (or its implicit MX, an address
// literal's address, or the hosts override's addresses) and their
// addresses. MX hosts from the preference of the first one that is this
// gateway onwards are dropped (we may be a backup MX); when that leaves
// nothing, mail would loop.
func (r *Router) resolveMX(ctx context.Context, d *Decision, domain string) error {
	if strings.HasPrefix(domain, "[") {
		ip, err := parseIP(strings.TrimPrefix(strings.Trim(domain, "[]"), "ipv6:"))
		if err != nil {
			return permError(550, "5.1.2", "address literal %s is not an IP address", domain)
		}
		d.Hops = []Hop{{Host: ip.String(), Port: smtpPort, Addrs: []netip.Addr{ip}}}
		d.Reason += "; address literal: no DNS lookup"
		if why := r.self.which(ip.String(), smtpPort, d.Hops[0].Addrs); why != "" {
			return loopError(false, "mail for %s loops back to myself (%s)", domain, why)
		}
		return nil
	}
	if ips, ok := r.hosts[domain]; ok {
		d.Hops = []Hop{{Host: domain, Port: smtpPort, Addrs: slices.Clone(ips)}}
		d.Reason += fmt.Sprintf("; the hosts override lists %s: no MX lookup", domain)
		if why := r.self.which(domain, smtpPort, ips); why != "" {
			return loopError(true, "mail for %s loops back to myself (hosts override: %s)", domain, why)
		}
		return nil
	}
	mxs, err := r.resolver.LookupMX(ctx, domain)
	if err != nil {
		return err
	}
	if len(mxs) == 0 {
		ips, err := r.resolver.LookupAddrs(ctx, domain)
		if err != nil {
			if e := asError(err); e.Temporary {
				return e
			}
			return permError(550, "5.4.4", "domain %s has no MX and no A or AAAA record", domain)
		}
		d.Hops = []Hop{{Host: domain, Port: smtpPort, Addrs: ips}}
		d.Reason += "; no MX records: the domain's own address (implicit MX, RFC 5321 §5.1)"
		if why := r.self.which(domain, smtpPort, ips); why != "" {
			return loopError(false, "mail for %s loops back to myself (implicit MX: %s)", domain, why)
		}
		return nil
	}
	d.Hops = make([]Hop, len(mxs))
	for i, mx := range mxs {
		d.Hops[i] = Hop{Host: mx.Host, Port: smtpPort, Pref: int(mx.Pref)}
	}
	errs := r.lookupHops(ctx, d.Hops, func(h Hop) bool { return r.self.isName(h.Host, h.Port) })
	for i, h := range d.Hops {
		why := r.self.which(h.Host, h.Port, h.Addrs)
		if why == "" {
			continue
		}
		cut := i
		for cut > 0 && d.Hops[cut-1].Pref == h.Pref {
			cut--
		}
		if cut == 0 {
			return loopError(false, "mail for %s loops back to myself (its best MX %s is this gateway: %s)", domain, h.Host, why)
		}
		d.Reason += fmt.Sprintf("; MX hosts from preference %d on were dropped: %s is this gateway (%s)", h.Pref, h.Host, why)
		d.Hops, errs = d.Hops[:cut], errs[:cut]
		break
	}
	if anyAddrs(d.Hops) {
		return nil
	}
	for _, e := range errs {
		if e != nil && e.Temporary {
			return tempError("no MX host of %s could be looked up: %s", domain, joinErrors(errs))
		}
	}
	return permError(550, "5.4.4", "no MX host of %s has an address: %s", domain, joinErrors(errs))
}

// lookupHops fills in the addresses of hops that have none and are not
// skipped, in parallel. It returns each hop's lookup error (nil when it
// resolved) and records the error's text in the hop.
func (r *Router) lookupHops(ctx context.Context, hops []Hop, skip func(Hop) bool) []*Error {
	errs := make([]*Error, len(hops))
	var wg sync.WaitGroup
	for i := range hops {
		if len(hops[i].Addrs) > 0 || (skip != nil && skip(hops[i])) {
			continue
		}
		wg.Go(func() {
			ips, err := r.resolver.LookupAddrs(ctx, hops[i].Host)
			if err != nil {
				errs[i] = asError(err)
				hops[i].Error = errs[i].Msg
				return
			}
			hops[i].Addrs = ips
		})
	}
	wg.Wait()
	return errs
}

func ruleLabel(rule string) string {
	if rule == "smart_host" {
		return "the smart host"
	}
	return fmt.Sprintf("route %q", rule)
}

func anyAddrs(hops []Hop) bool {
	for _, h := range hops {
		if len(h.Addrs) > 0 {
			return true
		}
	}
	return false
}

func joinErrors(errs []*Error) string {
	var parts []string
	for _, e := range errs {
		if e != nil {
			parts = append(parts, e.Msg)
		}
	}
	if len(parts) == 0 {
		return "no address"
	}
	return strings.Join(parts, "; ")
}
