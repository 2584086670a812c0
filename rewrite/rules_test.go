package rewrite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts/keyerr"
)

const testTable = "testdata/lgwan.tsv"

var allSources = []string{"inner", "authenticated", "internet"}

// testConfig is the rule list the corpus and property tests run with.
func testConfig() Config {
	return Config{
		Rules: []RuleConfig{
			{Name: "keep-soumu", Address: "soumu@pref.aichi.jp", Keep: true, Source: inner},
			{Name: "kikaku-old", Address: "kikaku-old@pref.aichi.jp", Replace: "kikaku@pref.aichi.lg.jp", Stop: true, Source: inner},
			{Name: "old-mail-host", Regexp: `([^@]+)@mail\.city\.toyokawa\.aichi\.jp`, Replace: "${1}@city.toyokawa.lg.jp", Source: inner},
			{Name: "regional-to-lg", Table: testTable, Source: []string{"inner", "authenticated"}},
			{Name: "aichi-subdomains", Domain: "*.pref.aichi.jp", Replace: "*.pref.aichi.lg.jp", Source: inner},
		},
		Sets: []SetConfig{{Name: "to-inner", Rules: []RuleConfig{
			{Name: "lg-to-regional", Table: testTable, Direction: "reverse", Source: allSources},
		}}},
	}
}

func mustNew(t testing.TB, cfg Config) *Rewriter {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tsv")
	if err := os.WriteFile(bad, []byte("a.jp\tb.lg.jp\na.jp\tc.lg.jp\nx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		errs []string
	}{
		{"invalid config", Config{Rules: []RuleConfig{{Name: "a", Source: inner}}}, []string{"rules[0]: give what the rule matches"}},
		{"missing table", Config{Rules: []RuleConfig{{Name: "a", Table: filepath.Join(dir, "none.tsv"), Source: inner}}},
			[]string{"rules[0].table: open " + filepath.Join(dir, "none.tsv")}},
		{"bad table reported once with lines", Config{
			Rules: []RuleConfig{{Name: "a", Table: bad, Source: inner}},
			Sets:  []SetConfig{{Name: "s", Rules: []RuleConfig{{Name: "b", Table: bad, Direction: "reverse", Source: inner}}}},
		}, []string{
			"rules[0].table: " + bad + ":2: a.jp is already mapped to b.lg.jp at line 1",
			"rules[0].table: " + bad + ":3: want two columns",
		}},
		{"forward and reverse of one table loop", Config{Rules: []RuleConfig{
			{Name: "fwd", Table: testTable, Source: inner},
			{Name: "back", Table: testTable, Direction: "reverse", Source: []string{"inner", "internet"}},
		}}, []string{`rules[1]: rule "back" produces city.nagoya.jp, which the earlier rule "fwd" (rules[0]) rewrites: the rules loop (A->B->A)`}},
		{"domain A->B->A", Config{Rules: []RuleConfig{
			{Name: "ab", Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "ba", Domain: "b.jp", Replace: "a.jp", Source: inner},
		}}, []string{`rules[1]: rule "ba" produces a.jp, which the earlier rule "ab" (rules[0]) rewrites`}},
		{"backward chain", Config{Rules: []RuleConfig{
			{Name: "bc", Domain: "b.jp", Replace: "c.jp", Source: inner},
			{Name: "ab", Domain: "a.jp", Replace: "b.jp", Source: inner},
		}}, []string{`rules[1]: rule "ab" produces b.jp, which the earlier rule "bc" (rules[0]) rewrites`}},
		{"subdomains matching their own result", Config{Rules: []RuleConfig{
			{Name: "grow", Domain: "*.jp", Replace: "*.lg.jp", Source: inner},
		}}, []string{`rules[0]: rule "grow" produces *.lg.jp, which it matches again`}},
		{"collapse into own pattern", Config{Rules: []RuleConfig{
			{Name: "collapse", Domain: "*.aichi.jp", Replace: "mail.aichi.jp", Source: inner},
		}}, []string{`rules[0]: rule "collapse" produces mail.aichi.jp, which it matches again`}},
		{"address into table", Config{Rules: []RuleConfig{
			{Name: "tab", Table: testTable, Source: inner},
			{Name: "addr", Address: "x@a.jp", Replace: "x@pref.aichi.jp", Source: inner, Classes: []string{"envelope_sender"}},
		}}, []string{`rules[1]: rule "addr" produces pref.aichi.jp, which the earlier rule "tab" (rules[0]) rewrites`}},
		{"regexp catches a literal result", Config{Rules: []RuleConfig{
			{Name: "re", Regexp: `(.*)@b\.jp`, Replace: "$1@c.jp", Source: inner},
			{Name: "addr", Address: "x@a.jp", Replace: "x@b.jp", Source: inner},
		}}, []string{`rules[1]: rule "addr" produces x@b.jp, which the earlier rule "re" (rules[0]) rewrites`}},
		{"set checked on its own", Config{Sets: []SetConfig{{Name: "s", Rules: []RuleConfig{
			{Name: "ab", Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "ba", Domain: "b.jp", Replace: "a.jp", Source: inner},
		}}}}, []string{`sets[0].rules[1]: rule "ba"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error lacks %q:\n%v", e, err)
				}
			}
			if n := len(keyerr.Flatten(err)); n != len(tt.errs) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tt.errs), err)
			}
		})
	}
}

func TestNewAcceptsNonLoops(t *testing.T) {
	for name, cfg := range map[string]Config{
		"forward chain": {Rules: []RuleConfig{
			{Name: "ab", Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "bc", Domain: "b.jp", Replace: "c.jp", Source: inner},
		}},
		"disjoint sources": {Rules: []RuleConfig{
			{Name: "fwd", Table: testTable, Source: inner},
			{Name: "back", Table: testTable, Direction: "reverse", Source: []string{"internet"}},
		}},
		"disjoint classes": {Rules: []RuleConfig{
			{Name: "fwd", Table: testTable, Source: inner, Classes: []string{"envelope_recipient"}},
			{Name: "back", Table: testTable, Direction: "reverse", Source: inner, Classes: []string{"header_sender"}},
		}},
		"exception before a rule": {Rules: []RuleConfig{
			{Name: "keep", Domain: "pref.aichi.lg.jp", Keep: true, Source: inner},
			{Name: "fwd", Table: testTable, Source: inner},
		}},
		"default and set are separate": testConfig(),
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	w := mustNew(t, testConfig())
	if _, ok := w.Set("to-inner"); !ok {
		t.Error("set to-inner missing")
	}
	if _, ok := w.Set("nope"); ok {
		t.Error("unknown set found")
	}
	if got := strings.Join(w.SetNames(), ","); got != "to-inner" {
		t.Errorf("SetNames = %q", got)
	}
	if w.Default().Len() != 5 || w.Default().Name() != "" {
		t.Errorf("default set: %d rules, name %q", w.Default().Len(), w.Default().Name())
	}
}
