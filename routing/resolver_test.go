package routing

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnsclient"
	"github.com/sekisho/sekisho/routing/dnstest"
)

// testResolver builds a resolver that asks only the given fake servers.
func testResolver(t *testing.T, hosts hostsTable, servers ...*dnstest.Server) *Resolver {
	t.Helper()
	cfg := DefaultConfig().DNS
	cfg.Timeout, cfg.Attempts = 300*time.Millisecond, 1
	cfg.Servers = nil
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.Addr)
	}
	r, err := newResolver(cfg, hosts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantError checks that err is an *Error with the given code and status.
func wantError(t *testing.T, what string, err error, code int, enhanced, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error %v (%T), want %d %s", what, err, err, code, enhanced)
		return
	}
	if e.Code != code || e.Enhanced != enhanced || e.Temporary != (code/100 == 4) || !strings.Contains(e.Msg, msg) {
		t.Errorf("%s: error %q (temporary %v), want %d %s ...%s...", what, e, e.Temporary, code, enhanced, msg)
	}
}

func TestLookupMX(t *testing.T) {
	s := dnstest.New(t)
	s.MX("example.jp", 20, "mx2.example.jp")
	s.MX("example.jp", 10, "MX1.example.jp.")
	s.MX("example.jp", 30, "mx3.example.jp")
	s.CNAME("alias.example.jp", "example.jp")
	s.NullMX("nomail.example")
	s.NullMX("mixed.example")
	s.MX("mixed.example", 10, "mx.mixed.example")
	s.A("a-only.example", "192.0.2.5")
	s.ServFail("broken.example")
	s.MX("big.example", 10, "mx.big.example")
	s.Truncate("big.example")
	s.Drop("slow.example")
	r := testResolver(t, nil, s)
	ctx := context.Background()

	for _, name := range []string{"example.jp", "Alias.Example.JP", "big.example"} {
		mx, err := r.LookupMX(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, m := range mx {
			got = append(got, m.Host)
		}
		if name != "big.example" && !slices.Equal(got, []string{"mx1.example.jp", "mx2.example.jp", "mx3.example.jp"}) {
			t.Errorf("%s: MX = %v", name, got)
		}
	}
	if q := s.Queries(); !slices.ContainsFunc(q, func(q dnstest.Query) bool { return q.Name == "big.example." && q.Net == "tcp" }) {
		t.Errorf("truncated answer not retried over TCP: %+v", q)
	}
	if mx, err := r.LookupMX(ctx, "mixed.example"); err != nil || len(mx) != 1 || mx[0].Host != "mx.mixed.example" {
		t.Errorf("null MX among others: %v %v", mx, err)
	}
	if mx, err := r.LookupMX(ctx, "a-only.example"); err != nil || len(mx) != 0 {
		t.Errorf("no MX: %v %v", mx, err)
	}
	_, err := r.LookupMX(ctx, "nomail.example")
	wantError(t, "null MX", err, 556, "5.1.10", "nomail.example accepts no mail (null MX)")
	_, err = r.LookupMX(ctx, "nowhere.example")
	wantError(t, "NXDOMAIN", err, 550, "5.1.2", "domain nowhere.example does not exist")
	_, err = r.LookupMX(ctx, "broken.example")
	wantError(t, "SERVFAIL", err, 451, "4.4.3", "answered SERVFAIL")
	_, err = r.LookupMX(ctx, "slow.example")
	wantError(t, "timeout", err, 451, "4.4.3", "slow.example MX failed")
}

func TestMXShuffleEqualPreferences(t *testing.T) {
	s := dnstest.New(t)
	for _, h := range []string{"a", "b", "c"} {
		s.MX("lb.example", 10, h+".lb.example")
	}
	s.MX("lb.example", 5, "first.lb.example")
	s.MX("lb.example", 20, "last.lb.example")
	r := testResolver(t, nil, s)
	firsts := map[string]int{}
	for range 300 {
		mx, err := r.LookupMX(context.Background(), "lb.example")
		if err != nil {
			t.Fatal(err)
		}
		if len(mx) != 5 || mx[0].Host != "first.lb.example" || mx[4].Host != "last.lb.example" {
			t.Fatalf("order broken: %v", mx)
		}
		firsts[mx[1].Host]++
	}
	if len(firsts) != 3 {
		t.Errorf("equal preferences not shuffled: second place went to %v", firsts)
	}
	if n := s.Count("lb.example", dns.TypeMX); n != 1 {
		t.Errorf("%d MX queries, want 1 (cached)", n)
	}
}

func TestLookupAddrs(t *testing.T) {
	s := dnstest.New(t)
	s.A("dual.example", "192.0.2.1", "192.0.2.2")
	s.AAAA("dual.example", "2001:db8::1")
	s.AAAA("v6.example", "2001:db8::6")
	s.Exists("empty.example")
	s.CNAME("www.example", "dual.example")
	hosts := hostsTable{"inner.example": {netip.MustParseAddr("10.0.0.5")}}
	r := testResolver(t, hosts, s)
	ctx := context.Background()
	tests := []struct {
		host string
		want string
	}{
		{"dual.example", "192.0.2.1 192.0.2.2 2001:db8::1"},
		{"v6.example", "2001:db8::6"},
		{"www.example", "192.0.2.1 192.0.2.2 2001:db8::1"},
		{"inner.example", "10.0.0.5"},
		{"Inner.Example.", "10.0.0.5"},
		{"localhost", "127.0.0.1 ::1"},
		{"192.0.2.77", "192.0.2.77"},
		{"[2001:db8::7]", "2001:db8::7"},
	}
	for _, tt := range tests {
		ips, err := r.LookupAddrs(ctx, tt.host)
		if err != nil {
			t.Errorf("%s: %v", tt.host, err)
			continue
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("LookupAddrs(%s) = %v, want %s", tt.host, got, tt.want)
		}
	}
	if n := s.Count("inner.example", dns.TypeA); n != 0 {
		t.Errorf("hosts override still asked DNS %d times", n)
	}
	_, err := r.LookupAddrs(ctx, "nowhere.example")
	wantError(t, "NXDOMAIN", err, 550, "5.4.4", "host nowhere.example does not exist")
	_, err = r.LookupAddrs(ctx, "empty.example")
	wantError(t, "NODATA", err, 550, "5.4.4", "host empty.example has no A or AAAA record")
	s.Drop("slow.example")
	_, err = r.LookupAddrs(ctx, "slow.example")
	wantError(t, "timeout", err, 451, "4.4.3", "DNS lookup of slow.example")
}

func TestOneFamilyFails(t *testing.T) {
	s := dnstest.New(t)
	s.A("v4.example", "192.0.2.4")
	s.RcodeType("v4.example", dns.TypeAAAA, dns.RcodeServerFailure)
	s.Exists("none.example")
	s.RcodeType("none.example", dns.TypeAAAA, dns.RcodeServerFailure)
	r := testResolver(t, nil, s)
	ips, err := r.LookupAddrs(context.Background(), "v4.example")
	if err != nil || len(ips) != 1 {
		t.Errorf("AAAA failure hid the A answer: %v %v", ips, err)
	}
	// No A record and a failed AAAA question: there may be an address.
	_, err = r.LookupAddrs(context.Background(), "none.example")
	wantError(t, "A NODATA, AAAA SERVFAIL", err, 451, "4.4.3", "none.example AAAA")
}

func TestServerFailover(t *testing.T) {
	bad := dnstest.New(t)
	bad.ServFail("v4only.example")
	good := dnstest.New(t)
	good.A("v4only.example", "192.0.2.4")
	r := testResolver(t, nil, bad, good)
	ips, err := r.LookupAddrs(context.Background(), "v4only.example")
	if err != nil || len(ips) != 1 {
		t.Fatalf("failover: %v %v", ips, err)
	}
	if bad.Count("v4only.example", dns.TypeA) != 1 || good.Count("v4only.example", dns.TypeA) != 1 {
		t.Errorf("queries: bad %v good %v", bad.Queries(), good.Queries())
	}
}

func TestCache(t *testing.T) {
	s := dnstest.New(t)
	s.SetTTL(60)
	s.SetNegativeTTL(30)
	s.MX("example.jp", 10, "mx.example.jp")
	s.ServFail("broken.example")
	r := testResolver(t, nil, s)
	now := time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)
	r.dns = dnsclient.New(dnsclient.Options{Servers: []string{s.Addr}, Timeout: 300 * time.Millisecond,
		CacheSize: DefaultConfig().DNS.CacheSize, Now: func() time.Time { return now }})
	ctx := context.Background()
	ask := func(name string) { r.LookupMX(ctx, name) }
	count := func(name string) int { return s.Count(name, dns.TypeMX) }

	ask("example.jp")
	ask("example.jp")
	now = now.Add(59 * time.Second)
	ask("example.jp")
	if n := count("example.jp"); n != 1 {
		t.Errorf("within TTL: %d queries, want 1", n)
	}
	now = now.Add(2 * time.Second)
	ask("example.jp")
	if n := count("example.jp"); n != 2 {
		t.Errorf("after TTL: %d queries, want 2", n)
	}
	ask("nowhere.example")
	now = now.Add(29 * time.Second)
	ask("nowhere.example")
	if n := count("nowhere.example"); n != 1 {
		t.Errorf("negative answer within SOA minimum: %d queries, want 1", n)
	}
	now = now.Add(2 * time.Second)
	ask("nowhere.example")
	if n := count("nowhere.example"); n != 2 {
		t.Errorf("negative answer after SOA minimum: %d queries, want 2", n)
	}
	ask("broken.example")
	ask("broken.example")
	if n := count("broken.example"); n != 2 {
		t.Errorf("SERVFAIL was cached: %d queries, want 2", n)
	}
}

