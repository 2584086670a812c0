package rewrite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts/keyerr"
)

var inner = []string{"inner"}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		errs []string // empty: valid
	}{
		{name: "empty", cfg: DefaultConfig()},
		{name: "all matchers", cfg: Config{Rules: []RuleConfig{
			{Name: "a", Address: "Kikaku@pref.aichi.jp", Replace: "kikaku@pref.aichi.lg.jp", Source: inner},
			{Name: "b", Domain: "city.nagoya.jp", Replace: "city.nagoya.lg.jp", Source: inner, Classes: []string{"envelope_recipient", "header_recipient"}},
			{Name: "c", Domain: "*.pref.aichi.jp", Replace: "*.pref.aichi.lg.jp", Source: []string{"inner", "authenticated"}},
			{Name: "d", Regexp: `(?i)([^@]+)@mail\.(.+)`, Replace: "${1}@$2", Source: inner, SenderDomain: []string{"*.aichi.jp"}},
			{Name: "e", Table: "t.tsv", Direction: "reverse", Source: []string{"internet"}, RecipientDomain: []string{"pref.aichi.jp"}, Stop: true},
			{Name: "f", Address: "soumu@pref.aichi.jp", Keep: true, Source: inner},
		}, Sets: []SetConfig{{Name: "to-inner", Rules: []RuleConfig{{Name: "a", Table: "t.tsv", Source: inner}}}}}},
		{name: "matchers", cfg: Config{Rules: []RuleConfig{
			{Name: "none", Source: inner},
			{Name: "two", Domain: "a.jp", Table: "t.tsv", Source: inner},
		}}, errs: []string{
			"rules[0]: give what the rule matches: one of address, domain, regexp, table",
			"rules[1]: give only one of address, domain, regexp, table (found domain and table)",
		}},
		{name: "names", cfg: Config{Rules: []RuleConfig{
			{Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "x", Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "x", Domain: "c.jp", Replace: "d.jp", Source: inner},
		}}, errs: []string{"rules[0].name: missing", `rules[2].name: "x" is already used by rules[1]`}},
		{name: "replacements", cfg: Config{Rules: []RuleConfig{
			{Name: "a", Address: "a@b.jp", Source: inner},
			{Name: "b", Address: "a@b.jp", Replace: "nodomain", Source: inner},
			{Name: "c", Domain: "a.jp", Source: inner},
			{Name: "d", Domain: "a.jp", Replace: "*.b.jp", Source: inner},
			{Name: "e", Domain: "a.jp", Replace: "x@b.jp", Source: inner},
			{Name: "f", Table: "t.tsv", Replace: "x.jp", Source: inner},
			{Name: "g", Domain: "a.jp", Keep: true, Replace: "b.jp", Source: inner},
			{Name: "h", Regexp: "(a)@(b)", Source: inner},
		}}, errs: []string{
			"rules[0].replace: missing: an address rule needs the new address (or keep: true)",
			`rules[1].replace: "nodomain" is not of the form local@domain`,
			"rules[2].replace: missing: a domain rule needs the new domain (or keep: true)",
			`rules[3].replace: "*.b.jp" keeps subdomain labels, which only a "*.domain" match has`,
			`rules[4].replace: "x@b.jp" is not a domain or *.domain`,
			"rules[5].replace: not allowed with table: the table gives the new domain",
			"rules[6].keep: cannot be combined with replace",
			"rules[7].replace: missing: a regexp rule needs the new address",
		}},
		{name: "regexp", cfg: Config{Rules: []RuleConfig{
			{Name: "a", Regexp: "(unclosed", Replace: "x@y.jp", Source: inner},
			{Name: "b", Regexp: "(a)@(b)", Replace: "$3@x.jp", Source: inner},
			{Name: "c", Regexp: "(a)@(b)", Replace: "$1x@x.jp", Source: inner},
			{Name: "d", Regexp: "(?P<user>a)@b", Replace: "${user}@x.jp$", Source: inner},
			{Name: "e", Regexp: "(?P<user>a)@b", Replace: "${user}@x.jp $$ ${1}", Source: inner},
		}}, errs: []string{
			"rules[0].regexp: error parsing regexp: missing closing ): `(unclosed`",
			"rules[1].replace: $3 refers to group 3, but the expression has 2",
			"rules[2].replace: $1x refers to no group of the expression (write ${1}x, not $1x)",
			`rules[3].replace: "${user}@x.jp$" ends with a lone $`,
		}},
		{name: "direction, classes, source, domains", cfg: Config{Rules: []RuleConfig{
			{Name: "a", Table: "t.tsv", Direction: "backward", Source: inner},
			{Name: "b", Domain: "a.jp", Replace: "b.jp", Direction: "reverse", Source: inner},
			{Name: "c", Domain: "a.jp", Replace: "b.jp", Classes: []string{"headers", "header_sender", "header_sender"}, Source: inner},
			{Name: "d", Domain: "a.jp", Replace: "b.jp"},
			{Name: "e", Domain: "a.jp", Replace: "b.jp", Source: []string{"lgwan"}},
			{Name: "f", Domain: "*", Replace: "b.jp", Source: inner, SenderDomain: []string{"a b"}, RecipientDomain: []string{"[10.0.0.1]"}},
		}}, errs: []string{
			`rules[0].direction: "backward" is not a direction (forward, reverse)`,
			"rules[1].direction: only for table rules",
			`rules[2].classes[0]: "headers" is not an address class (envelope_sender, envelope_recipient, header_sender, header_recipient)`,
			"rules[2].classes[2]: header_sender is listed twice",
			"rules[3].source: missing: list the sources the rule applies to (inner, authenticated, internet)",
			`rules[4].source[0]: "lgwan" is not a source (inner, authenticated, internet)`,
			`rules[5].domain: "*" is not a domain or *.domain`,
			`rules[5].sender_domain[0]: "a b" is not a domain or *.domain`,
			`rules[5].recipient_domain[0]: "[10.0.0.1]": address literals cannot be rewritten`,
		}},
		{name: "sets", cfg: Config{Sets: []SetConfig{
			{Rules: nil},
			{Name: "to inner"},
			{Name: "x", Rules: []RuleConfig{{Name: "r", Domain: "a.jp", Source: inner}}},
			{Name: "x"},
		}}, errs: []string{
			"sets[0].name: missing",
			`sets[1].name: "to inner" contains white space`,
			"sets[2].rules[0].replace: missing",
			`sets[3].name: "x" is already used by sets[2]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			for _, e := range tt.errs {
				if !strings.Contains(got, e) {
					t.Errorf("error lacks %q:\n%s", e, got)
				}
			}
			if n := len(keyerr.Flatten(err)); n != len(tt.errs) {
				t.Errorf("%d problems, want %d:\n%s", n, len(tt.errs), got)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	c := Config{
		Rules: []RuleConfig{{Table: "t.tsv"}, {Table: "/abs/t.tsv"}, {Domain: "a.jp"}},
		Sets:  []SetConfig{{Rules: []RuleConfig{{Table: "sub/r.tsv"}}}},
	}
	c.Resolve("/etc/sekisho")
	want := []string{filepath.Join("/etc/sekisho", "t.tsv"), "/abs/t.tsv", ""}
	for i, w := range want {
		if c.Rules[i].Table != w {
			t.Errorf("rules[%d].table = %q, want %q", i, c.Rules[i].Table, w)
		}
	}
	if got := c.Sets[0].Rules[0].Table; got != filepath.Join("/etc/sekisho", "sub/r.tsv") {
		t.Errorf("sets[0].rules[0].table = %q", got)
	}
}

func TestSourceAndClassNames(t *testing.T) {
	for s := SourceInner; s <= SourceInternet; s++ {
		if p, err := ParseSource(s.String()); err != nil || p != s {
			t.Errorf("ParseSource(%q) = %v, %v", s, p, err)
		}
	}
	for c := EnvelopeSender; c <= HeaderRecipient; c++ {
		if p, err := ParseClass(c.String()); err != nil || p != c {
			t.Errorf("ParseClass(%q) = %v, %v", c, p, err)
		}
	}
	if Source(0).String() != "source(0)" || Class(9).String() != "class(9)" {
		t.Error("invalid values must still print")
	}
}
