package guard

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := testGuardConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateErrors(t *testing.T) {
	c := DefaultConfig()
	c.InnerNetworks = []string{"192.168.0.1/24", "not-an-ip", "::ffff:10.0.0.0/104"}
	c.SenderTrust = "strict"
	c.NullSender = "never"
	c.Rules = []RuleConfig{
		{Name: "a", Action: "permit"},
		{Name: "a", Action: "deny", Networks: []string{"10.0.0.0/8"}},
		{Action: "allow", Senders: []string{"*@" + dom}},
		{Action: "allow", Networks: []string{"0.0.0.0/0"}},
		{Action: "deny", Auth: []string{"any", "taro@" + dom}},
		{Action: "deny", Senders: []string{"a*b@x.jp", "*@x*.jp", "a@", "two@@x.jp"}},
		{Action: "deny", Recipients: []string{"<>"}},
		{Action: "deny", Message: "日本語"},
		{Action: "allow", Networks: []string{"10.0.0.1"}, Message: "hi"},
		{Name: "builtin:relay", Action: "deny"},
		{},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`inner_networks[0]: "192.168.0.1/24" has host bits set; did you mean 192.168.0.0/24?`,
		`inner_networks[1]: "not-an-ip" is neither an IP address nor a CIDR block`,
		`inner_networks[2]: "::ffff:10.0.0.0/104": write IPv4 networks in dotted form`,
		`sender_trust: "strict" is not a trust level`,
		`null_sender: "never" is not a null sender policy`,
		`rules[0].action: "permit" is not an action`,
		`rules[1].name: "a" is already the name of rules[0]`,
		`rules[2].action: allow without networks, listeners, auth users or recipients opens the relay`,
		`rules[3].networks: allow for every address (/0)`,
		`rules[4].auth[0]: "any" must stand alone`,
		`rules[5].senders[0]: "a*b@x.jp": '*' in a local part only at its end`,
		`rules[5].senders[1]: "*@x*.jp": '*' in a domain only as a leading "*."`,
		`rules[5].senders[2]: "a@" is not *, <>, user@domain`,
		`rules[5].senders[3]: "two@@x.jp": more than one '@'`,
		`rules[6].recipients: <> is the null sender`,
		`rules[7].message: only printable ASCII`,
		`rules[8].message: only a deny rule sends a message`,
		`rules[9].name: "builtin:relay": the prefix builtin: is reserved`,
		`rules[10].action: missing`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestPatterns(t *testing.T) {
	mk := func(s string) envAddr {
		e, err := parseAddr(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return e
	}
	for _, tc := range []struct {
		pattern string
		addr    string
		want    bool
	}{
		{"*", "", true},
		{"*", "a@b.jp", true},
		{"<>", "", true},
		{"<>", "a@b.jp", false},
		{"*@b.jp", "", false},
		{"*@b.jp", "X@B.JP.", true},
		{"*@b.jp", "x@c.b.jp", false},
		{"*@*.b.jp", "x@c.b.jp", true},
		{"*@*.b.jp", "x@b.jp", false},
		{"*@*.b.jp", "x@cb.jp", false},
		{"Taro@b.jp", "taro@b.jp", true},
		{"taro@b.jp", "taro2@b.jp", false},
		{"2009*@b.jp", "2009tanaka@b.jp", true},
		{"2009*@b.jp", "2010tanaka@b.jp", false},
		{"*@xn--wgv71a119e.jp", "a@日本語.jp", true},
		{"*@日本語.jp", "a@xn--wgv71a119e.jp", true},
	} {
		p, err := compilePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.match(mk(tc.addr)); got != tc.want {
			t.Errorf("%s ~ %q = %v, want %v", tc.pattern, tc.addr, got, tc.want)
		}
	}
}

func TestNetworks(t *testing.T) {
	l, errs := parseNetworks("n", []string{"192.168.0.10", "10.0.0.0/8", "2001:db8::/32"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for ip, want := range map[string]bool{
		"192.168.0.10": true, "::ffff:192.168.0.10": true, "192.168.0.11": false,
		"10.255.0.1": true, "2001:db8:1::1": true, "2001:db9::1": false,
	} {
		if got := l.has(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v", ip, got)
		}
	}
	if !(networkList{}).contains(netip.MustParseAddr("1.2.3.4")) || (networkList{}).has(netip.MustParseAddr("1.2.3.4")) {
		t.Error("empty list semantics")
	}
}

// TestDecodeYAML reads a relay.guard section the way the configuration
// loader does (koanf's YAML parser, weakly typed mapstructure): a single
// string is accepted where a list is expected, as in `auth: none`.
func TestDecodeYAML(t *testing.T) {
	src := `
inner_networks: [192.168.0.10]
sender_trust: header
rules:
  - name: no-bounces
    action: deny
    senders: ["<>"]
    message: "No bounces here"
  - name: lan
    action: deny
    networks: [192.168.9.0/24]
    auth: none
`
	m, err := yaml.Parser().Unmarshal([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{TagName: "koanf", ErrorUnused: true, WeaklyTypedInput: true, Result: &c})
	if err := dec.Decode(m); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SenderTrust != TrustHeader || !c.SpoofCheck || len(c.Rules) != 2 || len(c.Rules[1].Auth) != 1 || c.Rules[1].Auth[0] != "none" {
		t.Fatalf("decoded %+v", c)
	}
	g := newTestGuard(t, c)
	if v := g.CheckMail(internet, ""); v.Code != 550 || v.Rule != "no-bounces" || v.Text != "No bounces here" {
		t.Errorf("null sender deny: %+v", v)
	}
	if v := g.CheckMail(client("192.168.9.1", ""), "a@example.com"); v.Rule != "lan" {
		t.Errorf("auth none, unauthenticated: %+v", v)
	}
	if v := g.CheckMail(client("192.168.9.1", "taro@"+dom), "taro@"+dom); !v.Accepted() {
		t.Errorf("auth none, authenticated: %+v", v)
	}
	b, _ := json.Marshal(g.CheckMail(internet, "taro@"+dom))
	if !strings.Contains(string(b), `"Action":"reject"`) {
		t.Errorf("JSON %s", b)
	}
}
