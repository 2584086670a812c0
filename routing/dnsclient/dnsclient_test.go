package dnsclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)} }

// testClient asks only the given fake servers, on the test clock.
func testClient(clk *clock, opt Options, servers ...*dnstest.Server) *Client {
	for _, s := range servers {
		opt.Servers = append(opt.Servers, s.Addr)
	}
	if opt.Timeout == 0 {
		opt.Timeout = 300 * time.Millisecond
	}
	opt.Now = clk.Now
	return New(opt)
}

// Each step asks one question after moving the clock; queries is how many
// times the server has been asked that question so far.
func TestCacheTTL(t *testing.T) {
	type step struct {
		after   time.Duration
		name    string
		qtype   uint16
		queries int
	}
	tests := []struct {
		name  string
		zone  func(s *dnstest.Server)
		opt   Options
		off   bool // CacheSize 0
		steps []step
	}{
		{
			name: "positive answer kept for its TTL",
			zone: func(s *dnstest.Server) { s.SetTTL(60); s.MX("example.jp", 10, "mx.example.jp") },
			steps: []step{
				{0, "example.jp", dns.TypeMX, 1},
				{0, "Example.JP.", dns.TypeMX, 1}, // case and trailing dot do not matter
				{59 * time.Second, "example.jp", dns.TypeMX, 1},
				{2 * time.Second, "example.jp", dns.TypeMX, 2},
				{59 * time.Second, "example.jp", dns.TypeMX, 2},
			},
		},
		{
			name: "the smallest TTL of the answer counts",
			zone: func(s *dnstest.Server) {
				s.Add("two.example. 300 IN A 192.0.2.1", "two.example. 20 IN A 192.0.2.2")
			},
			steps: []step{
				{0, "two.example", dns.TypeA, 1},
				{19 * time.Second, "two.example", dns.TypeA, 1},
				{time.Second, "two.example", dns.TypeA, 2},
			},
		},
		{
			name: "NXDOMAIN kept for the SOA minimum",
			zone: func(s *dnstest.Server) { s.SetNegativeTTL(30) },
			steps: []step{
				{0, "nowhere.example", dns.TypeTXT, 1},
				{29 * time.Second, "nowhere.example", dns.TypeTXT, 1},
				{2 * time.Second, "nowhere.example", dns.TypeTXT, 2},
			},
		},
		{
			name: "NODATA kept for the SOA minimum, by type",
			zone: func(s *dnstest.Server) { s.SetNegativeTTL(30); s.A("host.example", "192.0.2.1") },
			steps: []step{
				{0, "host.example", dns.TypeMX, 1},
				{0, "host.example", dns.TypeA, 1},
				{29 * time.Second, "host.example", dns.TypeMX, 1},
				{2 * time.Second, "host.example", dns.TypeMX, 2},
			},
		},
		{
			name: "positive TTL capped",
			zone: func(s *dnstest.Server) { s.SetTTL(86400); s.A("long.example", "192.0.2.1") },
			opt:  Options{MaxTTL: 10 * time.Minute},
			steps: []step{
				{0, "long.example", dns.TypeA, 1},
				{10*time.Minute - time.Second, "long.example", dns.TypeA, 1},
				{time.Second, "long.example", dns.TypeA, 2},
			},
		},
		{
			name: "negative TTL capped, by default at 15 minutes",
			zone: func(s *dnstest.Server) { s.SetNegativeTTL(86400) },
			steps: []step{
				{0, "new.example", dns.TypeTXT, 1},
				{15*time.Minute - time.Second, "new.example", dns.TypeTXT, 1},
				{time.Second, "new.example", dns.TypeTXT, 2},
			},
		},
		{
			name: "TTL 0 is not kept",
			zone: func(s *dnstest.Server) { s.SetTTL(0); s.A("zero.example", "192.0.2.1") },
			steps: []step{
				{0, "zero.example", dns.TypeA, 1},
				{0, "zero.example", dns.TypeA, 2},
			},
		},
		{
			name: "SERVFAIL is never kept",
			zone: func(s *dnstest.Server) { s.ServFail("broken.example") },
			steps: []step{
				{0, "broken.example", dns.TypeMX, 1},
				{0, "broken.example", dns.TypeMX, 2},
			},
		},
		{
			name: "REFUSED is never kept",
			zone: func(s *dnstest.Server) { s.Rcode("refused.example", dns.RcodeRefused) },
			steps: []step{
				{0, "refused.example", dns.TypeTXT, 1},
				{0, "refused.example", dns.TypeTXT, 2},
			},
		},
		{
			name: "cache_size 0 keeps nothing",
			zone: func(s *dnstest.Server) { s.A("host.example", "192.0.2.1") },
			off:  true,
			steps: []step{
				{0, "host.example", dns.TypeA, 1},
				{0, "host.example", dns.TypeA, 2},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dnstest.New(t)
			tc.zone(s)
			clk := newClock()
			if !tc.off {
				tc.opt.CacheSize = 100
			}
			c := testClient(clk, tc.opt, s)
			for i, st := range tc.steps {
				clk.Add(st.after)
				c.Query(context.Background(), st.name, st.qtype)
				if n := s.Count(st.name, st.qtype); n != st.queries {
					t.Errorf("step %d (%s %s): the server was asked %d times, want %d", i, st.name, dns.TypeToString[st.qtype], n, st.queries)
				}
			}
		})
	}
}

