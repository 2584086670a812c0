package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func precedenceConfig() Config {
	c := DefaultConfig()
	c.DNS.Servers = []string{"127.0.0.1:1"} // never asked: these tests use Match
	hosts := func(h ...string) TargetConfig { return TargetConfig{Targets: h} }
	c.Routes = []RouteConfig{
		{Name: "vip", Address: "Boss@city.example.lg.jp", TargetConfig: hosts("vip.example.lg.jp")},
		{Name: "inner", Domain: "city.example.lg.jp", TargetConfig: hosts("192.168.0.103:20025", "192.168.0.104:20025")},
		{Name: "lgwan", Domain: "*.lg.jp", TargetConfig: hosts("lgwan-relay.example.lg.jp")},
		{Name: "deeper", Domain: "*.example.lg.jp", TargetConfig: hosts("deep-relay.example.lg.jp")},
		{Name: "from-security", Domain: "city.example.lg.jp", Sender: "security.example.lg.jp", TargetConfig: hosts("sec-gw.example.lg.jp")},
		{Name: "from-alert", Domain: "city.example.lg.jp", Sender: "alert@security.example.lg.jp", TargetConfig: hosts("alert-gw.example.lg.jp")},
		{Name: "from-m365", Domain: "*", Sender: "*.m365.example.jp", TargetConfig: hosts("relay.m365.example.jp:587")},
		{Domain: "capture.example.jp", TargetConfig: TargetConfig{Targets: []string{"dir:/var/spool/capture"}}},
		{Name: "by-mx", Domain: "mx.example.lg.jp", TargetConfig: TargetConfig{Targets: []string{"mx"}, Rewrite: "to-lgwan", Received: "remove-inner"}},
		{Name: "idn", Domain: "*.例え.jp", TargetConfig: hosts("idn-relay.example.jp")},
	}
	return c
}

