package guard

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts"
)

const dom = "city.example.lg.jp"

func testDirectory(t testing.TB) *accounts.Directory {
	t.Helper()
	c := accounts.DefaultConfig()
	c.Domains = []accounts.DomainConfig{{Name: dom}, {Name: "wild.example.jp", Mode: "wildcard"}}
	c.Accounts = []accounts.AccountConfig{
		{Address: "taro@" + dom},
		{Address: "hanako@" + dom},
		{Address: "baito@" + dom, OutboundBlocked: true, OutboundAllow: []string{"*@partner.example"}},
		{Address: "gone@" + dom, Disabled: true},
		{Address: "postmaster@" + dom},
	}
	c.Aliases = []accounts.AliasConfig{
		{Alias: "info@" + dom, Target: "taro@" + dom},
		{Alias: "part@" + dom, Target: "baito@" + dom},
		{Alias: "ext@" + dom, Target: "someone@partner.example"},
	}
	d, err := accounts.Build(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testGuardConfig() Config {
	c := DefaultConfig()
	c.InnerNetworks = []string{"192.168.0.10", "192.168.5.0/24", "2001:db8:10::/48"}
	c.Rules = []RuleConfig{
		{Name: "bad-host", Action: "deny", Networks: []string{"192.168.0.66"}},
		{Name: "no-blocked", Action: "deny", Recipients: []string{"*@blocked.example", "*@*.blocked.example"}, Message: "Mail to blocked.example is not allowed"},
		{Name: "kiosk", Action: "require_auth", Networks: []string{"192.168.5.77"}},
		{Name: "legacy", Action: "no_relay", Networks: []string{"198.51.100.7"}},
		{Name: "partner-net", Action: "allow", Networks: []string{"203.0.113.0/24"}},
		{Name: "partner-mx", Action: "allow", Networks: []string{"192.0.2.0/24"}, Recipients: []string{"*@*.partner.example"}},
		{Name: "no-pm-from-lab", Action: "deny", Networks: []string{"192.168.5.0/24"}, Auth: []string{"none"}, Senders: []string{"POSTMASTER@" + dom}},
	}
	return c
}

func newTestGuard(t testing.TB, c Config) *Guard {
	t.Helper()
	d := testDirectory(t)
	g, err := New(c, func() *accounts.Directory { return d })
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func client(ip string, user string) Client {
	return Client{IP: netip.MustParseAddr(ip), Helo: "client.example", AuthUser: user}
}

var (
	inner     = client("192.168.0.10", "")
	inner6    = client("2001:db8:10::25", "")
	mapped    = client("::ffff:192.168.0.10", "")
	lab       = client("192.168.5.20", "")
	kiosk     = client("192.168.5.77", "")
	kioskAuth = client("192.168.5.77", "hanako@"+dom)
	internet  = client("198.18.0.5", "")
	internet6 = client("2001:db8:beef::1", "")
	authTaro  = client("198.18.0.5", "taro@"+dom)
	authBaito = client("198.18.0.5", "baito@"+dom)
	authGone  = client("198.18.0.5", "gone@"+dom)
	legacy    = client("198.51.100.7", "taro@"+dom)
	partner   = client("203.0.113.9", "")
	backupMX  = client("192.0.2.25", "")
	badHost   = client("192.168.0.66", "")
)

type guardCase struct {
	name     string
	stage    string // mail, rcpt, recheck
	c        Client
	from     string
	rcpt     string
	code     int // 0: accepted
	enhanced string
	rule     string
}

var guardCases = []guardCase{
	// MAIL FROM
	{"internet foreign sender", "mail", internet, "alice@example.com", "", 0, "", ruleSender},
	{"internet null sender", "mail", internet, "", "", 0, "", ruleNullSender},
	{"internet spoofs our domain", "mail", internet, "taro@" + dom, "", 553, "5.7.1", ruleSpoof},
	{"internet spoofs unknown local", "mail", internet, "nobody@" + dom, "", 553, "5.7.1", ruleSpoof},
	{"internet spoofs upper-case trailing-dot domain", "mail", internet, "Taro@CITY.EXAMPLE.LG.JP.", "", 553, "5.7.1", ruleSpoof},
	{"internet uses postmaster", "mail", internet, "postmaster@" + dom, "", 553, "5.7.1", ruleProtected},
	{"internet uses abuse (protected, no account)", "mail", internet, "Abuse@" + dom, "", 553, "5.7.1", ruleProtected},
	{"inner uses postmaster", "mail", inner, "postmaster@" + dom, "", 0, "", ruleInner},
	{"authenticated postmaster sender not owned", "mail", authTaro, "postmaster@" + dom, "", 553, "5.7.1", ruleSenderLogin},
	{"authenticated own address", "mail", authTaro, "taro@" + dom, "", 0, "", ruleAuthenticated},
	{"authenticated own alias", "mail", authTaro, "INFO@" + dom, "", 0, "", ruleAuthenticated},
	{"authenticated other user's address", "mail", authTaro, "hanako@" + dom, "", 553, "5.7.1", ruleSenderLogin},
	{"authenticated foreign sender", "mail", authTaro, "taro@gmail.example", "", 553, "5.7.1", ruleSenderLogin},
	{"authenticated null sender", "mail", authTaro, "", "", 0, "", ruleNullSender},
	{"disabled login counts as unauthenticated", "mail", authGone, "gone@" + dom, "", 553, "5.7.1", ruleDisabledFrom},
	{"inner sends as disabled account", "mail", inner, "gone@" + dom, "", 553, "5.7.1", ruleDisabledFrom},
	{"bad sender syntax", "mail", internet, "no-at-sign", "", 501, "5.1.7", ruleSyntax},
	{"sender source route", "mail", internet, "@relay.example:alice@example.com", "", 501, "5.1.7", ruleSyntax},
	{"deny rule by network at MAIL", "mail", badHost, "alice@example.com", "", 550, "5.7.1", "bad-host"},
	{"deny rule by sender, case folded", "mail", lab, "postmaster@" + dom, "", 550, "5.7.1", "no-pm-from-lab"},
	{"kiosk in inner network must authenticate to use our domain", "mail", kiosk, "taro@" + dom, "", 553, "5.7.1", ruleSpoof},
	{"partner network trusted by allow", "mail", partner, "taro@" + dom, "", 0, "", "partner-net"},
	{"IPv4-mapped inner client", "mail", mapped, "taro@" + dom, "", 0, "", ruleInner},
	{"IPv6 inner client", "mail", inner6, "taro@" + dom, "", 0, "", ruleInner},
	// RCPT TO: inbound
	{"internet to existing account", "rcpt", internet, "alice@example.com", "taro@" + dom, 0, "", ruleLocalRcpt},
	{"internet to alias", "rcpt", internet, "alice@example.com", "info@" + dom, 0, "", ruleLocalRcpt},
	{"internet to upper-case trailing-dot domain", "rcpt", internet, "alice@example.com", "TARO@City.Example.LG.JP.", 0, "", ruleLocalRcpt},
	{"internet to unknown account", "rcpt", internet, "alice@example.com", "nobody@" + dom, 550, "5.1.1", ruleUnknownRcpt},
	{"internet to disabled account", "rcpt", internet, "alice@example.com", "gone@" + dom, 550, "5.2.1", ruleDisabledRcpt},
	{"internet to wildcard domain", "rcpt", internet, "alice@example.com", "anyone@wild.example.jp", 0, "", ruleLocalRcpt},
	{"null sender to local", "rcpt", internet, "", "taro@" + dom, 0, "", ruleLocalRcpt},
	{"null sender to foreign from internet", "rcpt", internet, "", "bob@example.net", 550, "5.7.1", ruleNullSender},
	{"null sender to foreign from inner (local_only)", "rcpt", inner, "", "bob@example.net", 550, "5.7.1", ruleNullSender},
	// RCPT TO: relay attempts (the open-relay battery)
	{"plain relay", "rcpt", internet, "alice@example.com", "bob@example.net", 554, "5.7.1", ruleRelay},
	{"plain relay over IPv6", "rcpt", internet6, "alice@example.com", "bob@example.net", 554, "5.7.1", ruleRelay},
	{"relay with spoofed local sender", "rcpt", internet, "taro@" + dom, "bob@example.net", 553, "5.7.1", ruleSpoof},
	{"percent hack", "rcpt", internet, "alice@example.com", "bob%example.net@" + dom, 550, "5.7.1", ruleRelayTrick},
	{"bang path", "rcpt", internet, "alice@example.com", "example.net!bob@" + dom, 550, "5.7.1", ruleRelayTrick},
	{"quoted @ (unquoted by go-smtp)", "rcpt", internet, "alice@example.com", "bob@example.net@" + dom, 550, "5.7.1", ruleRelayTrick},
	{"quoted @ raw form", "rcpt", internet, "alice@example.com", `"bob@example.net"@` + dom, 550, "5.7.1", ruleRelayTrick},
	{"quoted percent raw form", "rcpt", internet, "alice@example.com", `"bob%example.net"@` + dom, 550, "5.7.1", ruleRelayTrick},
	{"double @ with trailing dot", "rcpt", internet, "alice@example.com", "bob@example.net@" + dom + ".", 550, "5.7.1", ruleRelayTrick},
	{"source route raw form", "rcpt", internet, "alice@example.com", "@" + dom + ":bob@example.net", 550, "5.7.1", ruleRelayTrick},
	{"IP literal", "rcpt", internet, "alice@example.com", "bob@[192.0.2.1]", 550, "5.7.1", ruleIPLiteral},
	{"IP literal from inner is still refused", "rcpt", inner, "taro@" + dom, "bob@[192.0.2.1]", 550, "5.7.1", ruleIPLiteral},
	{"percent hack from inner", "rcpt", inner, "taro@" + dom, "bob%example.net@" + dom, 550, "5.7.1", ruleRelayTrick},
	{"trailing-dot foreign domain", "rcpt", internet, "alice@example.com", "bob@EXAMPLE.NET.", 554, "5.7.1", ruleRelay},
	{"recipient without domain", "rcpt", internet, "alice@example.com", "webmaster", 501, "5.1.3", ruleSyntax},
	{"bare postmaster always accepted", "rcpt", internet, "alice@example.com", "PostMaster", 0, "", rulePostmaster},
	{"postmaster of ours always accepted", "rcpt", internet, "", "postmaster@" + dom, 0, "", rulePostmaster},
	{"postmaster elsewhere is a relay", "rcpt", internet, "alice@example.com", "postmaster@example.com", 554, "5.7.1", ruleRelay},
	{"empty domain", "rcpt", internet, "alice@example.com", "bob@", 501, "5.1.3", ruleSyntax},
	{"empty domain after trailing dot", "rcpt", internet, "alice@example.com", "bob@.", 501, "5.1.3", ruleSyntax},
	{"invalid domain", "rcpt", internet, "alice@example.com", "bob@exa mple.net", 501, "5.1.3", ruleSyntax},
	{"empty local part", "rcpt", internet, "alice@example.com", "@", 550, "5.7.1", ruleRelayTrick},
	// RCPT TO: trusted relaying
	{"inner to foreign", "rcpt", inner, "taro@" + dom, "bob@example.net", 0, "", ruleInner},
	{"inner relays mail of a user not mirrored", "rcpt", inner, "newcomer@" + dom, "bob@example.net", 0, "", ruleInner},
	{"authenticated to foreign", "rcpt", authTaro, "taro@" + dom, "bob@example.net", 0, "", ruleAuthenticated},
	{"outbound-blocked sender from inner", "rcpt", inner, "baito@" + dom, "bob@example.net", 550, "5.7.1", ruleOutbound},
	{"outbound-blocked via alias", "rcpt", inner, "part@" + dom, "bob@example.net", 550, "5.7.1", ruleOutbound},
	{"outbound-blocked login", "rcpt", authBaito, "baito@" + dom, "bob@example.net", 550, "5.7.1", ruleOutbound},
	{"outbound-blocked may write inside", "rcpt", authBaito, "baito@" + dom, "taro@" + dom, 0, "", ruleLocalRcpt},
	{"outbound-blocked may write to its allow list", "rcpt", inner, "baito@" + dom, "sato@Partner.Example", 0, "", ruleInner},
	{"deny rule wins over inner trust", "rcpt", inner, "taro@" + dom, "x@blocked.example", 550, "5.7.1", "no-blocked"},
	{"deny rule on subdomain", "rcpt", inner, "taro@" + dom, "x@mail.Blocked.Example", 550, "5.7.1", "no-blocked"},
	{"require_auth withdraws inner trust", "rcpt", kiosk, "alice@example.com", "bob@example.net", 554, "5.7.1", "kiosk"},
	{"require_auth with AUTH relays", "rcpt", kioskAuth, "hanako@" + dom, "bob@example.net", 0, "", "kiosk"},
	{"require_auth still receives", "rcpt", kiosk, "alice@example.com", "taro@" + dom, 0, "", ruleLocalRcpt},
	{"no_relay even with AUTH", "rcpt", legacy, "taro@" + dom, "bob@example.net", 554, "5.7.1", "legacy"},
	{"no_relay keeps AUTH sender trust inside", "rcpt", legacy, "taro@" + dom, "hanako@" + dom, 0, "", ruleLocalRcpt},
	{"allow rule opens partner network", "rcpt", partner, "ceo@partner.example", "bob@example.net", 0, "", "partner-net"},
	{"allow rule cannot open unknown local", "rcpt", partner, "ceo@partner.example", "nobody@" + dom, 550, "5.1.1", ruleUnknownRcpt},
	{"allow rule cannot open relay tricks", "rcpt", partner, "ceo@partner.example", "bob%example.net@" + dom, 550, "5.7.1", ruleRelayTrick},
	{"recipient allow rule: partner subdomain", "rcpt", backupMX, "alice@example.com", "x@mx.partner.example", 0, "", "partner-mx"},
	{"recipient allow rule: not the parent domain", "rcpt", backupMX, "alice@example.com", "x@partner.example", 554, "5.7.1", ruleRelay},
	{"recipient allow rule: not from elsewhere", "rcpt", internet, "alice@example.com", "x@mx.partner.example", 554, "5.7.1", ruleRelay},
	{"recipient allow rule defers the spoof check at MAIL", "mail", backupMX, "taro@" + dom, "", 0, "", ruleSender},
	{"recipient allow rule waives spoof check for its recipients", "rcpt", backupMX, "taro@" + dom, "x@mx.partner.example", 0, "", "partner-mx"},
	{"recipient allow rule keeps spoof check for others", "rcpt", backupMX, "taro@" + dom, "hanako@" + dom, 553, "5.7.1", ruleSpoof},
	// After the rewrite
	{"rewrite to foreign from internet", "recheck", internet, "alice@example.com", "taro@example.net", 554, "5.7.1", ruleRelay},
	{"rewrite to local from internet", "recheck", internet, "alice@example.com", "hanako@" + dom, 0, "", ruleLocalRcpt},
	{"rewrite producing a trick", "recheck", inner, "taro@" + dom, "bob!example.net@" + dom, 550, "5.7.1", ruleRelayTrick},
}

func TestGuardTable(t *testing.T) {
	g := newTestGuard(t, testGuardConfig())
	for _, tc := range guardCases {
		t.Run(tc.name, func(t *testing.T) {
			var v Verdict
			switch tc.stage {
			case "mail":
				v = g.CheckMail(tc.c, tc.from)
			case "rcpt":
				v = g.CheckRcpt(tc.c, tc.from, tc.rcpt)
			case "recheck":
				v = g.Recheck(tc.c, tc.from, tc.rcpt)
			}
			if v.Code != tc.code || v.Enhanced != tc.enhanced || v.Rule != tc.rule {
				t.Fatalf("got %d %s rule %s (%s: %s), want %d %s rule %s",
					v.Code, v.Enhanced, v.Rule, v.Text, v.Reason, tc.code, tc.enhanced, tc.rule)
			}
			wantAction := Accept
			if tc.code >= 500 {
				wantAction = Reject
			} else if tc.code >= 400 {
				wantAction = TempFail
			}
			if v.Action != wantAction {
				t.Fatalf("action %v, want %v", v.Action, wantAction)
			}
			if v.Reason == "" {
				t.Fatal("no reason given")
			}
			if tc.stage == "recheck" && !strings.HasPrefix(v.Reason, "after rewrite to ") {
				t.Fatalf("recheck reason %q does not say it follows the rewrite", v.Reason)
			}
		})
	}
}

func TestSenderTrustLevels(t *testing.T) {
	for _, tc := range []struct {
		level string
		from  string
		code  int
	}{
		{TrustAny, "hanako@" + dom, 0},
		{TrustAny, "someone@example.com", 0},
		{TrustEnvelope, "hanako@" + dom, 553},
		{TrustEnvelope, "info@" + dom, 0},
		{TrustHeader, "hanako@" + dom, 553},
	} {
		c := testGuardConfig()
		c.SenderTrust = tc.level
		g := newTestGuard(t, c)
		if v := g.CheckMail(authTaro, tc.from); v.Code != tc.code {
			t.Errorf("%s %s: got %d (%s), want %d", tc.level, tc.from, v.Code, v.Reason, tc.code)
		}
	}
}

func TestCheckHeaderFrom(t *testing.T) {
	c := testGuardConfig()
	c.SenderTrust = TrustHeader
	g := newTestGuard(t, c)
	from := "taro@" + dom
	for _, tc := range []struct {
		name   string
		c      Client
		header []string
		code   int
	}{
		{"own address", authTaro, []string{"taro@" + dom}, 0},
		{"own alias in brackets", authTaro, []string{"<info@" + dom + ">"}, 0},
		{"another user's", authTaro, []string{"taro@" + dom, "hanako@" + dom}, 550},
		{"foreign", authTaro, []string{"boss@example.com"}, 550},
		{"garbage", authTaro, []string{"not an address"}, 550},
		{"no From", authTaro, nil, 550},
		{"unauthenticated client is not checked", internet, []string{"boss@example.com"}, 0},
	} {
		v := g.CheckHeaderFrom(tc.c, from, func() []string { return tc.header })
		if v.Code != tc.code {
			t.Errorf("%s: got %d %s (%s), want %d", tc.name, v.Code, v.Enhanced, v.Reason, tc.code)
		}
		if v.Rule != ruleHeaderFrom {
			t.Errorf("%s: rule %s", tc.name, v.Rule)
		}
	}
	// Envelope level leaves the header alone.
	g2 := newTestGuard(t, testGuardConfig())
	read := func() []string {
		t.Error("envelope level read the header From")
		return []string{"boss@example.com"}
	}
	if v := g2.CheckHeaderFrom(authTaro, from, read); !v.Accepted() {
		t.Errorf("envelope level checked the header: %+v", v)
	}
}

func TestSwitches(t *testing.T) {
	c := testGuardConfig()
	c.SpoofCheck = false
	g := newTestGuard(t, c)
	if v := g.CheckMail(internet, "taro@"+dom); !v.Accepted() {
		t.Errorf("spoof_check off: %+v", v)
	}
	if v := g.CheckMail(internet, "postmaster@"+dom); v.Rule != ruleProtected {
		t.Errorf("spoof_check off must keep protected names: %+v", v)
	}
	c.ProtectedNeedAuth = false
	g = newTestGuard(t, c)
	if v := g.CheckMail(internet, "postmaster@"+dom); !v.Accepted() {
		t.Errorf("both off: %+v", v)
	}

	c = testGuardConfig()
	c.AllowIPLiterals = true
	g = newTestGuard(t, c)
	if v := g.CheckRcpt(internet, "alice@example.com", "bob@[192.0.2.1]"); v.Code != 554 {
		t.Errorf("IP literal allowed must still be foreign: %+v", v)
	}
	if v := g.CheckRcpt(inner, "taro@"+dom, "bob@[192.0.2.1]"); !v.Accepted() {
		t.Errorf("IP literal from inner with allow_ip_literals: %+v", v)
	}

	c = testGuardConfig()
	c.NullSender = NullTrusted
	g = newTestGuard(t, c)
	if v := g.CheckRcpt(inner, "", "bob@example.net"); !v.Accepted() {
		t.Errorf("null_sender trusted from inner: %+v", v)
	}
	if v := g.CheckRcpt(internet, "", "bob@example.net"); v.Code != 550 || v.Rule != ruleNullSender {
		t.Errorf("null_sender trusted from internet: %+v", v)
	}
}

func TestMailDefersToRecipientRules(t *testing.T) {
	// A deny rule after a recipient-dependent allow cannot refuse at MAIL:
	// for some recipients the allow comes first.
	c := DefaultConfig()
	c.Rules = []RuleConfig{
		{Name: "to-partner", Action: "allow", Recipients: []string{"*@partner.example"}},
		{Name: "all-out", Action: "deny", Networks: []string{"0.0.0.0/0"}},
	}
	g := newTestGuard(t, c)
	if v := g.CheckMail(internet, "taro@"+dom); !v.Accepted() {
		t.Fatalf("MAIL refused although a recipient may be allowed: %+v", v)
	}
	if v := g.CheckRcpt(internet, "taro@"+dom, "x@partner.example"); !v.Accepted() || v.Rule != "to-partner" {
		t.Fatalf("partner recipient: %+v", v)
	}
	if v := g.CheckRcpt(internet, "taro@"+dom, "hanako@"+dom); v.Rule != "all-out" || v.Code != 550 {
		t.Fatalf("other recipient: %+v", v)
	}
}

func TestNoDirectory(t *testing.T) {
	g, err := New(DefaultConfig(), func() *accounts.Directory { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []Verdict{g.CheckMail(internet, "a@example.com"), g.CheckRcpt(internet, "a@example.com", "b@example.com")} {
		if v.Action != TempFail || v.Code != 451 || v.Enhanced != "4.3.0" {
			t.Errorf("got %+v", v)
		}
	}
}

func TestVerdictReplies(t *testing.T) {
	g := newTestGuard(t, testGuardConfig())
	v := g.CheckRcpt(internet, "alice@example.com", "nobody@"+dom)
	if v.Accepted() || v.Code != 550 || v.Enhanced != "5.1.1" || !strings.Contains(v.Text, "nobody@") {
		t.Fatalf("got %+v", v)
	}
	if ok := g.CheckRcpt(internet, "alice@example.com", "taro@"+dom); !ok.Accepted() {
		t.Fatalf("taro@: %+v", ok)
	}
	if Reject.String() != "reject" || Accept.String() != "accept" || TempFail.String() != "tempfail" {
		t.Fatal("action names")
	}
}

// FuzzCheckRcpt feeds arbitrary envelopes from an untrusted internet client:
// whatever the guard accepts must be an existing mailbox of ours, reached
// without routing tricks. That is "never an open relay".
func FuzzCheckRcpt(f *testing.F) {
	for _, tc := range guardCases {
		if tc.stage != "mail" {
			f.Add(tc.from, tc.rcpt)
		}
	}
	f.Add("", "taro@"+dom)
	f.Add("a@b", "\"x@y\"@"+dom)
	d := testDirectory(f)
	g, err := New(testGuardConfig(), func() *accounts.Directory { return d })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, from, rcpt string) {
		v := g.CheckRcpt(internet, from, rcpt)
		if v.Code == 0 && !v.Accepted() || v.Code != 0 && v.Accepted() {
			t.Fatalf("inconsistent verdict %+v", v)
		}
		if !v.Accepted() {
			if v.Text == "" || v.Rule == "" || len(v.Enhanced) != 5 {
				t.Fatalf("refusal without text, rule or status: %+v", v)
			}
			return
		}
		if v.Rule == rulePostmaster && g.IsPostmaster(rcpt) {
			return
		}
		res, err := d.Lookup(rcpt)
		if err != nil || !res.Ours() || !res.Exists() || strings.ContainsAny(rcpt[:strings.LastIndexByte(rcpt, '@')], "@%!") {
			t.Fatalf("internet client got %q accepted: %+v (lookup %+v, %v)", rcpt, v, res, err)
		}
	})
}

func TestCheckConnect(t *testing.T) {
	c := testGuardConfig()
	c.Rules = append([]RuleConfig{
		{Name: "banned", Action: "deny", Networks: []string{"198.18.9.0/24"}, Message: "Go away"},
		{Name: "lab-sender", Action: "deny", Networks: []string{"198.18.8.0/24"}, Senders: []string{"*@example.com"}},
		{Name: "after-sender-rule", Action: "deny", Networks: []string{"198.18.8.0/24"}},
	}, c.Rules...)
	g := newTestGuard(t, c)
	for _, tc := range []struct {
		ip   string
		code int
		rule string
	}{
		{"198.18.9.7", 554, "banned"},
		// A rule naming a sender comes first: only MAIL can decide.
		{"198.18.8.7", 0, ruleConnect},
		{"198.18.0.5", 0, ruleConnect},
	} {
		v := g.CheckConnect(client(tc.ip, ""))
		if v.Code != tc.code || v.Rule != tc.rule {
			t.Errorf("%s: %+v, want %d by %s", tc.ip, v, tc.code, tc.rule)
		}
		if tc.code == 554 && (v.Enhanced != "5.7.1" || v.Text != "Go away") {
			t.Errorf("%s: %+v, want 5.7.1 with the rule's message", tc.ip, v)
		}
	}
}
