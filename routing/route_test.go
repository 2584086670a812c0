package routing

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// routeWorld is a fake DNS with the seeds' world: an LGWAN relay, internet
// domains with MX, and this gateway at 192.0.2.25 (gw.city.example.lg.jp).
func routeWorld(t *testing.T) (*dnstest.Server, *Router) {
	t.Helper()
	return routeWorldWith(t, nil)
}

// routeWorldWith is routeWorld with edit applied to the configuration.
func routeWorldWith(t *testing.T, edit func(*Config)) (*dnstest.Server, *Router) {
	t.Helper()
	s := dnstest.New(t)
	s.A("lgwan-relay.example.lg.jp", "10.1.0.25")
	s.MX("example.com", 10, "mx1.example.com")
	s.MX("example.com", 20, "mx2.example.com")
	s.A("mx1.example.com", "192.0.2.1")
	s.AAAA("mx1.example.com", "2001:db8::1")
	s.A("mx2.example.com", "192.0.2.2")
	s.MX("example.net", 10, "mx1.example.com")
	s.MX("example.net", 20, "mx2.example.com")
	s.A("a-only.example", "192.0.2.3")
	s.Exists("empty.example")
	s.NullMX("nomail.example")
	s.ServFail("broken.example")
	s.MX("backup.example", 10, "primary.backup.example")
	s.MX("backup.example", 20, "gw.city.example.lg.jp") // we are the backup MX
	s.A("primary.backup.example", "192.0.2.10")
	s.MX("loop.example", 10, "mx.loop.example")
	s.A("mx.loop.example", "192.0.2.25") // our address under another name
	s.MX("siblings.example", 10, "gw.city.example.lg.jp")
	s.MX("siblings.example", 10, "gw2.city.example.lg.jp")
	s.A("gw2.city.example.lg.jp", "192.0.2.26")
	s.MX("dangling.example", 10, "gone1.dangling.example")
	s.MX("dangling.example", 20, "gone2.dangling.example")
	s.MX("flaky.example", 10, "gone.flaky.example")
	s.MX("flaky.example", 20, "broken.flaky.example")
	s.ServFail("broken.flaky.example")
	s.A("points-home.example", "192.0.2.25")

	c := DefaultConfig()
	c.DNS.Servers = []string{s.Addr}
	c.DNS.Timeout, c.DNS.Attempts = 500*time.Millisecond, 1
	c.Hosts = []HostConfig{{Name: "partner.example", Addrs: []string{"198.51.100.7"}}}
	c.Routes = []RouteConfig{
		{Name: "inner", Domain: "city.example.lg.jp", TargetConfig: TargetConfig{Targets: []string{"192.168.0.103:20025"}, TLS: "none"}},
		{Name: "lgwan", Domain: "*.lg.jp", TargetConfig: TargetConfig{Targets: []string{"lgwan-relay.example.lg.jp"}}},
		{Name: "failover", Domain: "failover.example", TargetConfig: TargetConfig{Targets: []string{"gone.example", "lgwan-relay.example.lg.jp:2525"}}},
		{Name: "dead", Domain: "dead.example", TargetConfig: TargetConfig{Targets: []string{"gone.example", "broken.example"}}},
		{Name: "home", Domain: "home.example", TargetConfig: TargetConfig{Targets: []string{"points-home.example"}}},
	}
	if edit != nil {
		edit(&c)
	}
	r, err := New(c, Self{
		Hostnames: []string{"gw.city.example.lg.jp"},
		Addrs:     []netip.AddrPort{netip.MustParseAddrPort("192.0.2.25:25")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func hopsText(hops []Hop) string {
	var parts []string
	for _, h := range hops {
		p := fmt.Sprintf("%s/%d%v", h, h.Pref, h.Addrs)
		if h.Error != "" {
			p += "!" + h.Error
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestRoute(t *testing.T) {
	_, r := routeWorld(t)
	tests := []struct {
		rcpt   string
		hops   string
		reason string // substring
	}{
		{"tanaka@city.example.lg.jp", "192.168.0.103:20025/0[192.168.0.103]", `matches route "inner"`},
		{"a@pref.aichi.lg.jp", "lgwan-relay.example.lg.jp:25/0[10.1.0.25]", `(domain *.lg.jp)`},
		{"a@failover.example", "gone.example:25/0[]!host gone.example does not exist (DNS NXDOMAIN) lgwan-relay.example.lg.jp:2525/0[10.1.0.25]", ""},
		{"a@example.com", "mx1.example.com:25/10[192.0.2.1 2001:db8::1] mx2.example.com:25/20[192.0.2.2]", "delivery by DNS MX"},
		{"a@a-only.example", "a-only.example:25/0[192.0.2.3]", "implicit MX"},
		{"a@backup.example", "primary.backup.example:25/10[192.0.2.10]", "MX hosts from preference 20 on were dropped: gw.city.example.lg.jp is this gateway (one of its host names)"},
		{"a@partner.example", "partner.example:25/0[198.51.100.7]", "the hosts override lists partner.example: no MX lookup"},
		{"a@[192.0.2.99]", "192.0.2.99:25/0[192.0.2.99]", "address literal"},
		{"a@[IPv6:2001:db8::99]", "[2001:db8::99]:25/0[2001:db8::99]", "address literal"},
		{"a@dangling.example", "", "error: 550 5.4.4 no MX host of dangling.example has an address: host gone1.dangling.example does not exist (DNS NXDOMAIN); host gone2"},
		{"a@flaky.example", "", "error: 451 4.4.3 no MX host of flaky.example could be looked up"},
		{"a@nowhere.example", "", "error: 550 5.1.2 domain nowhere.example does not exist (DNS NXDOMAIN)"},
		{"a@nomail.example", "", "error: 556 5.1.10 domain nomail.example accepts no mail (null MX)"},
		{"a@broken.example", "", "error: 451 4.4.3 DNS lookup of broken.example MX failed"},
		{"a@empty.example", "", "error: 550 5.4.4 domain empty.example has no MX and no A or AAAA record"},
		{"a@loop.example", "", "error: 554 5.4.6 mail for loop.example loops back to myself (its best MX mx.loop.example is this gateway: mx.loop.example has address 192.0.2.25, and it listens on 192.0.2.25:25)"},
		{"a@siblings.example", "", "error: 554 5.4.6 mail for siblings.example loops back to myself"},
		{"a@[192.0.2.25]", "", "error: 554 5.4.6 mail for [192.0.2.25] loops back to myself (it listens on 192.0.2.25:25)"},
		{"a@dead.example", "", "error: 451 4.4.3 no target of route \"dead\" has an address: host gone.example does not exist (DNS NXDOMAIN); DNS lookup of broken.example"},
		{"a@home.example", "", "error: 451 4.4.6 route \"home\" sends mail to points-home.example:25, which is this gateway"},
	}
	for _, tt := range tests {
		d, err := r.Route(context.Background(), tt.rcpt, "")
		if want, ok := strings.CutPrefix(tt.reason, "error: "); ok {
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Route(%s): error %v\nwant prefix       %s", tt.rcpt, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("Route(%s): %v", tt.rcpt, err)
			continue
		}
		if got := hopsText(d.Hops); got != tt.hops {
			t.Errorf("Route(%s) hops = %s\nwant                %s", tt.rcpt, got, tt.hops)
		}
		if !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("Route(%s) reason = %q, want it to contain %q", tt.rcpt, d.Reason, tt.reason)
		}
	}
}

func TestRouteKeys(t *testing.T) {
	_, r := routeWorld(t)
	key := func(rcpt string) string {
		d, err := r.Route(context.Background(), rcpt, "")
		if err != nil {
			t.Fatal(err)
		}
		return d.Key
	}
	com, net := key("a@example.com"), key("b@example.net")
	if com != net || com != "mx 00010/mx1.example.com:25,00020/mx2.example.com:25 tls=opportunistic" {
		t.Errorf("domains sharing MX hosts: keys %q and %q", com, net)
	}
	if key("a@a-only.example") == com {
		t.Error("different next hops share a key")
	}
}

func TestRouteHonoursContext(t *testing.T) {
	// A resolver timeout of a minute: only the context can end the
	// lookup within the bound below.
	s, r := routeWorldWith(t, func(c *Config) { c.DNS.Timeout = time.Minute })
	s.Drop("slow.example")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Route(ctx, "a@slow.example", "")
	wantError(t, "cancelled lookup", err, 451, "4.4.3", "slow.example")
	// Without the context the dropped query would wait the resolver's
	// minute: anything well under it is the context's doing, however
	// busy the machine.
	if time.Since(start) > 20*time.Second {
		t.Errorf("lookup ran %v past its context deadline", time.Since(start))
	}
	if n := s.Count("slow.example", dns.TypeMX); n != 1 {
		t.Errorf("%d queries after the deadline", n)
	}
}

func TestRouteErrorKeepsExplanation(t *testing.T) {
	_, r := routeWorld(t)
	d, err := r.Route(context.Background(), "a@dead.example", "")
	if err == nil {
		t.Fatal("no error")
	}
	if d.Rule != "dead" || d.Key != "" || len(d.Hops) != 2 || d.Hops[0].Error == "" {
		t.Errorf("decision with the error = %+v", d)
	}
}

func TestRouteConcurrent(t *testing.T) {
	_, r := routeWorld(t)
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for _, rcpt := range []string{"a@example.com", "b@pref.aichi.lg.jp", "c@a-only.example", "d@backup.example"} {
				if _, e := r.Route(context.Background(), fmt.Sprintf("u%d.%s", i, rcpt), ""); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	c := precedenceConfig()
	for i := range 500 {
		c.Routes = append(c.Routes, RouteConfig{Domain: fmt.Sprintf("town%d.example.lg.jp", i), TargetConfig: TargetConfig{Targets: []string{"192.168.0.103:20025"}}})
	}
	r, err := New(c, Self{})
	if err != nil {
		b.Fatal(err)
	}
	rcpts := []string{"tanaka@town250.example.lg.jp", "a@x.y.pref.aichi.lg.jp", "someone@example.com"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := r.Match(rcpts[i%len(rcpts)], "soumu@city.example.lg.jp"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRouteCached(b *testing.B) {
	s := dnstest.New(b)
	s.MX("example.com", 10, "mx1.example.com")
	s.A("mx1.example.com", "192.0.2.1")
	c := DefaultConfig()
	c.DNS.Servers = []string{s.Addr}
	r, err := New(c, Self{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Route(ctx, "a@example.com", ""); err != nil {
			b.Fatal(err)
		}
	}
}
