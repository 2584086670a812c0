package accounts

import (
	"fmt"
	"strings"
	"testing"
)

func testConfig() Config {
	c := DefaultConfig()
	c.Domains = []DomainConfig{
		{Name: "city.toyokawa.lg.jp"},                         // configuration C
		{Name: "Wild.Example.JP", Mode: "wildcard"},           // configuration A
		{Name: "alias-only.example.jp"},                       // configuration B
		{Name: "case.example.jp", LocalPartCase: "sensitive"}, // case matters
		{Name: "xn--wgv71a119e.jp"},                           // an IDN domain
		{Name: "partner.example.jp", Mode: "mirror"},          // aliases to it
		{Name: "forward.example.jp", Mode: "mirror"},          // *@ -> *@partner
		{Name: "prefix.example.jp", Mode: "mirror"},           // 2009*@
		{Name: "identity-wild.example.jp", LocalPartCase: "insensitive"},
	}
	c.Accounts = []AccountConfig{{Address: "admin@city.toyokawa.lg.jp", Name: "管理者"}}
	c.Aliases = []AliasConfig{{Alias: "*@identity-wild.example.jp", Target: "*@identity-wild.example.jp"}}
	return c
}

func testRecords() []Record {
	return []Record{
		{Line: 2, Local: "Tanaka", Domain: "city.toyokawa.lg.jp", Name: "田中"},
		{Line: 3, Local: "baito", Domain: "city.toyokawa.lg.jp", Flags: OutboundBlocked},
		{Line: 4, Local: "gone", Domain: "city.toyokawa.lg.jp", Flags: Disabled},
		{Line: 5, Local: "postmaster", Domain: "city.toyokawa.lg.jp"},
		{Line: 6, Local: "Bob", Domain: "case.example.jp"},
		{Line: 7, Local: "taro", Domain: "partner.example.jp"},
		{Line: 8, Local: "yamada", Domain: "prefix.example.jp"},
		{Line: 9, Alias: "info@city.toyokawa.lg.jp", Target: "tanaka@city.toyokawa.lg.jp"},
		{Line: 10, Alias: "desk@city.toyokawa.lg.jp", Target: "info@city.toyokawa.lg.jp"},
		{Line: 11, Alias: "user1@alias-only.example.jp", Target: "user1@alias-only.example.jp"},
		{Line: 12, Alias: "out@city.toyokawa.lg.jp", Target: "someone@example.com"},
		{Line: 13, Alias: "*@forward.example.jp", Target: "*@partner.example.jp"},
		{Line: 14, Alias: "2009*@prefix.example.jp", Target: "yamada@prefix.example.jp"},
		{Line: 15, Alias: "2009sp*@prefix.example.jp", Target: "taro@partner.example.jp"},
	}
}

