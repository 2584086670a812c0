package accounts

import (
	"strings"
	"testing"
)

// twinConfig is the municipal example: an LG domain and its regional twin,
// declared either by the twin key or by the "*@regional -> *@lg" alias.
func twinConfig(byAlias bool) Config {
	c := DefaultConfig()
	c.Domains = []DomainConfig{{Name: "city.toyokawa.lg.jp"}, {Name: "city.toyokawa.aichi.jp"}}
	if byAlias {
		c.Aliases = []AliasConfig{{Alias: "*@city.toyokawa.aichi.jp", Target: "*@city.toyokawa.lg.jp"}}
	} else {
		c.Domains[1].Twin = "City.Toyokawa.LG.JP"
	}
	return c
}

func TestTwinDomains(t *testing.T) {
	for _, byAlias := range []bool{false, true} {
		recs := []Record{
			{Line: 2, Local: "user0002", Domain: "city.toyokawa.aichi.jp", Name: "regional"},
			{Line: 3, Local: "Baito", Domain: "city.toyokawa.aichi.jp", Flags: OutboundBlocked},
			{Line: 4, Local: "tanaka", Domain: "city.toyokawa.lg.jp"},
			{Line: 5, Alias: "info@city.toyokawa.aichi.jp", Target: "tanaka@city.toyokawa.aichi.jp"},
		}
		d, err := Build(twinConfig(byAlias), "dir.tsv", recs)
		if err != nil {
			t.Fatalf("byAlias=%v: %v", byAlias, err)
		}
		cases := []struct {
			addr, target string
			kind         Kind
			flags        Flags
		}{
			{"user0002@city.toyokawa.aichi.jp", "user0002@city.toyokawa.lg.jp", KindAccount, 0},
			{"USER0002@city.toyokawa.lg.jp", "user0002@city.toyokawa.lg.jp", KindAccount, 0},
			{"baito@city.toyokawa.lg.jp", "Baito@city.toyokawa.lg.jp", KindAccount, OutboundBlocked},
			{"baito@city.toyokawa.aichi.jp", "Baito@city.toyokawa.lg.jp", KindAccount, OutboundBlocked},
			{"tanaka@city.toyokawa.aichi.jp", "tanaka@city.toyokawa.lg.jp", KindAccount, 0},
			{"info@city.toyokawa.lg.jp", "tanaka@city.toyokawa.lg.jp", KindAlias, 0},
			{"info@city.toyokawa.aichi.jp", "tanaka@city.toyokawa.lg.jp", KindAlias, 0},
			{"nobody@city.toyokawa.aichi.jp", "nobody@city.toyokawa.lg.jp", KindUnknown, 0},
		}
		for _, c := range cases {
			r, err := d.Lookup(c.addr)
			if err != nil {
				t.Fatalf("Lookup(%s): %v", c.addr, err)
			}
			if r.Kind != c.kind || r.Target != c.target || r.Flags() != c.flags {
				t.Errorf("byAlias=%v Lookup(%s) = %s %s %s, want %s %s %s", byAlias, c.addr, r.Kind, r.Target, r.Flags(), c.kind, c.target, c.flags)
			}
			if r.Domain == nil || !strings.HasSuffix(c.addr, r.Domain.Name) {
				t.Errorf("Lookup(%s).Domain = %v, want the domain asked", c.addr, r.Domain)
			}
		}
		if a := d.Account("user0002@city.toyokawa.lg.jp"); a == nil || a.Name != "regional" {
			t.Errorf("byAlias=%v: Account(user0002@lg) = %v, want the regional account", byAlias, a)
		}
	}
}

func TestTwinDuplicateAcrossTwins(t *testing.T) {
	recs := []Record{
		{Line: 2, Local: "tanaka", Domain: "city.toyokawa.aichi.jp"},
		{Line: 3, Local: "Tanaka", Domain: "city.toyokawa.lg.jp"},
	}
	_, err := Build(twinConfig(false), "dir.tsv", recs)
	if err == nil || !strings.Contains(err.Error(), "dir.tsv:3: account tanaka@city.toyokawa.lg.jp is already defined at dir.tsv:2") {
		t.Errorf("err = %v, want the duplicate named with both lines", err)
	}
}

func TestTwinValidate(t *testing.T) {
	cases := []struct {
		domains []DomainConfig
		want    string
	}{
		{[]DomainConfig{{Name: "a.jp", Twin: "b.jp"}}, "domains[0].twin: b.jp is not declared"},
		{[]DomainConfig{{Name: "a.jp", Twin: "a.jp"}}, "domains[0].twin: a domain cannot be its own twin"},
		{[]DomainConfig{{Name: "a.jp", Twin: "b.jp"}, {Name: "b.jp", Twin: "c.jp"}, {Name: "c.jp"}}, "domains[0].twin: b.jp is itself a twin of c.jp"},
		{[]DomainConfig{{Name: "a.jp", Twin: "b.jp"}, {Name: "b.jp", LocalPartCase: "sensitive"}}, "same local_part_case"},
		{[]DomainConfig{{Name: "a.jp", Twin: "b.jp"}, {Name: "b.jp", Mode: "wildcard"}}, "same mode"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		cfg.Domains = c.domains
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.domains, err, c.want)
		}
	}
}
