package ratelimit

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/guard"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTakeRefillsAndReconfigures(t *testing.T) {
	ck := &clock{t: time.Unix(1_800_000_000, 0)}
	cfg := DefaultConfig()
	cfg.Client.MessagesPerMinute = 6
	l := New(cfg, ck.now)
	count := func() int {
		n := 0
		for range 100 {
			if _, ok := l.Take(Client, "192.0.2.1", Messages); ok {
				n++
			}
		}
		return n
	}
	if n := count(); n != 6 {
		t.Fatalf("a fresh client sent %d, want the minute's 6", n)
	}
	ck.t = ck.t.Add(30 * time.Second)
	if n := count(); n != 3 {
		t.Errorf("half a minute later %d more, want 3", n)
	}
	// A reload raises the limit: the bucket takes it at its next event
	// and grows from where it is.
	cfg.Client.MessagesPerMinute = 60
	l.SetConfig(cfg)
	if n := count(); n != 0 {
		t.Errorf("right after the reload %d passed, want 0", n)
	}
	ck.t = ck.t.Add(10 * time.Second)
	if n := count(); n != 10 {
		t.Errorf("10 s after the reload %d passed, want 10", n)
	}
	// Limit 0 is no limit.
	cfg.Client.MessagesPerMinute = 0
	l.SetConfig(cfg)
	if n := count(); n != 100 {
		t.Errorf("without a limit %d of 100 passed", n)
	}
}

func TestBucketsForgottenAndBounded(t *testing.T) {
	ck := &clock{t: time.Unix(1_800_000_000, 0)}
	l := New(DefaultConfig(), ck.now)
	const max = 500
	l.maxKeys = max
	for i := range max {
		l.Take(Client, fmt.Sprint(i), Connections)
	}
	if n := len(l.buckets); n != max {
		t.Fatalf("%d buckets, want %d", n, max)
	}
	// Full: a new client is let through uncounted rather than grow the
	// map, and the map is scanned once a second, not per newcomer.
	l.Take(Client, "newcomer", Connections)
	swept := l.lastSweep
	for i := range 99 {
		ck.t = ck.t.Add(5 * time.Millisecond)
		if _, ok := l.Take(Client, fmt.Sprint("newcomer", i), Connections); !ok {
			t.Fatal("newcomer refused while the table is full")
		}
	}
	if l.lastSweep != swept {
		t.Errorf("the full map was swept again %v after the last sweep", l.lastSweep.Sub(swept))
	}
	ck.t = ck.t.Add(time.Second)
	l.Take(Client, "one more", Connections)
	if l.lastSweep == swept {
		t.Error("the full map was not swept after a second")
	}
	if len(l.buckets) > max {
		t.Fatalf("%d buckets, over the bound", len(l.buckets))
	}
	// Once their minute has passed, the buckets are full again and go.
	ck.t = ck.t.Add(2 * time.Minute)
	l.Take(Client, "later", Connections)
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}

func TestSessionsHeld(t *testing.T) {
	cfg := DefaultConfig()
	cfg.User.Sessions = 2
	l := New(cfg, nil)
	a, b, c := l.Session(), l.Session(), l.Session()
	for _, s := range []*Session{a, a, b} {
		if _, ok := s.Hold("u@example.jp"); !ok {
			t.Fatal("refused within the limit")
		}
	}
	if _, ok := c.Hold("u@example.jp"); ok {
		t.Fatal("third session accepted over a limit of 2")
	}
	if _, ok := c.Hold("v@example.jp"); !ok {
		t.Fatal("another user refused")
	}
	a.Release()
	a.Release()
	c.Release()
	if _, ok := c.Hold("u@example.jp"); !ok {
		t.Fatal("refused after a slot was given back")
	}
	if n := l.Holding("u@example.jp"); n != 2 {
		t.Errorf("%d held, want 2", n)
	}
	if n := l.Holding("v@example.jp"); n != 0 {
		t.Errorf("v holds %d after switching", n)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "192.0.2.1",
		"::ffff:192.0.2.1":   "192.0.2.1",
		"2001:db8:1:2:3::4":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ff::9": "2001:db8:1:2::/64",
	} {
		if got := ClientKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("ClientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestExempt(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exempt = []string{"198.51.100.0/24", "2001:db8::1"}
	l := New(cfg, nil)
	for ip, want := range map[string]bool{"198.51.100.9": true, "::ffff:198.51.100.9": true, "2001:db8::1": true, "2001:db8::2": false, "192.0.2.1": false} {
		if got := l.Exempt(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Exempt(%s) = %v", ip, got)
		}
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Client.MessagesPerMinute = -1
	c.User.Sessions = -2
	c.Exempt = []string{"10.0.0.1/8", "nowhere", "10.1.0.0/16"}
	want := `client.messages_per_minute: must not be negative (0: no limit), got -1
user.sessions: must not be negative (0: no limit), got -2
exempt[0]: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?
exempt[1]: "nowhere" is neither an IP address nor a CIDR block`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{"192.0.2.0/24", "2001:db8::1", "10.0.0.1/8", "::ffff:1.2.3.4", "::ffff:1.2.3.4/128", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := guard.ParseNetwork(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() {
			t.Fatalf("%q gave %v", s, p)
		}
	})
}
