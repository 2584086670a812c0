package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// smtpPort is where MX hosts and targets without a port are reached.
const smtpPort = 25

// hostPort is one configured next hop: a host name (canonical, A-labels)
// or an IP literal, and a port.
type hostPort struct {
	host string     // canonical name, or the IP in text form
	ip   netip.Addr // valid when host is an IP literal
	port int
}

func (h hostPort) String() string {
	if h.ip.Is6() {
		return "[" + h.host + "]:" + strconv.Itoa(h.port)
	}
	return h.host + ":" + strconv.Itoa(h.port)
}

// parseHostPort reads "host", "host:port", "192.0.2.1:25", "[2001:db8::1]:25",
// "[192.0.2.1]" or a bare IPv6 address; defPort applies when none is given.
// Host names are normalized to lower-case A-labels.
func parseHostPort(s string, defPort int) (hostPort, error) {
	if s == "" {
		return hostPort{}, errors.New("empty host")
	}
	if strings.TrimSpace(s) != s {
		return hostPort{}, fmt.Errorf("%q has surrounding spaces", s)
	}
	host, portText := s, ""
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hostPort{}, fmt.Errorf("%q: missing ']'", s)
		}
		host, portText = s[1:end], s[end+1:]
		if portText != "" {
			if portText[0] != ':' {
				return hostPort{}, fmt.Errorf("%q: expected ':port' after ']'", s)
			}
			portText = portText[1:]
			if portText == "" {
				return hostPort{}, fmt.Errorf("%q: empty port", s)
			}
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return hostPort{}, fmt.Errorf("%q: brackets hold an IP address, not %q", s, host)
		}
	case strings.Count(s, ":") > 1:
		// A bare IPv6 address; with a port it must be bracketed.
		if _, err := netip.ParseAddr(s); err != nil {
			return hostPort{}, fmt.Errorf("%q is not an IPv6 address (write [addr]:port to give a port)", s)
		}
	case strings.Contains(s, ":"):
		i := strings.IndexByte(s, ':')
		host, portText = s[:i], s[i+1:]
		if portText == "" {
			return hostPort{}, fmt.Errorf("%q: empty port", s)
		}
	}
	port := defPort
	if portText != "" {
		p, err := parsePort(portText)
		if err != nil {
			return hostPort{}, fmt.Errorf("%q: %v", s, err)
		}
		port = p
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return hostPort{}, fmt.Errorf("%q: zoned addresses are not supported", s)
		}
		ip = ip.Unmap()
		return hostPort{host: ip.String(), ip: ip, port: port}, nil
	}
	name, err := hostName(host)
	if err != nil {
		if host == s {
			return hostPort{}, err
		}
		return hostPort{}, fmt.Errorf("%q: %v", s, err)
	}
	return hostPort{host: name, port: port}, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 || s[0] == '+' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return p, nil
}

// hostName checks and normalizes a host name (not an IP).
func hostName(s string) (string, error) {
	if looksNumeric(s) {
		return "", fmt.Errorf("%q is not a valid IP address", s)
	}
	d, err := addr.Domain(s)
	if err != nil {
		return "", err
	}
	if addr.IsDomainLiteral(d) {
		return "", fmt.Errorf("%q is not a host name", s)
	}
	return d, nil
}

// looksNumeric catches "192.168.0.x"-style typos and "192.168.0.300": a name
// whose last label is all digits cannot be a host name (no TLD is numeric),
// and a name made of digits, dots and 'x' is an IP placeholder someone
// forgot to fill in.
func looksNumeric(s string) bool {
	s = strings.TrimSuffix(s, ".")
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	digits := strings.Trim(last, "0123456789") == ""
	if digits {
		return true
	}
	return strings.Count(s, ".") == 3 && strings.Trim(s, "0123456789.xX*") == ""
}

// Match kinds, from the least to the most specific recipient match.
type matchKind uint8

const (
	matchAny      matchKind = iota // "*" (sender conditions only) or no condition
	matchWildcard                  // "*.example.jp": strict subdomains
	matchDomain                    // "example.jp"
	matchAddress                   // "user@example.jp"
)

// matcher is a parsed domain or address condition.
type matcher struct {
	kind  matchKind
	value string // canonical domain, suffix without "*." or address key
}

func (m matcher) String() string {
	switch m.kind {
	case matchAny:
		return "*"
	case matchWildcard:
		return "*." + m.value
	}
	return m.value
}

// matches reports whether the matcher covers a canonical domain and address
// key (as built by addressKey).
func (m matcher) matches(domain, key string) bool {
	switch m.kind {
	case matchAny:
		return true
	case matchWildcard:
		return len(domain) > len(m.value) && strings.HasSuffix(domain, m.value) &&
			domain[len(domain)-len(m.value)-1] == '.'
	case matchDomain:
		return domain == m.value
	}
	return key == m.value
}

// score orders matchers of one kind: an exact address or domain beats any
// wildcard, and a longer wildcard beats a shorter one.
func (m matcher) score() int {
	switch m.kind {
	case matchAddress:
		return 3 << 16
	case matchDomain:
		return 2 << 16
	case matchWildcard:
		return 1<<16 + len(m.value)
	}
	return 0
}

// parseDomainPattern reads "example.jp", "*.example.jp" or (when allowAny)
// "*".
func parseDomainPattern(s string, allowAny bool) (matcher, error) {
	switch {
	case s == "*":
		if !allowAny {
			return matcher{}, errors.New(`"*" matches every domain: use smart_host for a catch-all`)
		}
		return matcher{kind: matchAny}, nil
	case strings.HasPrefix(s, "*."):
		d, err := addr.Domain(s[2:])
		if err != nil {
			return matcher{}, err
		}
		if addr.IsDomainLiteral(d) {
			return matcher{}, fmt.Errorf("%q: a wildcard cannot cover an address literal", s)
		}
		return matcher{kind: matchWildcard, value: d}, nil
	case strings.Contains(s, "*"):
		return matcher{}, fmt.Errorf("%q: '*' is only allowed as a whole leading label (*.example.jp)", s)
	}
	d, err := addr.Domain(s)
	if err != nil {
		return matcher{}, err
	}
	return matcher{kind: matchDomain, value: d}, nil
}

// parseAddressPattern reads a full address.
func parseAddressPattern(s string) (matcher, error) {
	local, domain, err := addr.Parse(s)
	if err != nil {
		return matcher{}, err
	}
	if strings.Contains(local, "*") {
		return matcher{}, fmt.Errorf("%q: wildcards are not allowed in an address (use domain)", s)
	}
	return matcher{kind: matchAddress, value: addressKey(local, domain)}, nil
}

// parseSenderPattern reads a sender condition: an address, a domain or a
// "*.domain" wildcard.
func parseSenderPattern(s string) (matcher, error) {
	if strings.Contains(s, "@") {
		return parseAddressPattern(s)
	}
	return parseDomainPattern(s, false)
}

// addressKey is the routing key of an address: local parts compare without
// regard to ASCII case, as the accounts mirror does by default.
func addressKey(local, domain string) string {
	return addr.Key(local, domain, true)
}
