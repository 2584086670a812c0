package accounts

import (
	"fmt"
	"strings"
	"testing"
)

func syncConfig() Config {
	c := DefaultConfig()
	c.Domains = []DomainConfig{{Name: "a.lg.jp"}, {Name: "b.lg.jp"}}
	return c
}

func accts(domain string, n int) []Record {
	var rs []Record
	for i := 0; i < n; i++ {
		rs = append(rs, Record{Line: i + 2, Local: fmt.Sprintf("u%02d", i), Domain: domain})
	}
	return rs
}

func TestPlanSyncDiff(t *testing.T) {
	cur := append(accts("a.lg.jp", 20), Record{Alias: "info@a.lg.jp", Target: "u00@a.lg.jp"})
	cur[1].Secret = "{PLAIN}kept"
	in := accts("a.lg.jp", 20)
	in = in[1:]                                                        // u00 removed
	in = append(in, Record{Line: 30, Local: "new", Domain: "a.lg.jp"}) // added
	in[0].Name = "Renamed"                                             // u01 changed
	in[1].Flags = OutboundBlocked                                      // u02 changed
	in = append(in, Record{Line: 31, Alias: "info@a.lg.jp", Target: "u01@a.lg.jp"})

	plan, err := PlanSync(syncConfig(), cur, in, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := plan.Diff
	keys := func(cs []Change) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Kind+" "+c.Key+" "+strings.Join(c.Fields, ","))
		}
		return strings.Join(s, "; ")
	}
	if got := keys(d.Added); got != "account new@a.lg.jp " {
		t.Errorf("added: %s", got)
	}
	if got := keys(d.Removed); got != "account u00@a.lg.jp " {
		t.Errorf("removed: %s", got)
	}
	if got := keys(d.Changed); got != "account u01@a.lg.jp name; account u02@a.lg.jp flags; alias info@a.lg.jp target" {
		t.Errorf("changed: %s", got)
	}
	if d.Unchanged != 17 {
		t.Errorf("unchanged = %d", d.Unchanged)
	}
	if len(plan.Refusals) != 0 {
		t.Errorf("refused: %v", plan.Refusals)
	}
	for _, r := range plan.Records {
		if r.Local == "u01" && r.Secret != "{PLAIN}kept" {
			t.Errorf("secret of u01 not kept: %q", r.Secret)
		}
	}
}

func TestPlanSyncRefusals(t *testing.T) {
	cur := append(accts("a.lg.jp", 20), accts("b.lg.jp", 5)...)
	cases := []struct {
		name  string
		in    []Record
		opt   SyncOptions
		want  string // "" = not refused
		added int
	}{
		{"empty export", nil, SyncOptions{}, "the export is empty", 0},
		{"empty forced", nil, SyncOptions{Force: true}, "", 0},
		{"truncated", append(accts("a.lg.jp", 10), accts("b.lg.jp", 5)...), SyncOptions{},
			"would remove 10 of 20 accounts (50.0%) in a.lg.jp", 0},
		{"within limit", append(accts("a.lg.jp", 18), accts("b.lg.jp", 5)...), SyncOptions{}, "", 0},
		{"truncated forced", accts("a.lg.jp", 1), SyncOptions{Force: true}, "", 0},
		{"scoped to a domain", accts("b.lg.jp", 6), SyncOptions{Domain: "B.LG.JP"}, "", 1},
		{"undeclared domain", append(cur, Record{Line: 99, Local: "x", Domain: "c.lg.jp"}), SyncOptions{},
			"export:99: domain c.lg.jp of x@c.lg.jp is not declared", 1},
		{"one removal of twenty", append(accts("a.lg.jp", 19), accts("b.lg.jp", 5)...), SyncOptions{}, "", 0},
	}
	for _, c := range cases {
		plan, err := PlanSync(syncConfig(), cur, c.in, c.opt)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got := strings.Join(plan.Refusals, "\n")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: refusals = %q, want %q", c.name, got, c.want)
		}
		if len(plan.Diff.Added) != c.added {
			t.Errorf("%s: added %d, want %d", c.name, len(plan.Diff.Added), c.added)
		}
	}
	// Out-of-scope rows are an error, not silently ignored.
	if _, err := PlanSync(syncConfig(), cur, accts("a.lg.jp", 20), SyncOptions{Domain: "b.lg.jp"}); err == nil ||
		!strings.Contains(err.Error(), "not in domain b.lg.jp") {
		t.Errorf("out of scope: %v", err)
	}
	// Removing the target of an alias leaves the directory invalid.
	withAlias := append(accts("a.lg.jp", 20), Record{Line: 40, Alias: "info@a.lg.jp", Target: "u19@a.lg.jp"})
	in := append(accts("a.lg.jp", 19), Record{Line: 40, Alias: "info@a.lg.jp", Target: "u19@a.lg.jp"})
	plan, _ := PlanSync(syncConfig(), withAlias, in, SyncOptions{})
	if got := strings.Join(plan.Refusals, "\n"); !strings.Contains(got, "target u19@a.lg.jp does not exist") {
		t.Errorf("dangling alias not refused: %q", got)
	}
}

