package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// addrPattern matches an envelope address. Local parts compare without
// ASCII case (a deny rule must not be dodged by writing Postmaster@), domains
// in canonical form.
type addrPattern struct {
	any        bool   // "*": every address, the null sender included
	null       bool   // "<>": the null sender only
	local      string // folded; "" with anyLocal
	prefix     bool   // local is a prefix ("2009*@d")
	anyLocal   bool   // "*@d"
	domain     string // canonical
	subdomains bool   // "*.d": strict subdomains of domain, not d itself
}

// compilePattern reads one of: *, <>, user@domain, prefix*@domain,
// *@domain, each with domain optionally written *.domain.
func compilePattern(s string) (addrPattern, error) {
	switch s {
	case "":
		return addrPattern{}, errors.New("empty pattern")
	case "*":
		return addrPattern{any: true}, nil
	case "<>":
		return addrPattern{null: true}, nil
	}
	l, d, ok := addr.Split(s)
	if !ok {
		return addrPattern{}, fmt.Errorf("%q is not *, <>, user@domain, prefix*@domain or *@domain", s)
	}
	var p addrPattern
	if rest, sub := strings.CutPrefix(d, "*."); sub {
		p.subdomains, d = true, rest
	}
	if strings.Contains(d, "*") {
		return addrPattern{}, fmt.Errorf("%q: '*' in a domain only as a leading \"*.\"", s)
	}
	dom, err := addr.Domain(d)
	if err != nil {
		return addrPattern{}, fmt.Errorf("%q: %v", s, err)
	}
	p.domain = dom
	switch star := strings.IndexByte(l, '*'); {
	case l == "*":
		p.anyLocal = true
	case star == len(l)-1:
		p.prefix, p.local = true, addr.FoldLocal(l[:star])
	case star >= 0:
		return addrPattern{}, fmt.Errorf("%q: '*' in a local part only at its end", s)
	default:
		if err := addr.CheckLocal(l); err != nil {
			return addrPattern{}, fmt.Errorf("%q: %v", s, err)
		}
		p.local = addr.FoldLocal(l)
	}
	if strings.ContainsAny(p.local, "@") {
		return addrPattern{}, fmt.Errorf("%q: more than one '@'", s)
	}
	return p, nil
}

// match reports whether the address matches; e is the parsed address.
func (p addrPattern) match(e envAddr) bool {
	switch {
	case p.any:
		return true
	case p.null:
		return e.null
	case e.null:
		return false
	}
	if p.subdomains {
		if !strings.HasSuffix(e.domain, "."+p.domain) {
			return false
		}
	} else if e.domain != p.domain {
		return false
	}
	switch {
	case p.anyLocal:
		return true
	case p.prefix:
		return strings.HasPrefix(e.folded, p.local)
	}
	return e.folded == p.local
}

// envAddr is an envelope address split and normalized once per check.
type envAddr struct {
	raw    string
	null   bool
	local  string // as given
	folded string // ASCII lower case
	domain string // canonical
}

func (e envAddr) String() string {
	if e.null {
		return "<>"
	}
	return e.local + "@" + e.domain
}

type patternList []addrPattern

func compilePatterns(key string, in []string) (patternList, []error) {
	var out patternList
	var errs []error
	for i, s := range in {
		p, err := compilePattern(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %v", key, i, err))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// orAll returns nil when the list holds "*": the condition is then no
// condition at all.
func (l patternList) orAll() patternList {
	for _, p := range l {
		if p.any {
			return nil
		}
	}
	return l
}

// match: an empty list matches everything.
func (l patternList) match(e envAddr) bool {
	if len(l) == 0 {
		return true
	}
	for _, p := range l {
		if p.match(e) {
			return true
		}
	}
	return false
}

type networkList []netip.Prefix

// ParseNetwork reads a CIDR block or a single address, as every network
// the configuration names is written. Host bits are an error:
// "192.168.0.1/24" is a typo more often than a meaning.
func ParseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR block", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block: %v", s, err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 networks in dotted form", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
	}
	return p, nil
}

func parseNetworks(key string, in []string) (networkList, []error) {
	var out networkList
	var errs []error
	for i, s := range in {
		p, err := ParseNetwork(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %v", key, i, err))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// contains: an empty list matches every client.
func (l networkList) contains(ip netip.Addr) bool {
	if len(l) == 0 {
		return true
	}
	return l.has(ip)
}

// everyone reports whether the list holds a /0 block.
func (l networkList) everyone() bool {
	for _, p := range l {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

// has: an empty list matches nothing.
func (l networkList) has(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