// The cache never holds more than CacheSize answers, and drops the least
// recently used first.
func TestCacheBound(t *testing.T) {
	s := dnstest.New(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		s.A(n+".example", "192.0.2.1")
	}
	c := testClient(newClock(), Options{CacheSize: 3}, s)
	ask := func(n string) { c.Query(context.Background(), n+".example", dns.TypeA) }
	ask("a")
	ask("b")
	ask("c")
	ask("a") // a is now the most recently used; b the least
	ask("d")
	if n := c.cache.len(); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
	ask("a")
	ask("c")
	ask("d")
	ask("b")
	want := map[string]int{"a": 1, "b": 2, "c": 1, "d": 1}
	for n, q := range want {
		if got := s.Count(n+".example", dns.TypeA); got != q {
			t.Errorf("%s asked %d times, want %d", n, got, q)
		}
	}

	big := newCache(10)
	for i := range 1000 {
		big.put(cacheKey{name: fmt.Sprintf("h%d.", i), qtype: dns.TypeA}, new(dns.Msg), time.Now().Add(time.Hour))
		if big.len() > 10 || len(big.m) > 10 {
			t.Fatalf("cache grew to %d entries", big.len())
		}
	}
}

func TestErrors(t *testing.T) {
	bad := dnstest.New(t)
	bad.ServFail("failover.example")
	bad.ServFail("broken.example")
	bad.Drop("slow.example")
	good := dnstest.New(t)
	good.A("failover.example", "192.0.2.4")
	good.ServFail("broken.example")
	good.Drop("slow.example")
	good.Add(`big.example. IN TXT "`+strings.Repeat("a", 250)+`"`, `big.example. IN TXT "`+strings.Repeat("b", 250)+`"`,
		`big.example. IN TXT "`+strings.Repeat("c", 250)+`"`, `big.example. IN TXT "`+strings.Repeat("d", 250)+`"`,
		`big.example. IN TXT "`+strings.Repeat("e", 250)+`"`)
	good.Truncate("big.example")
	c := testClient(newClock(), Options{Attempts: 2, CacheSize: 100}, bad, good)
	ctx := context.Background()

	// A server that fails is passed over, in order, each round.
	m, err := c.Query(ctx, "failover.example", dns.TypeA)
	if err != nil || len(m.Answer) != 1 || bad.Count("failover.example", dns.TypeA) != 1 {
		t.Errorf("failover: %v %v, bad server asked %d times", m, err, bad.Count("failover.example", dns.TypeA))
	}
	// Every server, every round, then a temporary error naming the last.
	_, err = c.Query(ctx, "broken.example", dns.TypeMX)
	var e *Error
	want := fmt.Sprintf("DNS lookup of broken.example MX failed: %s answered SERVFAIL", good.Addr)
	if !errors.As(err, &e) || err.Error() != want || e.Timeout() {
		t.Errorf("SERVFAIL: %v, want %q", err, want)
	}
	if n := bad.Count("broken.example", dns.TypeMX) + good.Count("broken.example", dns.TypeMX); n != 4 {
		t.Errorf("SERVFAIL: asked %d times, want 2 servers x 2 rounds", n)
	}
	_, err = c.Query(ctx, "slow.example", dns.TypeA)
	if !errors.As(err, &e) || !e.Timeout() || !strings.HasPrefix(err.Error(), "DNS lookup of slow.example A failed:") {
		t.Errorf("timeout: %v", err)
	}
	// A truncated UDP answer is asked again over TCP.
	m, err = testClient(newClock(), Options{}, good).Query(ctx, "big.example", dns.TypeTXT)
	if err != nil || len(m.Answer) != 5 {
		t.Errorf("truncated: %v %v", m, err)
	}
	if qs := good.Queries(); !slices.ContainsFunc(qs, func(q dnstest.Query) bool { return q.Name == "big.example." && q.Net == "tcp" }) {
		t.Errorf("no TCP retry: %v", qs)
	}
	// An ended context stops before asking.
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Query(done, "other.example", dns.TypeA)
	if !errors.As(err, &e) || e.Asked || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("search example.jp\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o644)
	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, []byte("search example.jp\n"), 0o644)
	for _, tc := range []struct {
		file, want, err string
	}{
		{conf, "192.0.2.53:53 [2001:db8::53]:53", ""},
		{filepath.Join(dir, "missing"), "", "reading nameservers"},
		{empty, "", "lists no nameserver"},
	} {
		c := New(Options{ResolvConf: tc.file})
		servers, err := c.Servers()
		if strings.Join(servers, " ") != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v %v", tc.file, servers, err)
		}
		if tc.err == "" {
			continue
		}
		_, err = c.Query(context.Background(), "example.jp", dns.TypeMX)
		var e *Error
		if !errors.As(err, &e) || e.Asked || !strings.HasPrefix(err.Error(), "DNS lookup of example.jp MX: ") || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: query error %v", tc.file, err)
		}
	}
}

func TestConcurrent(t *testing.T) {
	s := dnstest.New(t)
	s.A("host.example", "192.0.2.1")
	c := testClient(newClock(), Options{CacheSize: 2}, s)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := fmt.Sprintf("n%d.example", i%4)
			if i%2 == 0 {
				name = "host.example"
			}
			if _, err := c.Query(context.Background(), name, dns.TypeA); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := c.cache.len(); n > 2 {
		t.Errorf("%d entries, want at most 2", n)
	}
}
