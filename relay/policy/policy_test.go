package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

var (
	innerIP    = netip.MustParseAddr("192.168.0.103")
	internetIP = netip.MustParseAddr("203.0.113.9")
)

// fixture is a small gateway: test.jp (case-insensitive, mirrored),
// case.jp (case-sensitive), the regional city.jp rewritten into test.jp,
// and an alias whose target the rewrite sends outside.
func fixture(t testing.TB, allowInsecure bool) *Policy {
	t.Helper()
	ac := accounts.DefaultConfig()
	ac.Protected = []string{"postmaster"}
	ac.Domains = []accounts.DomainConfig{{Name: "test.jp", Mode: "mirror"}, {Name: "case.jp", Mode: "mirror", LocalPartCase: "sensitive"}}
	ac.Accounts = []accounts.AccountConfig{
		{Address: "tanaka@test.jp", Secret: "{PLAIN}x"},
		{Address: "user1@test.jp"},
		{Address: "helpdesk@test.jp"},
		{Address: "baito@test.jp", OutboundBlocked: true, Secret: "{PLAIN}x"},
		{Address: "nosecret@test.jp"},
		{Address: "Tanaka@case.jp"},
		{Address: "tanaka@case.jp"},
	}
	ac.Aliases = []accounts.AliasConfig{{Alias: "info@test.jp", Target: "helpdesk@test.jp"}, {Alias: "kikaku@test.jp", Target: "tanaka@test.jp"}}
	dir, err := accounts.Open(ac)
	if err != nil {
		t.Fatal(err)
	}
	rc := rewrite.DefaultConfig()
	rc.Rules = []rewrite.RuleConfig{
		{Name: "regional-to-lg", Domain: "city.jp", Replace: "test.jp", Source: []string{"internet", "inner", "authenticated"}},
		{Name: "helpdesk-outsourced", Address: "helpdesk@test.jp", Replace: "helpdesk@partner.example", Source: []string{"internet", "inner", "authenticated"}, Classes: []string{"envelope_recipient"}},
	}
	rw, err := rewrite.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	gc := guard.DefaultConfig()
	gc.InnerNetworks = []string{"192.168.0.0/24"}
	g, err := guard.New(gc, func() *accounts.Directory { return dir })
	if err != nil {
		t.Fatal(err)
	}
	roc := routing.DefaultConfig()
	roc.Routes = []routing.RouteConfig{{Name: "inner", Domain: "test.jp", TargetConfig: routing.TargetConfig{Targets: []string{"192.168.0.103:25"}, TLS: "none"}},
		// The seeds' ping-pong: a foreign domain sent to the inner server.
		{Name: "misrouted", Domain: "foreign.example", TargetConfig: routing.TargetConfig{Targets: []string{"192.168.0.103:25"}, TLS: "none"}}}
	roc.SmartHost = routing.TargetConfig{Targets: []string{"198.51.100.1:25"}, TLS: "none"}
	router, err := routing.New(roc, routing.Self{Hostnames: []string{"gw.test.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Parts{Dir: dir, Rewriter: rw, Router: router, Guard: g, MaxReceived: 30, AllowInsecureAuth: allowInsecure, Hostname: "gw.test.jp"})
}

func TestStages(t *testing.T) {
	p := fixture(t, false)
	internet := Conn{IP: internetIP, Helo: "x", Mode: ModeMX}
	inner := Conn{IP: innerIP, Helo: "x", Mode: ModeMX}
	tests := []struct {
		name     string
		decide   func() Decision
		code     int
		enhanced string
		rule     string
	}{
		{"bare HELO", func() Decision { return p.Helo(internet, "") }, 250, "", "builtin:helo"},
		{"HELO with a control character", func() Decision { return p.Helo(internet, "a\x00b") }, 501, "5.5.4", "builtin:helo"},
		{"HELO", func() Decision { return p.Helo(internet, "mail.example") }, 250, "", "builtin:helo"},
		{"AUTH without TLS", func() Decision { return p.Auth(internet, "tanaka@test.jp") }, 523, "5.7.10", "builtin:auth-tls"},
		{"AUTH unknown account", func() Decision { return p.Auth(Conn{IP: internetIP, TLS: true}, "nobody@test.jp") }, 535, "5.7.8", "builtin:auth"},
		{"AUTH account without secret", func() Decision { return p.Auth(Conn{IP: internetIP, TLS: true}, "nosecret@test.jp") }, 535, "5.7.8", "builtin:auth"},
		{"AUTH under TLS", func() Decision { return p.Auth(Conn{IP: internetIP, TLS: true}, "tanaka@test.jp") }, 235, "2.7.0", "builtin:auth"},
		{"submission without AUTH", func() Decision { return p.Mail(Conn{IP: internetIP, Mode: ModeSubmission}, "a@example.org") }, 530, "5.7.0", "builtin:submission"},
		{"require_tls", func() Decision { return p.Mail(Conn{IP: internetIP, RequireTLS: true}, "a@example.org") }, 530, "5.7.0", "builtin:require-tls"},
		// A sender rewritten into our domains meets the spoofing check.
		{"sender rewritten into ours", func() Decision { return p.Mail(internet, "tanaka@city.jp") }, 553, "5.7.1", "builtin:spoof"},
		{"foreign sender", func() Decision { return p.Mail(internet, "a@example.org") }, 250, "2.1.0", "builtin:sender"},
		{"inner sender rewritten", func() Decision { return p.Mail(inner, "tanaka@city.jp") }, 250, "2.1.0", "builtin:inner-network"},
		// The alias's target is rewritten outside: a relay for an
		// internet client.
		{"alias target rewritten outside", func() Decision { return p.Rcpt(internet, "a@example.org", "info@test.jp") }, 554, "5.7.1", "builtin:relay"},
		{"alias target rewritten outside, inner", func() Decision { return p.Rcpt(inner, "tanaka@test.jp", "info@test.jp") }, 250, "2.1.5", "builtin:local-recipient"},
		{"alias", func() Decision { return p.Rcpt(internet, "a@example.org", "kikaku@test.jp") }, 250, "2.1.5", "builtin:local-recipient"},
		// An outbound-blocked account reached by a sender rewrite.
		{"outbound block after sender rewrite", func() Decision { return p.Rcpt(inner, "baito@city.jp", "friend@example.org") }, 550, "5.7.1", "builtin:outbound-blocked"},
		{"relay", func() Decision { return p.Rcpt(internet, "a@example.org", "b@example.org") }, 554, "5.7.1", "builtin:relay"},
		{"case-sensitive domain, other case", func() Decision { return p.Rcpt(internet, "a@example.org", "TANAKA@case.jp") }, 550, "5.1.1", "builtin:unknown-recipient"},
		{"no recipients", func() Decision { _, d := p.Data(internet, "a@example.org", nil, []byte("\r\n")); return d }, 503, "5.5.1", "builtin:no-recipients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.decide()
			if d.Code != tt.code || d.Enhanced != tt.enhanced || d.Rule != tt.rule {
				t.Errorf("got %d %s %s (%s); want %d %s %s", d.Code, d.Enhanced, d.Rule, d.Reason, tt.code, tt.enhanced, tt.rule)
			}
		})
	}
}

func TestRcptResolvesAndRoutes(t *testing.T) {
	p := fixture(t, false)
	internet := Conn{IP: internetIP, Helo: "x"}
	inner := Conn{IP: innerIP, Helo: "x"}
	tests := []struct {
		conn                   Conn
		from, to               string
		target, rewritten, hop string
	}{
		{internet, "a@example.org", "kikaku@test.jp", "tanaka@test.jp", "tanaka@test.jp", "inner"},
		{inner, "a@example.org", "tanaka@city.jp", "tanaka@city.jp", "tanaka@test.jp", "inner"},
		{inner, "tanaka@test.jp", "info@test.jp", "helpdesk@test.jp", "helpdesk@partner.example", "smart_host"},
		{inner, "tanaka@test.jp", "b@example.org", "b@example.org", "b@example.org", "smart_host"},
	}
	for _, tt := range tests {
		d := p.Rcpt(tt.conn, tt.from, tt.to)
		if !d.Accepted() {
			t.Errorf("%s: refused %d %s", tt.to, d.Code, d.Reason)
			continue
		}
		if d.Target != tt.target || d.Rewritten != tt.rewritten || d.Route == nil || d.Route.Rule != tt.hop {
			t.Errorf("%s: target %s rewritten %s route %+v; want %s %s %s", tt.to, d.Target, d.Rewritten, d.Route, tt.target, tt.rewritten, tt.hop)
		}
	}
}

// Duplicates are one mailbox only where the domain folds local parts.
func TestDataDedupeFollowsLocalPartCase(t *testing.T) {
	p := fixture(t, false)
	c := Conn{IP: innerIP, Helo: "x"}
	tests := []struct {
		rcpts []string
		want  []string
	}{
		{[]string{"Tanaka@case.jp", "tanaka@case.jp"}, []string{"Tanaka@case.jp", "tanaka@case.jp"}},
		{[]string{"Tanaka@test.jp", "tanaka@test.jp"}, []string{"tanaka@test.jp"}},
		{[]string{"kikaku@test.jp", "tanaka@test.jp"}, []string{"tanaka@test.jp"}},
		{[]string{"X@example.org", "x@example.org"}, []string{"X@example.org", "x@example.org"}},
	}
	for _, tt := range tests {
		var decs []Decision
		for _, r := range tt.rcpts {
			d := p.Rcpt(c, "tanaka@test.jp", r)
			if !d.Accepted() {
				t.Fatalf("%s refused: %s", r, d.Reason)
			}
			decs = append(decs, d)
		}
		m, d := p.Data(c, "tanaka@test.jp", decs, []byte("From: <tanaka@test.jp>\r\n\r\n"))
		if !d.Accepted() {
			t.Fatalf("%v: DATA refused: %s", tt.rcpts, d.Reason)
		}
		var got []string
		for _, q := range m.Rcpts {
			got = append(got, q.Addr)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%v: queued %v, want %v", tt.rcpts, got, tt.want)
		}
	}
}

func TestDataHops(t *testing.T) {
	p := fixture(t, false)
	c := Conn{IP: innerIP, Helo: "x"}
	d := p.Rcpt(c, "tanaka@test.jp", "user1@test.jp")
	h := strings.Repeat("Received: from x by y; Sun, 1 Nov 2026 00:00:00 +0900\r\n", 31) + "\r\n"
	if _, v := p.Data(c, "tanaka@test.jp", []Decision{d}, []byte(h)); v.Code != 554 || v.Enhanced != "5.4.6" {
		t.Errorf("31 Received fields: %d %s, want 554 5.4.6", v.Code, v.Enhanced)
	}
}

func TestAuthOffered(t *testing.T) {
	tests := []struct {
		insecure bool
		c        Conn
		want     bool
	}{
		{false, Conn{}, false},
		{false, Conn{TLS: true}, true},
		{true, Conn{}, true},
		{true, Conn{RequireTLS: true}, false},
	}
	for _, tt := range tests {
		if got := fixture(t, tt.insecure).AuthOffered(tt.c); got != tt.want {
			t.Errorf("allow_insecure %v, %+v: %v, want %v", tt.insecure, tt.c, got, tt.want)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"<>", "", ""},
		{"", "", ""},
		{"<a@b.jp>", "a@b.jp", ""},
		{"a@b.jp", "a@b.jp", ""},
		{`"user1"@test.jp`, "user1@test.jp", ""},
		{`<"user 1"@test.jp>`, "user 1@test.jp", ""},
		{`<"a\"b"@test.jp>`, `a"b@test.jp`, ""},
		{`"a@b"@test.jp`, "a@b@test.jp", ""},
		{"<@relay.example:a@b.jp>", "a@b.jp", ""},
		{"nodomain", "", "not of the form"},
		{"a@", "", "empty domain"},
		{"<a@b.jp", "", "missing '>'"},
		{`"open@b.jp`, "", "malformed quoted"},
		{"a b@c.jp", "", "malformed local part"},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePath(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<>", "<a@b>", `"x y"@z`, "<@r:a@b>", `"a\"@b`, "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParsePath(s)
		if err != nil || a == "" {
			return
		}
		// Like the server's parser: local part '@' domain, and the text
		// after the last '@' free of white space and brackets (the guard
		// judges what else is wrong: "a@b@c" is a relay trick).
		i := strings.LastIndexByte(a, '@')
		if i < 0 || strings.ContainsAny(a[i+1:], " \t<>") {
			t.Fatalf("ParsePath(%q) = %q: not local@domain", s, a)
		}
	})
}

// The per-recipient cost on the live path: guard, alias, rewrite preview,
// route match.
func BenchmarkRcpt(b *testing.B) {
	p := fixture(b, false)
	c := Conn{IP: internetIP, Helo: "x"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Rcpt(c, "a@example.org", "kikaku@test.jp"); !d.Accepted() {
			b.Fatal(d.Reason)
		}
	}
}

// The same without the route: what the session paid before the policy.
func BenchmarkRcptWithoutRoute(b *testing.B) {
	p := fixture(b, false)
	p.p.Router = nil
	c := Conn{IP: internetIP, Helo: "x"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Rcpt(c, "a@example.org", "kikaku@test.jp"); !d.Accepted() {
			b.Fatal(d.Reason)
		}
	}
}