func TestPrecedence(t *testing.T) {
	r, err := New(precedenceConfig(), Self{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rcpt, sender string
		rule         string
		kind         Kind
	}{
		{"boss@city.example.lg.jp", "", "vip", KindHosts},
		{"BOSS@City.Example.LG.JP", "", "vip", KindHosts},
		{"boss@city.example.lg.jp", "alert@security.example.lg.jp", "vip", KindHosts}, // address tier first
		{"tanaka@city.example.lg.jp", "", "inner", KindHosts},
		{"tanaka@city.example.lg.jp", "someone@example.com", "inner", KindHosts},
		{"tanaka@city.example.lg.jp", "x@security.example.lg.jp", "from-security", KindHosts},
		{"tanaka@city.example.lg.jp", "x@sub.security.example.lg.jp", "inner", KindHosts}, // exact sender domain only
		{"tanaka@city.example.lg.jp", "alert@security.example.lg.jp", "from-alert", KindHosts},
		{"tanaka@city.example.lg.jp", "ALERT@Security.Example.LG.JP", "from-alert", KindHosts},
		{"tanaka@city.example.lg.jp", "a@x.m365.example.jp", "inner", KindHosts}, // domain tier beats "*"
		{"a@town.example.lg.jp", "", "deeper", KindHosts},                        // longest wildcard
		{"a@x.town.example.lg.jp", "", "deeper", KindHosts},
		{"a@pref.aichi.lg.jp", "", "lgwan", KindHosts},
		{"a@lg.jp", "", "", KindMX}, // *.lg.jp does not cover lg.jp
		{"a@example.lg.jp", "", "lgwan", KindHosts},
		{"a@example.com", "", "", KindMX},
		{"a@example.com", "a@x.m365.example.jp", "from-m365", KindHosts},
		{"a@example.com", "a@m365.example.jp", "", KindMX}, // *.m365... is strict subdomains
		{"a@example.com", "not an address", "", KindMX},
		{"a@capture.example.jp", "", "routes[7]", KindDir},
		{"a@mx.example.lg.jp", "", "by-mx", KindMX},
		{"a@[192.0.2.1]", "", "", KindMX},
		{"a@市役所.例え.jp", "", "idn", KindHosts},
		{"a@xn--tkt52vr1h.xn--r8jz45g.jp", "", "idn", KindHosts},
	}
	for _, tt := range tests {
		d, err := r.Match(tt.rcpt, tt.sender)
		if err != nil {
			t.Errorf("Match(%q, %q): %v", tt.rcpt, tt.sender, err)
			continue
		}
		if d.Rule != tt.rule || d.Kind != tt.kind {
			t.Errorf("Match(%q, %q) = rule %q kind %s, want %q %s (%s)", tt.rcpt, tt.sender, d.Rule, d.Kind, tt.rule, tt.kind, d.Reason)
		}
	}
}

func TestMatchDetails(t *testing.T) {
	r, err := New(precedenceConfig(), Self{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := r.Match("tanaka@city.example.lg.jp", "alert@security.example.lg.jp")
	want := `recipient domain city.example.lg.jp matches route "from-alert" (domain city.example.lg.jp) and sender alert@security.example.lg.jp matches its sender condition alert@security.example.lg.jp`
	if d.Reason != want {
		t.Errorf("reason = %q\nwant     %q", d.Reason, want)
	}
	d, _ = r.Match("tanaka@city.example.lg.jp", "")
	if len(d.Hops) != 2 || d.Hops[0].String() != "192.168.0.103:20025" || d.Hops[0].Addrs[0] != netip.MustParseAddr("192.168.0.103") ||
		d.TLS.Mode != TLSOpportunistic || d.Auth != nil {
		t.Errorf("inner decision = %+v", d)
	}
	d, _ = r.Match("a@capture.example.jp", "")
	if d.Dir != "/var/spool/capture" || d.Key != "dir /var/spool/capture" || d.TLS.Mode != "" {
		t.Errorf("dir decision = %+v", d)
	}
	d, _ = r.Match("a@example.com", "")
	if d.Reason != "no route matches example.com: delivery by DNS MX" || len(d.Hops) != 0 {
		t.Errorf("MX decision = %+v", d)
	}
	d, _ = r.Match("a@mx.example.lg.jp", "")
	if d.Rewrite != "to-lgwan" || d.Received != ReceivedRemoveInner || !strings.Contains(d.Key, " rewrite=to-lgwan received=remove-inner") {
		t.Errorf("rewrite = %q, received = %q, key %q", d.Rewrite, d.Received, d.Key)
	}
	if d, _ = r.Match("a@example.com", ""); d.Received != ReceivedKeep || strings.Contains(d.Key, "received") {
		t.Errorf("the default Received policy: %q, key %q", d.Received, d.Key)
	}
	_, err = r.Match("postmaster", "")
	if e, ok := err.(*Error); !ok || e.Code != 501 || e.Enhanced != "5.1.3" || e.Temporary {
		t.Errorf("Match(postmaster) error = %#v", err)
	}
}

func TestKeySharing(t *testing.T) {
	c := precedenceConfig()
	c.Routes = append(c.Routes,
		RouteConfig{Name: "inner2", Domain: "town.example.lg.jp", TargetConfig: TargetConfig{Targets: []string{"192.168.0.103:20025", "192.168.0.104:20025"}}},
		RouteConfig{Name: "inner3", Domain: "village.example.lg.jp", TargetConfig: TargetConfig{Targets: []string{"192.168.0.103:20025", "192.168.0.104:20025"}, TLS: "none"}},
	)
	r, err := New(c, Self{})
	if err != nil {
		t.Fatal(err)
	}
	key := func(rcpt string) string {
		d, err := r.Match(rcpt, "")
		if err != nil {
			t.Fatal(err)
		}
		return d.Key
	}
	a, b, other := key("a@city.example.lg.jp"), key("b@town.example.lg.jp"), key("c@village.example.lg.jp")
	if a != key("z@city.example.lg.jp") || a != b {
		t.Errorf("same hops and policy, different keys: %q %q", a, b)
	}
	if a == other {
		t.Errorf("different TLS policy, same key %q", a)
	}
	if a != "hosts 192.168.0.103:20025,192.168.0.104:20025 tls=opportunistic" {
		t.Errorf("key = %q", a)
	}
}

func TestSelfRouteRefused(t *testing.T) {
	defer stubLocalAddrs("127.0.0.1", "192.0.2.10", "::1")()
	self := Self{
		Hostnames: []string{"gw.city.example.lg.jp"},
		Addrs:     []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:25"), netip.MustParseAddrPort("[::1]:587")},
	}
	tests := []struct {
		name    string
		targets []string
		smart   bool
		hosts   []HostConfig
		extra   SelfConfig
		want    string // "" when accepted
	}{
		{name: "our address", targets: []string{"192.0.2.10"},
			want: `routes[0].targets[0]: route "inner" sends mail to 192.0.2.10:25, which is this gateway (it listens on 0.0.0.0:25, [::1]:587): the mail would loop`},
		{name: "loopback", targets: []string{"inner.example:20025", "127.0.0.1:25"},
			want: `routes[0].targets[1]: route "inner" sends mail to 127.0.0.1:25, which is this gateway`},
		{name: "ipv6 listen", targets: []string{"[::1]:587"}, want: `routes[0].targets[0]: route "inner" sends mail to [::1]:587, which is this gateway`},
		{name: "our name", targets: []string{"GW.city.example.lg.jp"},
			want: `routes[0].targets[0]: route "inner" sends mail to gw.city.example.lg.jp:25, which is this gateway (one of its host names): the mail would loop`},
		{name: "hosts override", targets: []string{"inner.example"}, hosts: []HostConfig{{Name: "inner.example", Addrs: []string{"192.0.2.10"}}},
			want: `routes[0].targets[0]: route "inner" sends mail to inner.example:25, which is this gateway (inner.example has address 192.0.2.10, and it listens on 0.0.0.0:25, [::1]:587)`},
		{name: "localhost", targets: []string{"localhost"}, smart: true,
			want: "smart_host.targets[0]: the smart host sends mail to localhost:25, which is this gateway"},
		{name: "extra self", targets: []string{"203.0.113.5"}, extra: SelfConfig{Addrs: []string{"203.0.113.5"}},
			want: `routes[0].targets[0]: route "inner" sends mail to 203.0.113.5:25, which is this gateway`},
		{name: "extra name", targets: []string{"mx.city.example.lg.jp"}, extra: SelfConfig{Hostnames: []string{"mx.city.example.lg.jp"}},
			want: `routes[0].targets[0]: route "inner" sends mail to mx.city.example.lg.jp:25, which is this gateway`},
		{name: "inner server on our host at 20025", targets: []string{"192.0.2.10:20025", "gw.city.example.lg.jp:20025", "localhost:20025"}},
		{name: "other host", targets: []string{"192.0.2.11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DNS.Servers = []string{"127.0.0.1:1"}
			c.Hosts, c.Self = tt.hosts, tt.extra
			if tt.smart {
				c.SmartHost.Targets = tt.targets
			} else {
				c.Routes = []RouteConfig{{Name: "inner", Domain: "city.example.lg.jp", TargetConfig: TargetConfig{Targets: tt.targets}}}
			}
			_, err := New(c, self)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("accepted a route to this gateway")
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("error = %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

// stubLocalAddrs replaces the interface list and returns the restore func.
func stubLocalAddrs(ips ...string) func() {
	saved := localAddrs
	localAddrs = func() ([]netip.Addr, error) {
		var out []netip.Addr
		for _, ip := range ips {
			out = append(out, netip.MustParseAddr(ip))
		}
		return out, nil
	}
	return func() { localAddrs = saved }
}

func authConfig(t *testing.T, auth AuthConfig) Config {
	t.Helper()
	c := DefaultConfig()
	c.DNS.Servers = []string{"127.0.0.1:1"}
	c.SmartHost = TargetConfig{Targets: []string{"relay.example.jp:587"}, TLS: "required", Auth: auth}
	return c
}

func TestAuthPassword(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("s3cret\r\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("s3cret\n"), 0o644)
	twoLines := filepath.Join(dir, "two")
	os.WriteFile(twoLines, []byte("a\nb\n"), 0o600)
	t.Setenv("TEST_SEKISHO_RELAY_PW", "fr0m-env")

	tests := []struct {
		auth AuthConfig
		want string // password, or "error: ..."
	}{
		{AuthConfig{Mechanism: "plain", Username: "gw", PasswordFile: good}, "s3cret"},
		{AuthConfig{Mechanism: "login", Username: "gw", PasswordEnv: "TEST_SEKISHO_RELAY_PW"}, "fr0m-env"},
		{AuthConfig{Mechanism: "plain", Username: "gw", PasswordEnv: "TEST_SEKISHO_UNSET_PW"},
			"error: smart_host.auth: password_env: environment variable TEST_SEKISHO_UNSET_PW is not set"},
		{AuthConfig{Mechanism: "plain", Username: "gw", PasswordFile: open}, "error: smart_host.auth: password_file: " + open + " is readable by every user"},
		{AuthConfig{Mechanism: "plain", Username: "gw", PasswordFile: twoLines}, "error: smart_host.auth: password_file: " + twoLines + " must hold the password on one line"},
		{AuthConfig{Mechanism: "plain", Username: "gw", PasswordFile: filepath.Join(dir, "missing")}, "error: smart_host.auth: password_file: stat"},
	}
	for _, tt := range tests {
		r, err := New(authConfig(t, tt.auth), Self{})
		if strings.HasPrefix(tt.want, "error: ") {
			if err == nil || !strings.HasPrefix(err.Error(), strings.TrimPrefix(tt.want, "error: ")) {
				t.Errorf("%+v: error %v, want %s", tt.auth, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tt.auth, err)
			continue
		}
		d, _ := r.Match("a@example.com", "")
		if d.Auth == nil || d.Auth.Password != tt.want || d.Auth.Username != "gw" {
			t.Errorf("%+v: auth %#v", tt.auth, d.Auth)
		}
	}
}

func TestAuthNeverPrinted(t *testing.T) {
	t.Setenv("TEST_SEKISHO_RELAY_PW", "hunter2-secret")
	r, err := New(authConfig(t, AuthConfig{Mechanism: "plain", Username: "gw", PasswordEnv: "TEST_SEKISHO_RELAY_PW"}), Self{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := r.Match("a@example.com", "")
	var out bytes.Buffer
	fmt.Fprintf(&out, "%v %+v %#v %s %v %+v %#v", d, d, d, d.Auth, *d.Auth, *d.Auth, d.Auth)
	j, _ := json.Marshal(d)
	out.Write(j)
	slog.New(slog.NewTextHandler(&out, nil)).Info("route", "auth", d.Auth, "decision", d)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("route", "auth", *d.Auth)
	if strings.Contains(out.String(), "hunter2") {
		t.Fatalf("password printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `PLAIN as "gw" (password redacted)`) {
		t.Errorf("auth not described:\n%s", out.String())
	}
}