func TestCNAMENotChased(t *testing.T) {
	s := dnstest.New(t)
	s.SetCNAMEChasing(false)
	s.CNAME("alias.example", "real.example")
	s.MX("real.example", 10, "mx.real.example")
	s.CNAME("loop1.example", "loop2.example")
	s.CNAME("loop2.example", "loop1.example")
	r := testResolver(t, nil, s)
	mx, err := r.LookupMX(context.Background(), "alias.example")
	if err != nil || len(mx) != 1 || mx[0].Host != "mx.real.example" {
		t.Errorf("alias not followed: %v %v", mx, err)
	}
	_, err = r.LookupMX(context.Background(), "loop1.example")
	wantError(t, "CNAME loop", err, 451, "4.4.3", "more than 8 CNAMEs")
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("search example.jp\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o644)
	cfg := DefaultConfig().DNS
	cfg.ResolvConf = conf
	r, _ := newResolver(cfg, nil)
	servers, err := r.dns.Servers()
	if err != nil || !slices.Equal(servers, []string{"192.0.2.53:53", "[2001:db8::53]:53"}) {
		t.Errorf("servers = %v, %v", servers, err)
	}
	cfg.ResolvConf = filepath.Join(dir, "missing")
	r, _ = newResolver(cfg, nil)
	_, err = r.LookupMX(context.Background(), "example.jp")
	wantError(t, "missing resolv.conf", err, 451, "4.4.3", "reading nameservers")
}
