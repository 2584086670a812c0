// Package dnsclient is the gateway's one caching DNS stub resolver on
// miekg/dns: it asks the configured servers (UDP, TCP when the answer is
// truncated) and keeps their answers, negative ones too, in a bounded
// cache. The router asks it for MX, A and AAAA records; the sender checks
// (relay/inspect/msgauth) for TXT, PTR and block-list A records.
//
// It lives under routing, which has owned the gateway's DNS (servers,
// resolv.conf, timeouts), in a package of its own so that msgauth can
// share it without importing the router. It knows records, not mail: what
// an answer means (a null MX, an alias to follow, a not-found error) is
// the caller's.
//
// Caching follows RFC 2308: a positive answer is kept for its smallest
// TTL, a negative one (NXDOMAIN, or NOERROR with no record of the type:
// NODATA) for the SOA's negative TTL, min(SOA TTL, SOA MINIMUM), and not
// at all without an SOA. Both are capped (MaxTTL, MaxNegativeTTL), so a
// change in DNS shows within the cap whatever a zone says. Failures
// (SERVFAIL, REFUSED, timeouts) are never kept: the next question asks
// again. The cache holds at most CacheSize answers and drops the least
// recently used.
package dnsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size we advertise (the DNS flag day 2020
// value, which avoids IP fragmentation).
const ednsSize = 1232

// Defaults of Options.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultMaxTTL         = time.Hour
	DefaultMaxNegativeTTL = 15 * time.Minute
)

// Options configure a Client.
type Options struct {
	// Servers are "ip:port". Empty: the nameservers of ResolvConf, read
	// on the first query, so that commands that never ask DNS do not need
	// the file.
	Servers    []string
	ResolvConf string
	// Timeout bounds one exchange with one server (0: DefaultTimeout);
	// Attempts is how many rounds over the server list a query makes
	// before it fails (0: 1). Servers are asked in order, the first one
	// first, as resolv.conf lists them.
	Timeout  time.Duration
	Attempts int
	// CacheSize is the most answers kept; 0 keeps none.
	CacheSize int
	// MaxTTL and MaxNegativeTTL cap how long positive and negative
	// answers are kept (0: the defaults). A negative answer is capped
	// shorter: a record just published should not stay hidden long.
	MaxTTL         time.Duration
	MaxNegativeTTL time.Duration
	// Now is the clock (nil: time.Now); tests step it instead of sleeping.
	Now func() time.Time
}

// Client asks DNS servers and caches their answers. It is safe for
// concurrent use.
type Client struct {
	opt   Options
	cache *cache

	loadOnce sync.Once
	servers  []string
	loadErr  error
}

// New returns a client. It does not read ResolvConf yet.
func New(opt Options) *Client {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	opt.Attempts = max(opt.Attempts, 1)
	if opt.MaxTTL <= 0 {
		opt.MaxTTL = DefaultMaxTTL
	}
	if opt.MaxNegativeTTL <= 0 {
		opt.MaxNegativeTTL = DefaultMaxNegativeTTL
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Client{opt: opt, cache: newCache(max(opt.CacheSize, 0))}
}

// Error is a query that got no usable answer. It is always temporary: the
// same question may be answered later.
type Error struct {
	Name string // as asked, without the trailing dot
	Type uint16
	// Asked is true when every server was tried (and Err is the last
	// failure); false when none could be (no server, the context ended).
	Asked bool
	Err   error
}

func (e *Error) Error() string {
	if e.Asked {
		return fmt.Sprintf("DNS lookup of %s %s failed: %v", e.Name, dns.TypeToString[e.Type], e.Err)
	}
	return fmt.Sprintf("DNS lookup of %s %s: %v", e.Name, dns.TypeToString[e.Type], e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a server that did not answer
// in time.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || errors.As(e.Err, &ne) && ne.Timeout()
}

// Servers returns the servers asked: the configured ones, or those of
// ResolvConf.
func (c *Client) Servers() ([]string, error) {
	if len(c.opt.Servers) > 0 {
		return c.opt.Servers, nil
	}
	c.loadOnce.Do(func() {
		cc, err := dns.ClientConfigFromFile(c.opt.ResolvConf)
		if err != nil {
			c.loadErr = fmt.Errorf("reading nameservers: %v", err)
			return
		}
		for _, s := range cc.Servers {
			c.servers = append(c.servers, net.JoinHostPort(s, cc.Port))
		}
		if len(c.servers) == 0 {
			c.loadErr = fmt.Errorf("%s lists no nameserver", c.opt.ResolvConf)
		}
	})
	return c.servers, c.loadErr
}

// Query returns the answer to name/qtype: NOERROR (with or without
// records) or NXDOMAIN, from the cache or the servers. Any other outcome
// is an *Error once every server has been tried Attempts times. The answer
// may be shared with other callers: it must not be modified.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	key := cacheKey{fqdn, qtype}
	if m := c.cache.get(key, c.opt.Now()); m != nil {
		return m, nil
	}
	fail := func(asked bool, err error) error {
		return &Error{Name: strings.TrimSuffix(fqdn, "."), Type: qtype, Asked: asked, Err: err}
	}
	servers, err := c.Servers()
	if err != nil {
		return nil, fail(false, err)
	}
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.SetEdns0(ednsSize, false)
	var last error
	for range c.opt.Attempts {
		for _, s := range servers {
			if err := ctx.Err(); err != nil {
				return nil, fail(false, err)
			}
			m, err := c.exchange(ctx, q, s)
			if err != nil {
				last = err
				continue
			}
			switch m.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				if ttl := c.ttl(m); ttl > 0 {
					c.cache.put(key, m, c.opt.Now().Add(ttl))
				}
				return m, nil
			}
			last = fmt.Errorf("%s answered %s", s, dns.RcodeToString[m.Rcode])
		}
	}
	return nil, fail(true, last)
}

// exchange sends q to one server over UDP, and again over TCP when the
// answer comes back truncated. miekg/dns checks the message ID; the
// question is checked here.
func (c *Client) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	cl := &dns.Client{Net: "udp", Timeout: c.opt.Timeout, UDPSize: ednsSize}
	m, _, err := cl.ExchangeContext(ctx, q, server)
	if err == nil && m.Truncated {
		cl.Net = "tcp"
		m, _, err = cl.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	want := q.Question[0]
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, want.Name) || m.Question[0].Qtype != want.Qtype {
		return nil, fmt.Errorf("%s answered another question", server)
	}
	return m, nil
}

// ttl is how long an answer may be kept (RFC 2308, see the package doc);
// 0 means not at all.
func (c *Client) ttl(m *dns.Msg) time.Duration {
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		ttl := m.Answer[0].Header().Ttl
		for _, rr := range m.Answer[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return min(time.Duration(ttl)*time.Second, c.opt.MaxTTL)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, c.opt.MaxNegativeTTL)
		}
	}
	return 0
}
