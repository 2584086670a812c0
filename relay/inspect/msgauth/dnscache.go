package msgauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxCacheTTL caps how long an answer is kept whatever its TTL, and
// maxCacheEntries bounds the cache (it is emptied when full: simple, and
// a busy gateway refills the hot entries at once).
const (
	maxCacheTTL     = time.Hour
	maxCacheEntries = 10000
)

// CachingResolver asks DNS servers directly (UDP, TCP when truncated) and
// keeps answers, negative ones too, for their TTL. Go's resolver keeps
// nothing, and each message's SPF, DKIM and DMARC records are mostly the
// same few domains. Errors are *net.DNSError, as the SPF and DMARC
// libraries expect.
type CachingResolver struct {
	servers []string
	timeout time.Duration
	next    atomic.Uint32
	now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	msg     *dns.Msg
	expires time.Time
}

// NewCachingResolver asks servers ("ip" or "ip:port") in turn, each
// exchange bounded by timeout.
func NewCachingResolver(servers []string, timeout time.Duration) (*CachingResolver, error) {
	r := &CachingResolver{timeout: timeout, now: time.Now, cache: map[cacheKey]cacheEntry{}}
	for _, s := range servers {
		a, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, a)
	}
	if len(r.servers) == 0 {
		return nil, errors.New("no DNS server")
	}
	return r, nil
}

// query returns a NOERROR or NXDOMAIN answer for name/qtype.
func (r *CachingResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	fq := dns.Fqdn(strings.ToLower(name))
	key := cacheKey{fq, qtype}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.msg, nil
	}
	q := new(dns.Msg)
	q.SetQuestion(fq, qtype)
	q.SetEdns0(1232, false)
	var last error
	for range len(r.servers) {
		srv := r.servers[int(r.next.Add(1))%len(r.servers)]
		m, err := r.exchange(ctx, q, srv)
		if err != nil {
			last = err
			continue
		}
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			last = errors.New(dns.RcodeToString[m.Rcode])
			continue
		}
		if ttl := answerTTL(m); ttl > 0 {
			r.mu.Lock()
			if len(r.cache) >= maxCacheEntries {
				clear(r.cache)
			}
			r.cache[key] = cacheEntry{m, now.Add(ttl)}
			r.mu.Unlock()
		}
		return m, nil
	}
	return nil, &net.DNSError{Err: last.Error(), Name: name, IsTemporary: true, IsTimeout: errors.Is(last, context.DeadlineExceeded)}
}

func (r *CachingResolver) exchange(ctx context.Context, q *dns.Msg, srv string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	m, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, q, srv)
	if err == nil && m.Truncated {
		m, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, q, srv)
	}
	if err == nil && m.Id != q.Id {
		err = errors.New("answer to another question")
	}
	return m, err
}

// answerTTL is the smallest TTL of the answer, or for a negative answer
// the SOA's negative TTL (RFC 2308), capped at maxCacheTTL.
func answerTTL(m *dns.Msg) time.Duration {
	ttl := uint32(maxCacheTTL / time.Second)
	rrs := m.Answer
	if len(rrs) == 0 {
		rrs = nil
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
				rrs = append(rrs, rr)
			}
		}
		if rrs == nil {
			return 0 // no SOA: do not cache a negative answer
		}
	}
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return time.Duration(ttl) * time.Second
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
