package rewrite

import (
	"strings"
	"testing"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string // forward map on success
		errs []string          // each must appear in the error
	}{
		{
			name: "good with comments, BOM, spaces and IDN",
			in:   "\ufeff# regional\tlg\n\npref.aichi.jp\tpref.aichi.lg.jp\nCity.Nagoya.JP.  city.nagoya.lg.jp   # designated city\n  # indented comment\n例え.jp\tcity.example.lg.jp\n",
			want: map[string]string{"pref.aichi.jp": "pref.aichi.lg.jp", "city.nagoya.jp": "city.nagoya.lg.jp", "xn--r8jz45g.jp": "city.example.lg.jp"},
		},
		{
			name: "duplicate row",
			in:   "pref.aichi.jp\tpref.aichi.lg.jp\nPREF.AICHI.JP\tpref.aichi.lg.jp\n",
			errs: []string{"t.tsv:2: duplicate of line 1 (pref.aichi.jp -> pref.aichi.lg.jp)"},
		},
		{
			name: "regional mapped twice",
			in:   "pref.aichi.jp\tpref.aichi.lg.jp\n# c\npref.aichi.jp\tpref.gifu.lg.jp\n",
			errs: []string{"t.tsv:3: pref.aichi.jp is already mapped to pref.aichi.lg.jp at line 1; one regional domain cannot map to two LG domains"},
		},
		{
			name: "lg domain shared",
			in:   "city.fuchu.tokyo.jp\tcity.fuchu.lg.jp\ncity.fuchu.hiroshima.jp\tcity.fuchu.lg.jp\n",
			errs: []string{"t.tsv:2: city.fuchu.lg.jp is already the LG domain of city.fuchu.tokyo.jp at line 1; two regional domains cannot share one LG domain"},
		},
		{
			name: "chain",
			in:   "a.jp\tb.lg.jp\nb.lg.jp\tc.lg.jp\n",
			errs: []string{"t.tsv:2: b.lg.jp is an LG domain at line 1 and a regional domain here"},
		},
		{
			name: "self",
			in:   "a.jp\ta.jp\n",
			errs: []string{"t.tsv:1: a.jp is mapped to itself"},
		},
		{
			name: "columns and bad domains",
			in:   "pref.aichi.jp\n\na.jp\tb.jp\tc.jp\nuser@a.jp\tb.lg.jp\n*.a.jp\tb.lg.jp\nbad..jp\tx.lg.jp\n[192.0.2.1]\tx.lg.jp\n",
			errs: []string{
				"t.tsv:1: want two columns, regional domain and LG domain, separated by a TAB; found 1",
				"t.tsv:3: want two columns, regional domain and LG domain, separated by a TAB; found 3",
				`t.tsv:4: regional domain: "user@a.jp": a table holds plain domains (no @, no *)`,
				`t.tsv:5: regional domain: "*.a.jp": a table holds plain domains (no @, no *)`,
				"t.tsv:6: regional domain: domain \"bad..jp\"",
				"t.tsv:7: regional domain: \"[192.0.2.1]\": address literals cannot be rewritten",
			},
		},
		{
			name: "not utf-8",
			in:   "pref.aichi.jp\t\x83\\\x83t\n",
			errs: []string{"t.tsv:1: not UTF-8 text"},
		},
		{
			name: "too many problems",
			in:   strings.Repeat("x\n", 30),
			errs: []string{"t.tsv:20: want two columns", "t.tsv: 10 more problems not shown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := ParseTable(strings.NewReader(tt.in), "t.tsv")
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(tab.Forward) != len(tt.want) {
					t.Fatalf("forward = %v, want %v", tab.Forward, tt.want)
				}
				for k, v := range tt.want {
					if tab.Forward[k] != v || tab.Reverse[v] != k {
						t.Errorf("%s: forward %q reverse %q, want %q", k, tab.Forward[k], tab.Reverse[v], v)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error lacks %q:\n%v", e, err)
				}
			}
		})
	}
}

func TestLoadTableExample(t *testing.T) {
	// The shipped example must stay valid.
	tab, err := LoadTable("../configs/lgwan-domains.example.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Forward["city.toyokawa.aichi.jp"]; got != "city.toyokawa.lg.jp" {
		t.Errorf("city.toyokawa.aichi.jp -> %q", got)
	}
	for reg, lg := range tab.Forward {
		if !strings.HasSuffix(lg, ".lg.jp") || strings.HasSuffix(reg, ".lg.jp") {
			t.Errorf("example row %s -> %s is not regional -> LG", reg, lg)
		}
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add("pref.aichi.jp\tpref.aichi.lg.jp\n# c\ncity.nagoya.jp city.nagoya.lg.jp # x\n")
	f.Add("a.jp\ta.jp\nb\n\ufeffc.jp\td.jp\te")
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := ParseTable(strings.NewReader(s), "f")
		if err != nil {
			return
		}
		if len(tab.Forward) != len(tab.Reverse) {
			t.Fatalf("forward %d entries, reverse %d", len(tab.Forward), len(tab.Reverse))
		}
		for k, v := range tab.Forward {
			if tab.Reverse[v] != k || k == v {
				t.Fatalf("not one-to-one: %q -> %q", k, v)
			}
			if _, chain := tab.Forward[v]; chain {
				t.Fatalf("chain through %q", v)
			}
		}
	})
}
