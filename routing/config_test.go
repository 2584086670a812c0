package routing

import (
	"strings"
	"testing"
	"time"
)

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in   string
		want string // hostPort.String(), or "error: substring"
	}{
		{"mail.example.jp", "mail.example.jp:25"},
		{"Mail.Example.JP:2525", "mail.example.jp:2525"},
		{"192.168.0.103:20025", "192.168.0.103:20025"},
		{"192.168.0.103", "192.168.0.103:25"},
		{"[192.168.0.103]", "192.168.0.103:25"},
		{"[2001:db8::1]:587", "[2001:db8::1]:587"},
		{"2001:db8::1", "[2001:db8::1]:25"},
		{"[::ffff:192.0.2.1]:25", "192.0.2.1:25"},
		{"例え.jp", "xn--r8jz45g.jp:25"},
		{"", "error: empty host"},
		{" mail.example.jp", "error: surrounding spaces"},
		{"mail.example.jp:", "error: empty port"},
		{"mail.example.jp:0", "error: port \"0\""},
		{"mail.example.jp:65536", "error: port"},
		{"mail.example.jp:+25", "error: port"},
		{"mail.example.jp:smtp", "error: port"},
		{"192.168.0.x", "error: not a valid IP address"},
		{"192.168.0.300", "error: not a valid IP address"},
		{"2001:db8::1:25x", "error: not an IPv6 address"},
		{"[mail.example.jp]:25", "error: brackets hold an IP address"},
		{"[2001:db8::1", "error: missing ']'"},
		{"[2001:db8::1]25", "error: expected ':port'"},
		{"[fe80::1%eth0]:25", "error: zoned"},
		{"bad_host..jp", "error:"},
	}
	for _, tt := range tests {
		hp, err := parseHostPort(tt.in, smtpPort)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = hp.String()
		}
		if strings.HasPrefix(tt.want, "error:") {
			if err == nil || !strings.Contains(got, strings.TrimPrefix(tt.want, "error: ")) {
				t.Errorf("parseHostPort(%q) = %q, want %s", tt.in, got, tt.want)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("parseHostPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":        "127.0.0.1:53",
		"127.0.0.1:5353":   "127.0.0.1:5353",
		"::1":              "[::1]:53",
		"[::1]:5353":       "[::1]:5353",
		"ns.example.jp":    "error",
		"127.0.0.1:99999":  "error",
		"[::1]:":           "error",
		"::1:5353:garbage": "error",
	} {
		got, err := parseServer(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parseServer(%q) = %q, want %q", in, got, want)
		}
	}
}

// validConfig is a small valid section to break one key at a time.
func validConfig() Config {
	c := DefaultConfig()
	c.DNS.Servers = []string{"127.0.0.1:5353"}
	c.Routes = []RouteConfig{
		{Name: "inner", Domain: "city.example.lg.jp", TargetConfig: TargetConfig{Targets: []string{"192.168.0.103:20025"}, TLS: "none"}},
		{Name: "lgwan", Domain: "*.lg.jp", TargetConfig: TargetConfig{Targets: []string{"lgwan-relay.example.lg.jp"}}},
	}
	return c
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"no condition", func(c *Config) { c.Routes[0].Domain = "" },
			[]string{"routes[0].domain: missing (set domain or address)"}},
		{"both conditions", func(c *Config) { c.Routes[0].Address = "a@city.example.lg.jp" },
			[]string{"routes[0].domain: set either domain or address, not both"}},
		{"bad domain", func(c *Config) { c.Routes[0].Domain = "city..jp" },
			[]string{"routes[0].domain: "}},
		{"star without sender", func(c *Config) { c.Routes[0].Domain = "*" },
			[]string{`routes[0].domain: "*" matches every domain: use smart_host`}},
		{"star with sender", func(c *Config) { c.Routes[0].Domain, c.Routes[0].Sender = "*", "example.jp" }, nil},
		{"inner star", func(c *Config) { c.Routes[0].Domain = "city.*.jp" },
			[]string{"routes[0].domain: \"city.*.jp\": '*' is only allowed as a whole leading label"}},
		{"wildcard address", func(c *Config) { c.Routes[0].Domain, c.Routes[0].Address = "", "*@city.example.lg.jp" },
			[]string{"routes[0].address: \"*@city.example.lg.jp\": wildcards are not allowed"}},
		{"bad sender", func(c *Config) { c.Routes[0].Sender = "a@" },
			[]string{"routes[0].sender: "}},
		{"duplicate condition", func(c *Config) { c.Routes[1].Domain = "City.Example.LG.JP" },
			[]string{"routes[1]: same recipient and sender condition as routes[0]"}},
		{"same domain other sender", func(c *Config) { c.Routes[1].Domain, c.Routes[1].Sender = "city.example.lg.jp", "x.jp" }, nil},
		{"duplicate name", func(c *Config) { c.Routes[1].Name = "inner" },
			[]string{`routes[1].name: "inner" is already the name of routes[0]`}},
		{"no targets", func(c *Config) { c.Routes[0].Targets = nil },
			[]string{"routes[0].targets: missing"}},
		{"mx with hosts", func(c *Config) { c.Routes[0].Targets = []string{"a.jp", "mx"} },
			[]string{`routes[0].targets[1]: "mx" cannot be combined with other targets`}},
		{"empty dir", func(c *Config) { c.Routes[0].Targets = []string{"dir:"}; c.Routes[0].TLS = "" },
			[]string{`routes[0].targets[0]: "dir:" needs a path`}},
		{"dir with tls", func(c *Config) { c.Routes[0].Targets = []string{"dir:/tmp/x"} },
			[]string{"routes[0].targets: a dir: target takes no tls, auth or max_connections"}},
		{"repeated target", func(c *Config) { c.Routes[1].Targets = []string{"a.jp", "A.jp:25"} },
			[]string{"routes[1].targets[1]: a.jp:25 repeats targets[0]"}},
		{"bad target", func(c *Config) { c.Routes[1].Targets = []string{"a.jp", "192.168.0.x"} },
			[]string{`routes[1].targets[1]: "192.168.0.x" is not a valid IP address`}},
		{"bad tls", func(c *Config) { c.Routes[0].TLS = "yes" },
			[]string{`routes[0].tls: "yes" is not a TLS policy (none, opportunistic, required)`}},
		{"ca without required", func(c *Config) { c.Routes[0].TLSCAFile = "/ca.pem" },
			[]string{"routes[0].tls_ca_file: only used with tls: required"}},
		{"required with ca", func(c *Config) {
			c.Routes[0].TLS, c.Routes[0].TLSCAFile, c.Routes[0].TLSServerName = "required", "/ca.pem", "inner.example.lg.jp"
		}, nil},
		{"received policy", func(c *Config) {
			c.Routes[0].Received = "mask-inner"
			c.SmartHost = TargetConfig{Targets: []string{"mx"}, Received: "remove-inner"}
		}, nil},
		{"bad received policy", func(c *Config) { c.Routes[0].Received = "strip" },
			[]string{`routes[0].received: "strip" is not a Received policy (keep, mask-inner, remove-inner)`}},
		{"negative max", func(c *Config) { c.Routes[0].MaxConnections = -1 },
			[]string{"routes[0].max_connections: must not be negative"}},
		{"auth incomplete", func(c *Config) {
			c.Routes[0].TLS = "required"
			c.Routes[0].Auth = AuthConfig{Mechanism: "cram-md5"}
		}, []string{
			`routes[0].auth.mechanism: "cram-md5" is not a supported mechanism (plain, login)`,
			"routes[0].auth.username: missing",
			"routes[0].auth.password_file: missing (set password_file or password_env)",
		}},
		{"auth in clear", func(c *Config) {
			c.Routes[0].Auth = AuthConfig{Mechanism: "plain", Username: "u", PasswordEnv: "X"}
		}, []string{"routes[0].auth.mechanism: AUTH needs tls: required (or auth.allow_plaintext: true)"}},
		{"auth in clear allowed", func(c *Config) {
			c.Routes[0].Auth = AuthConfig{Mechanism: "LOGIN", Username: "u", PasswordEnv: "X", AllowPlaintext: true}
		}, nil},
		{"auth two secrets", func(c *Config) {
			c.Routes[0].TLS = "required"
			c.Routes[0].Auth = AuthConfig{Mechanism: "plain", Username: "u", PasswordEnv: "X", PasswordFile: "/p"}
		}, []string{"routes[0].auth.password_file: set either password_file or password_env, not both"}},
		{"password env taken by the loader", func(c *Config) {
			c.Routes[0].TLS = "required"
			c.Routes[0].Auth = AuthConfig{Mechanism: "plain", Username: "u", PasswordEnv: "SEKISHO_RELAY_PW"}
		}, []string{"routes[0].auth.password_env: SEKISHO_RELAY_PW: SEKISHO_* variables are configuration overrides"}},
		{"smart host without targets", func(c *Config) { c.SmartHost.TLS = "required" },
			[]string{"smart_host.targets: missing"}},
		{"smart host mx", func(c *Config) { c.SmartHost.Targets = []string{"mx"}; c.SmartHost.Rewrite = "outbound" }, nil},
		{"dns", func(c *Config) {
			c.DNS = DNSConfig{Servers: []string{"ns.example"}, Timeout: 0, Attempts: 0, CacheSize: -1}
		}, []string{
			`dns.servers[0]: "ns.example": a nameserver must be an IP address`,
			"dns.timeout: must be positive, got 0s",
			"dns.attempts: must be between 1 and 10, got 0",
			"dns.cache_size: must not be negative, got -1",
		}},
		{"dns nothing", func(c *Config) { c.DNS.Servers, c.DNS.ResolvConf = nil, "" },
			[]string{"dns.servers: missing (set servers or resolv_conf)"}},
		{"hosts", func(c *Config) {
			c.Hosts = []HostConfig{{Name: "inner", Addrs: []string{"192.0.2.1", "x"}}, {Name: "a..b"}}
		}, []string{`hosts[0].addrs[1]: "x" is not an IP address`, "hosts[1].name: ", "hosts[1].addrs: missing"}},
		{"self", func(c *Config) {
			c.Self = SelfConfig{Hostnames: []string{"gw..jp"}, Addrs: []string{"gw.example.jp:25"}}
		}, []string{"self.hostnames[0]: ", `self.addrs[0]: "gw.example.jp:25": expected ip:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			got := leaves(c.Validate())
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func leaves(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func TestResolvePaths(t *testing.T) {
	c := DefaultConfig()
	c.Routes = []RouteConfig{{Domain: "a.jp", TargetConfig: TargetConfig{
		Targets: []string{"dir:spool/capture"}, TLSCAFile: "ca.pem", Auth: AuthConfig{PasswordFile: "/abs/pw"}}}}
	c.SmartHost = TargetConfig{Targets: []string{"dir:/already/abs"}}
	c.HostsFile = "hosts"
	c.Resolve("/etc/sekisho")
	r := c.Routes[0]
	if r.Targets[0] != "dir:/etc/sekisho/spool/capture" || r.TLSCAFile != "/etc/sekisho/ca.pem" ||
		r.Auth.PasswordFile != "/abs/pw" || c.SmartHost.Targets[0] != "dir:/already/abs" ||
		c.HostsFile != "/etc/sekisho/hosts" || c.DNS.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("Resolve: %+v", c)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.DNS.Timeout != 5*time.Second || c.DNS.Attempts != 2 || c.DNS.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("DefaultConfig().DNS = %+v", c.DNS)
	}
}