func BenchmarkPlanSync100k(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Domains = []DomainConfig{{Name: "a.lg.jp"}}
	cur := accts2("a.lg.jp", 100_000, 0)
	in := accts2("a.lg.jp", 100_000, 500) // 500 removed, 500 added
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plan, err := PlanSync(cfg, cur, in, SyncOptions{})
		if err != nil || len(plan.Diff.Added) != 500 {
			b.Fatal(err, len(plan.Diff.Added))
		}
	}
}

func accts2(domain string, n, offset int) []Record {
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = Record{Line: i + 2, Local: fmt.Sprintf("user%07d", i+offset), Domain: domain}
	}
	return rs
}

func TestPlanSyncKeepsMissingFields(t *testing.T) {
	cur := accts("a.lg.jp", 3)
	cur[0].Flags, cur[0].Name, cur[0].Secret, cur[0].Allow = OutboundBlocked, "Baito", "{PLAIN}s", []string{"*@partner.jp"}
	in := accts("a.lg.jp", 3)
	for i := range in {
		in[i].Missing = FieldFlags | FieldSecret | FieldAllow // an export of addresses and names
	}
	cases := []struct {
		name  string
		reset bool
		want  Record
	}{
		{"kept", false, Record{Name: "", Flags: OutboundBlocked, Secret: "{PLAIN}s", Allow: []string{"*@partner.jp"}}},
		{"reset", true, Record{Name: "", Flags: 0, Secret: "", Allow: nil}},
	}
	for _, c := range cases {
		plan, err := PlanSync(syncConfig(), cur, in, SyncOptions{ResetMissing: c.reset})
		if err != nil {
			t.Fatal(err)
		}
		var got *Record
		for i := range plan.Records {
			if plan.Records[i].Local == "u00" {
				got = &plan.Records[i]
			}
		}
		if got == nil || got.Flags != c.want.Flags || got.Secret != c.want.Secret ||
			strings.Join(got.Allow, ",") != strings.Join(c.want.Allow, ",") || got.Missing != 0 {
			t.Errorf("%s: u00 = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestPlanSyncKeepKindsAndPatches(t *testing.T) {
	cur := append(accts("a.lg.jp", 3), Record{Alias: "info@a.lg.jp", Target: "u00@a.lg.jp"})
	// An alias file alone: the accounts stay.
	in := []Record{{Line: 1, Alias: "desk@a.lg.jp", Target: "u01@a.lg.jp"}}
	plan, err := PlanSync(syncConfig(), cur, in, SyncOptions{KeepAccounts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Diff.Removed) != 1 || plan.Diff.Removed[0].Key != "info@a.lg.jp" || len(plan.Diff.Added) != 1 || plan.Diff.Unchanged != 3 {
		t.Errorf("alias-only sync: %+v", plan.Diff)
	}
	// Patches only (a sender.dat): everything kept, one account changed.
	patches := []Patch{
		{Source: "sender.dat", Line: 1, Local: "u02", Set: OutboundBlocked, Allow: []string{"*@partner.jp"}, SetAllow: true},
		{Source: "bogus/sender.dat", Line: 1, Local: "nobody", Domain: "a.lg.jp", Set: OutboundBlocked},
	}
	plan, err = PlanSync(syncConfig(), cur, nil, SyncOptions{KeepAccounts: true, KeepAliases: true, Patches: patches})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Diff.Changed) != 1 || strings.Join(plan.Diff.Changed[0].Fields, ",") != "flags,allow" {
		t.Errorf("patched: %+v", plan.Diff.Changed)
	}
	if got := strings.Join(plan.Refusals, "\n"); !strings.Contains(got, "bogus/sender.dat:1: no account nobody@a.lg.jp") {
		t.Errorf("refusals = %q", got)
	}
}

func TestPlanSyncTwins(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Domains = []DomainConfig{{Name: "city.x.lg.jp"}, {Name: "city.x.aichi.jp", Twin: "city.x.lg.jp"}}
	cur := accts("city.x.lg.jp", 20)
	cur[3].Flags = OutboundBlocked
	in := accts("city.x.aichi.jp", 20) // the same mailboxes, exported under the regional domain
	for i := range in {
		in[i].Missing = FieldFlags
	}
	plan, err := PlanSync(cfg, cur, in, SyncOptions{Domain: "city.x.aichi.jp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Diff.Removed)+len(plan.Diff.Added) != 0 || len(plan.Diff.Changed) != 20 || len(plan.Refusals) != 0 {
		t.Fatalf("twin sync: %d added, %d removed, %d changed, refusals %v", len(plan.Diff.Added), len(plan.Diff.Removed), len(plan.Diff.Changed), plan.Refusals)
	}
	if plan.Records[3].Flags != OutboundBlocked {
		t.Errorf("flags lost across twins: %+v", plan.Records[3])
	}
}
