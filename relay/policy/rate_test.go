package policy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/ratelimit"
)

// rateClock is a clock the test moves by hand: buckets refill only when
// it says so.
type rateClock struct{ t time.Time }

func (c *rateClock) now() time.Time { return c.t }

func TestRateLimits(t *testing.T) {
	p := fixture(t, false)
	cfg := ratelimit.DefaultConfig()
	cfg.Client = ratelimit.ClientLimits{ConnectionsPerMinute: 3, MessagesPerMinute: 2, RecipientsPerMinute: 4}
	cfg.User = ratelimit.UserLimits{MessagesPerMinute: 1, RecipientsPerMinute: 2, Sessions: 1}
	cfg.Exempt = []string{"198.51.100.0/24"}
	clock := &rateClock{t: time.Unix(1_800_000_000, 0)}
	lim := ratelimit.New(cfg, clock.now)
	conn := func(ip string, user string) Conn {
		return Conn{IP: netip.MustParseAddr(ip), Helo: "x", Mode: ModeMX, TLS: true, AuthUser: user, Rates: lim.Session()}
	}

	// Connections: three pass, the fourth is told 421 4.7.0; a minute
	// later one more passes.
	c := conn("203.0.113.9", "")
	for i := range 3 {
		if d := p.Admit(c); !d.Accepted() {
			t.Fatalf("connection %d refused: %+v", i+1, d.Verdict)
		}
	}
	d := p.Admit(c)
	if d.Accepted() || d.Code != 421 || d.Enhanced != "4.7.0" || d.Rule != "rate:client.connections_per_minute" {
		t.Fatalf("fourth connection: %+v", d.Verdict)
	}
	if d := p.Admit(conn("203.0.113.10", "")); !d.Accepted() {
		t.Errorf("another client refused: %+v", d.Verdict)
	}
	clock.t = clock.t.Add(20 * time.Second)
	if d := p.Admit(c); !d.Accepted() {
		t.Errorf("refused after 20 s (one connection refilled): %+v", d.Verdict)
	}
	if d := p.Admit(c); d.Accepted() {
		t.Errorf("second connection after 20 s accepted")
	}

	// IPv6 clients count by their /64.
	for i := range 3 {
		if d := p.Admit(conn(fmt.Sprintf("2001:db8::%d", i+1), "")); !d.Accepted() {
			t.Fatalf("v6 connection %d refused", i+1)
		}
	}
	if d := p.Admit(conn("2001:db8::ff", "")); d.Accepted() {
		t.Errorf("a fourth address of one /64 accepted")
	}

	// Messages and recipients of a client: 450 4.7.1 over the limit.
	c = conn("203.0.113.20", "")
	for i := range 2 {
		if d := p.Mail(c, "a@example.com"); !d.Accepted() {
			t.Fatalf("MAIL %d refused: %+v", i+1, d.Verdict)
		}
	}
	if d := p.Mail(c, "a@example.com"); d.Accepted() || d.Code != 450 || d.Enhanced != "4.7.1" || d.Rule != "rate:client.messages_per_minute" {
		t.Errorf("third MAIL: %+v", d.Verdict)
	}
	for i := range 4 {
		if d := p.Rcpt(c, "a@example.com", "user1@test.jp"); !d.Accepted() {
			t.Fatalf("RCPT %d refused: %+v", i+1, d.Verdict)
		}
	}
	if d := p.Rcpt(c, "a@example.com", "user1@test.jp"); d.Accepted() || d.Code != 450 || d.Rule != "rate:client.recipients_per_minute" {
		t.Errorf("fifth RCPT: %+v", d.Verdict)
	}

	// The inner networks and the exempt list are not counted.
	for _, ip := range []string{innerIP.String(), "198.51.100.7"} {
		c := conn(ip, "")
		for i := range 10 {
			if d := p.Admit(c); !d.Accepted() {
				t.Fatalf("%s connection %d refused", ip, i+1)
			}
			if d := p.Mail(c, "user1@test.jp"); d.Rule == "rate:client.messages_per_minute" {
				t.Fatalf("%s MAIL %d rate-limited", ip, i+1)
			}
		}
	}

	// A user: one message a minute, one session sending at once, counted
	// under the user whatever the address.
	a := conn("203.0.113.30", "tanaka@test.jp")
	if d := p.Mail(a, "tanaka@test.jp"); !d.Accepted() {
		t.Fatalf("user MAIL refused: %+v", d.Verdict)
	}
	b := conn("203.0.113.31", "tanaka@test.jp")
	if d := p.Mail(b, "tanaka@test.jp"); d.Accepted() || d.Code != 450 || d.Rule != "rate:user.sessions" {
		t.Errorf("second session's MAIL: %+v", d.Verdict)
	}
	a.Rates.Release()
	if d := p.Mail(b, "tanaka@test.jp"); d.Accepted() || d.Rule != "rate:user.messages_per_minute" {
		t.Errorf("second message within the minute: %+v", d.Verdict)
	}
	if n := lim.Holding("tanaka@test.jp"); n != 1 {
		t.Errorf("%d sessions hold a slot, want 1", n)
	}
	b.Rates.Release()
	if n := lim.Holding("tanaka@test.jp"); n != 0 {
		t.Errorf("%d sessions hold a slot after release", n)
	}

	// Without a limiter (route test, accounts check) nothing is counted.
	free := Conn{IP: internetIP, Helo: "x", Mode: ModeMX}
	for range 10 {
		if d := p.Admit(free); !d.Accepted() {
			t.Fatal("refused without a limiter")
		}
	}
}

func TestRateLimitsExplained(t *testing.T) {
	p := fixture(t, false)
	lim := ratelimit.New(ratelimit.DefaultConfig(), nil)
	for _, tc := range []struct {
		c    Conn
		want string
	}{
		{Conn{IP: internetIP, Rates: lim.Session()}, "client 203.0.113.9: 60 connections, 100 messages, 500 recipients a minute"},
		{Conn{IP: internetIP, AuthUser: "tanaka@test.jp", Rates: lim.Session()}, "client 203.0.113.9: 60 connections a minute; user tanaka@test.jp: 60 messages, 300 recipients a minute, 10 sessions sending at once"},
		{Conn{IP: innerIP, Rates: lim.Session()}, "none, the client is in the inner networks (relay.rate_limits.exempt_inner)"},
		{Conn{IP: internetIP}, "none, no rate limits are counted here"},
	} {
		if got := p.RateLimits(tc.c); got != tc.want {
			t.Errorf("%v %q:\n got %s\nwant %s", tc.c.IP, tc.c.AuthUser, got, tc.want)
		}
	}
}