func mustBuild(t *testing.T) *Directory {
	t.Helper()
	d, err := Build(testConfig(), "dir.tsv", testRecords())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLookup(t *testing.T) {
	d := mustBuild(t)
	cases := []struct {
		addr      string
		kind      Kind
		exists    bool
		target    string
		flags     Flags
		protected bool
		chain     int
	}{
		{"tanaka@city.toyokawa.lg.jp", KindAccount, true, "Tanaka@city.toyokawa.lg.jp", 0, false, 0},
		{"TANAKA@CITY.TOYOKAWA.LG.JP.", KindAccount, true, "Tanaka@city.toyokawa.lg.jp", 0, false, 0},
		{"admin@city.toyokawa.lg.jp", KindAccount, true, "admin@city.toyokawa.lg.jp", 0, false, 0},
		{"baito@city.toyokawa.lg.jp", KindAccount, true, "baito@city.toyokawa.lg.jp", OutboundBlocked, false, 0},
		{"gone@city.toyokawa.lg.jp", KindAccount, false, "gone@city.toyokawa.lg.jp", Disabled, false, 0},
		{"nobody@city.toyokawa.lg.jp", KindUnknown, false, "nobody@city.toyokawa.lg.jp", 0, false, 0},
		{"postmaster@city.toyokawa.lg.jp", KindAccount, true, "postmaster@city.toyokawa.lg.jp", 0, true, 0},
		{"Abuse@city.toyokawa.lg.jp", KindUnknown, false, "Abuse@city.toyokawa.lg.jp", 0, true, 0},
		{"info@city.toyokawa.lg.jp", KindAlias, true, "Tanaka@city.toyokawa.lg.jp", 0, false, 1},
		{"desk@city.toyokawa.lg.jp", KindAlias, true, "Tanaka@city.toyokawa.lg.jp", 0, false, 2},
		{"out@city.toyokawa.lg.jp", KindAlias, true, "someone@example.com", 0, false, 1},
		{"anyone@wild.example.jp", KindWildcard, true, "anyone@wild.example.jp", 0, false, 0},
		{"user1@alias-only.example.jp", KindAlias, true, "user1@alias-only.example.jp", 0, false, 1},
		{"USER1@alias-only.example.jp", KindAlias, true, "user1@alias-only.example.jp", 0, false, 1},
		{"user2@alias-only.example.jp", KindUnknown, false, "user2@alias-only.example.jp", 0, false, 0},
		{"Bob@case.example.jp", KindAccount, true, "Bob@case.example.jp", 0, false, 0},
		{"bob@case.example.jp", KindUnknown, false, "bob@case.example.jp", 0, false, 0},
		// *@forward -> *@partner between two mirror domains makes them twins.
		{"taro@forward.example.jp", KindAccount, true, "taro@partner.example.jp", 0, false, 0},
		{"hanako@forward.example.jp", KindUnknown, false, "hanako@partner.example.jp", 0, false, 0},
		{"2009abc@prefix.example.jp", KindAlias, true, "yamada@prefix.example.jp", 0, false, 1},
		{"2009spring@prefix.example.jp", KindAlias, true, "taro@partner.example.jp", 0, false, 1},
		{"2010abc@prefix.example.jp", KindUnknown, false, "2010abc@prefix.example.jp", 0, false, 0},
		{"x@identity-wild.example.jp", KindAlias, true, "x@identity-wild.example.jp", 0, false, 1},
		{"someone@example.com", KindForeign, false, "someone@example.com", 0, false, 0},
		{"someone@日本語.jp", KindUnknown, false, "someone@xn--wgv71a119e.jp", 0, false, 0},
	}
	for _, c := range cases {
		r, err := d.Lookup(c.addr)
		if err != nil {
			t.Errorf("Lookup(%q): %v", c.addr, err)
			continue
		}
		if r.Kind != c.kind || r.Exists() != c.exists || r.Target != c.target || r.Flags() != c.flags ||
			r.Protected != c.protected || len(r.Chain) != c.chain {
			t.Errorf("Lookup(%q) = kind %v exists %v target %q flags %v protected %v chain %v;\n want kind %v exists %v target %q flags %v protected %v chain %d",
				c.addr, r.Kind, r.Exists(), r.Target, r.Flags(), r.Protected, r.Chain,
				c.kind, c.exists, c.target, c.flags, c.protected, c.chain)
		}
	}
	if _, err := d.Lookup("no-at-sign"); err == nil {
		t.Error("Lookup of a malformed address succeeded")
	}
}

func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name    string
		records []Record
		want    string
	}{
		{"duplicate account", []Record{
			{Line: 2, Local: "a", Domain: "city.toyokawa.lg.jp"},
			{Line: 3, Local: "A", Domain: "city.toyokawa.lg.jp"},
		}, "dir.tsv:3: account a@city.toyokawa.lg.jp is already defined at dir.tsv:2"},
		{"undeclared domain", []Record{{Line: 2, Local: "a", Domain: "other.jp"}},
			"dir.tsv:2: domain other.jp of a@other.jp is not declared"},
		{"alias loop", []Record{
			{Line: 2, Alias: "a@city.toyokawa.lg.jp", Target: "b@city.toyokawa.lg.jp"},
			{Line: 3, Alias: "b@city.toyokawa.lg.jp", Target: "a@city.toyokawa.lg.jp"},
		}, "alias loop"},
		{"alias to nobody", []Record{{Line: 2, Alias: "a@city.toyokawa.lg.jp", Target: "nobody@city.toyokawa.lg.jp"}},
			"target nobody@city.toyokawa.lg.jp does not exist"},
		{"duplicate alias", []Record{
			{Line: 2, Alias: "info@city.toyokawa.lg.jp", Target: "admin@city.toyokawa.lg.jp"},
			{Line: 3, Alias: "INFO@city.toyokawa.lg.jp", Target: "admin@city.toyokawa.lg.jp"},
		}, "dir.tsv:3: alias INFO@city.toyokawa.lg.jp is already defined at dir.tsv:2"},
		{"star in the middle", []Record{{Line: 2, Alias: "a*b@city.toyokawa.lg.jp", Target: "admin@city.toyokawa.lg.jp"}},
			"'*' is allowed only at the end"},
		{"alias in undeclared domain", []Record{{Line: 2, Alias: "a@x.jp", Target: "admin@city.toyokawa.lg.jp"}},
			"domain x.jp is not declared"},
	}
	chain := []Record{{Line: 1, Local: "end", Domain: "city.toyokawa.lg.jp"}}
	for i := 0; i <= MaxAliasChain+1; i++ {
		chain = append(chain, Record{Line: i + 2, Alias: fmt.Sprintf("c%d@city.toyokawa.lg.jp", i),
			Target: fmt.Sprintf("c%d@city.toyokawa.lg.jp", i+1)})
	}
	chain[len(chain)-1].Target = "end@city.toyokawa.lg.jp"
	cases = append(cases, struct {
		name    string
		records []Record
		want    string
	}{"chain too long", chain, "alias chain longer than 10"})

	cfg := testConfig()
	cfg.Aliases = nil
	for _, c := range cases {
		_, err := Build(cfg, "dir.tsv", c.records)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestStoreSwap(t *testing.T) {
	d1 := mustBuild(t)
	s := NewStore(d1)
	cfg := testConfig()
	d2, err := Build(cfg, "dir.tsv", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Get() != d1 {
		t.Fatal("Get before swap")
	}
	s.Swap(d2)
	if r, _ := s.Get().Lookup("tanaka@city.toyokawa.lg.jp"); r.Exists() {
		t.Error("old directory still answering after swap")
	}
}

func TestAccountForAuth(t *testing.T) {
	d := mustBuild(t)
	if a := d.Account("TANAKA@city.toyokawa.lg.jp"); a == nil || a.Name != "田中" {
		t.Errorf("Account = %+v", a)
	}
	if a := d.Account("info@city.toyokawa.lg.jp"); a != nil {
		t.Errorf("an alias authenticated as an account: %+v", a)
	}
}
