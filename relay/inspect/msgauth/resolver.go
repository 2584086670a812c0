package msgauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnsclient"
)

// Resolver is the DNS the checks use; *net.Resolver satisfies it, and so
// does blitiri.com.ar/go/spf's DNSResolver.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// exchangeTimeout bounds one DNS exchange; Config.Timeout bounds all of a
// message's or a connection's lookups.
const exchangeTimeout = 5 * time.Second

// NewResolver returns a caching resolver that asks servers ("ip" or
// "ip:port") in order, or the nameservers of /etc/resolv.conf when servers
// is empty: read by routing/dnsclient at the first query, as the router's
// are, so that a start, a reload or `config check` with the checks off
// reads nothing. Tests point it at routing/dnstest.
func NewResolver(servers []string) (Resolver, error) {
	if len(servers) == 0 {
		return newCachingResolver(nil, "/etc/resolv.conf", exchangeTimeout, nil)
	}
	return NewCachingResolver(servers, exchangeTimeout)
}

// maxCacheEntries bounds the answers kept.
const maxCacheEntries = 10000

// CachingResolver answers the checks' lookups through routing/dnsclient,
// which asks DNS servers directly and keeps answers, negative ones too,
// for their TTL: Go's resolver keeps nothing, and each message's SPF, DKIM
// and DMARC records are mostly the same few domains. Errors are
// *net.DNSError, as the SPF and DMARC libraries expect.
type CachingResolver struct {
	dns *dnsclient.Client
}

// NewCachingResolver asks servers ("ip" or "ip:port") in order, each
// exchange bounded by timeout.
func NewCachingResolver(servers []string, timeout time.Duration) (*CachingResolver, error) {
	if len(servers) == 0 {
		return nil, errors.New("no DNS server")
	}
	return newCachingResolver(servers, "", timeout, nil)
}

// newCachingResolver is NewCachingResolver on a clock (nil: time.Now),
// or, without servers, on those of the resolv.conf file named.
func newCachingResolver(servers []string, resolvConf string, timeout time.Duration, now func() time.Time) (*CachingResolver, error) {
	opt := dnsclient.Options{Timeout: timeout, CacheSize: maxCacheEntries, Now: now, ResolvConf: resolvConf}
	for _, s := range servers {
		a, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		opt.Servers = append(opt.Servers, a)
	}
	return &CachingResolver{dns: dnsclient.New(opt)}, nil
}

// query returns a NOERROR or NXDOMAIN answer for name/qtype. A name that
// cannot be asked is a name that does not exist (RFC 7208 §4.3, §4.8): an
// SPF record or macro that makes one must not turn into a temperror that
// defers mail for days.
func (r *CachingResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	wire, ok := queryName(name)
	if !ok {
		return nil, &net.DNSError{Err: "malformed domain name", Name: name, IsNotFound: true}
	}
	m, err := r.dns.Query(ctx, wire, qtype)
	if err != nil {
		de := &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
		if e := (*dnsclient.Error)(nil); errors.As(err, &e) {
			de.Err, de.IsTimeout = e.Err.Error(), e.Timeout()
		}
		return nil, de
	}
	return m, nil
}

// queryName writes name, raw octets between dots as the checks hold it
// (SPF macros expand to spaces and percent signs), in DNS presentation
// form, and reports whether it is a name DNS can carry: no empty label
// but the root's, none over 63 octets, 255 octets in all.
func queryName(name string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		case strings.IndexByte(` '@;()"\`, c) >= 0:
			// Escaped as miekg/dns writes the question it reads back,
			// so that the answer's question compares equal.
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if _, ok := dns.IsDomainName(s); !ok || s == "" || s == "." {
		return "", false
	}
	return s, true
}

// records returns the answer records of type T; none is a not-found error.
func records[T dns.RR](r *CachingResolver, ctx context.Context, name string, qtype uint16) ([]T, error) {
	m, err := r.query(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, rr := range m.Answer {
		if t, ok := rr.(T); ok {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return out, nil
}

// LookupTXT returns each TXT record's strings joined.
func (r *CachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := records[*dns.TXT](r, ctx, name, dns.TypeTXT)
	var out []string
	for _, t := range rrs {
		out = append(out, strings.Join(t.Txt, ""))
	}
	return out, err
}

// LookupMX returns the mail exchangers.
func (r *CachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := records[*dns.MX](r, ctx, name, dns.TypeMX)
	var out []*net.MX
	for _, m := range rrs {
		out = append(out, &net.MX{Host: m.Mx, Pref: m.Preference})
	}
	return out, err
}

// LookupIPAddr returns the A and AAAA addresses.
func (r *CachingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	as, errA := records[*dns.A](r, ctx, host, dns.TypeA)
	for _, a := range as {
		out = append(out, net.IPAddr{IP: a.A})
	}
	aaaas, errAAAA := records[*dns.AAAA](r, ctx, host, dns.TypeAAAA)
	for _, a := range aaaas {
		out = append(out, net.IPAddr{IP: a.AAAA})
	}
	if len(out) > 0 {
		return out, nil
	}
	// A temporary failure of either type outweighs a not-found of the
	// other.
	var de *net.DNSError
	if errors.As(errA, &de) && de.IsTemporary {
		return nil, errA
	}
	return nil, errAAAA
}

// LookupAddr returns the PTR names of an address.
func (r *CachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr}
	}
	rrs, err := records[*dns.PTR](r, ctx, rev, dns.TypePTR)
	var out []string
	for _, p := range rrs {
		out = append(out, p.Ptr)
	}
	return out, err
}
