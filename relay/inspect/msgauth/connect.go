package msgauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// ConnectResult is the outcome of the connect-time checks.
type ConnectResult struct {
	// Name is the client's verified host name (forward-confirmed reverse
	// DNS), "" when it has none or the check is off.
	Name string
	// Listed is the block list zone that lists the client, if any.
	Listed string
	Refuse bool
	Reply  smtpd.Reply
}

// CheckConnect runs the DNS allow/block lists and the reverse-DNS
// requirement for a new connection. DNS errors never refuse on the lists
// (a list that cannot be reached must not stop the mail) but answer 421
// under the reverse-DNS requirement, as the lookup may succeed later. The
// replies are greetings: 554 or 421, and the connection is closed (RFC
// 5321 §4.3.2).
// Loopback clients are never checked.
func (v *Verifier) CheckConnect(ctx context.Context, ip netip.Addr) ConnectResult {
	var res ConnectResult
	ip = ip.Unmap()
	if ip.IsLoopback() || !ip.IsValid() {
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	if len(v.cfg.Blocklists) > 0 {
		allowed, blocked := v.lists(ctx, ip)
		if !allowed && blocked != "" {
			res.Listed, res.Refuse = blocked, true
			res.Reply = smtpd.R(554, "5.7.1", fmt.Sprintf("Service unavailable; client [%s] blocked using %s", ip, blocked))
			return res
		}
	}
	if v.cfg.ReverseDNS == ReverseOff {
		return res
	}
	name, err := v.reverse(ctx, ip, v.cfg.ReverseDNS == ReverseForwards)
	switch {
	case err == nil:
		res.Name = name
	case isTemporary(err):
		res.Refuse, res.Reply = true, smtpd.R(421, "4.7.25", fmt.Sprintf("Client host [%s] reverse DNS lookup failed, try again later", ip))
	default:
		res.Refuse, res.Reply = true, smtpd.R(554, "5.7.25", fmt.Sprintf("Client host [%s] has no valid reverse DNS name", ip))
	}
	return res
}

// lists asks every allow and block list at once, so that a connection
// waits for the slowest list rather than for all of them in turn. blocked
// is the first block list, in configuration order, that lists ip.
func (v *Verifier) lists(ctx context.Context, ip netip.Addr) (allowed bool, blocked string) {
	zones := append(append([]string(nil), v.cfg.Allowlists...), v.cfg.Blocklists...)
	hit := make([]bool, len(zones))
	var wg sync.WaitGroup
	for i, z := range zones {
		wg.Go(func() { hit[i] = v.Listed(ctx, ip, z) })
	}
	wg.Wait()
	for i, z := range zones {
		switch {
		case !hit[i]:
		case i < len(v.cfg.Allowlists):
			return true, ""
		case blocked == "":
			blocked = z
		}
	}
	return false, blocked
}

// Listed reports whether zone lists ip: an A record in 127.0.0.0/8 for
// the reversed address under the zone. The 127.255.255.0/24 answers that
// lists use for "query refused" are not listings.
func (v *Verifier) Listed(ctx context.Context, ip netip.Addr, zone string) bool {
	addrs, err := v.dns.LookupIPAddr(ctx, reversedName(ip)+"."+strings.TrimSuffix(zone, ".")+".")
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a4 := a.IP.To4(); a4 != nil && a4[0] == 127 && !(a4[1] == 255 && a4[2] == 255) {
			return true
		}
	}
	return false
}

// reversedName is the DNS list query name: 4.3.2.1 for 1.2.3.4, nibbles
// for IPv6.
func reversedName(ip netip.Addr) string {
	b := ip.AsSlice()
	var parts []string
	if ip.Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			parts = append(parts, fmt.Sprint(b[i]))
		}
	} else {
		const hex = "0123456789abcdef"
		for i := len(b) - 1; i >= 0; i-- {
			parts = append(parts, string(hex[b[i]&0xf]), string(hex[b[i]>>4]))
		}
	}
	return strings.Join(parts, ".")
}

var errNoName = errors.New("no reverse DNS name")

// reverse returns a PTR name of ip; with confirm, only one whose forward
// lookup includes ip.
func (v *Verifier) reverse(ctx context.Context, ip netip.Addr, confirm bool) (string, error) {
	names, err := v.dns.LookupAddr(ctx, ip.String())
	if err != nil {
		return "", err
	}
	var lastErr error = errNoName
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if !confirm {
			return n, nil
		}
		addrs, err := v.dns.LookupIPAddr(ctx, n+".")
		if err != nil {
			lastErr = err
			continue
		}
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip {
				return n, nil
			}
		}
	}
	return "", lastErr
}

// isTemporary tells a DNS failure that may pass from a definite answer.
func isTemporary(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) {
		return !de.IsNotFound
	}
	return !errors.Is(err, errNoName)
}
