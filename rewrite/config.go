package rewrite

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Config is the `rewrite` section of the configuration. FORMAT.md describes
// the rule syntax with examples.
type Config struct {
	// Rules run on every message when it is received, in order.
	Rules []RuleConfig `koanf:"rules"`
	// Sets are named rule lists that the routing layer applies when it
	// delivers to a particular next hop (the way back, like Postfix's
	// smtp_generic_maps): e.g. LG domain -> regional domain for an inner
	// server that only knows its regional domain.
	Sets []SetConfig `koanf:"sets"`
}

// SetConfig is one named rule set.
type SetConfig struct {
	Name  string       `koanf:"name"`
	Rules []RuleConfig `koanf:"rules"`
}

// RuleConfig is one rewrite rule. Exactly one of Address, Domain, Regexp and
// Table says what it matches.
type RuleConfig struct {
	// Name identifies the rule in traces and error messages.
	Name string `koanf:"name"`

	// Address matches one address (local part compared without case).
	Address string `koanf:"address"`
	// Domain matches a domain, or with a leading "*." its subdomains only.
	Domain string `koanf:"domain"`
	// Regexp matches the whole address local@domain (domain in lower case);
	// Replace may use $1 and ${name}.
	Regexp string `koanf:"regexp"`
	// Table is a file of "regional<TAB>lg" domain pairs.
	Table string `koanf:"table"`
	// Direction of a table: "forward" (regional -> LG, the default) or
	// "reverse" (LG -> regional).
	Direction string `koanf:"direction"`

	// Replace is the new address (address, regexp), or the new domain
	// (domain; "*.new" keeps the subdomain labels of a "*.old" match).
	Replace string `koanf:"replace"`
	// Keep makes the rule an exception: a match stays as it is and no later
	// rule touches it.
	Keep bool `koanf:"keep"`

	// Classes are the positions the rule touches; empty means all four.
	Classes []string `koanf:"classes"`
	// Source lists the message sources the rule applies to. Required, so
	// that whether mail from the internet is rewritten is always explicit.
	Source []string `koanf:"source"`
	// SenderDomain, when set, limits the rule to messages whose envelope
	// sender's domain matches one of these ("d" or "*.d").
	SenderDomain []string `koanf:"sender_domain"`
	// RecipientDomain, when set, limits the rule: an envelope recipient is
	// rewritten only if its own domain matches; every other position only if
	// all envelope recipients match.
	RecipientDomain []string `koanf:"recipient_domain"`

	// Stop: an address this rule rewrote is not touched by later rules.
	Stop bool `koanf:"stop"`
}

// DefaultConfig returns the section's defaults: no rules, nothing rewritten.
func DefaultConfig() Config { return Config{} }

// Resolve makes relative table paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {
	resolve := func(rules []RuleConfig) {
		for i := range rules {
			if t := rules[i].Table; t != "" && !filepath.IsAbs(t) {
				rules[i].Table = filepath.Join(base, t)
			}
		}
	}
	resolve(c.Rules)
	for i := range c.Sets {
		resolve(c.Sets[i].Rules)
	}
}

// Validate reports every problem in the section; each error starts with the
// key path relative to the section. Table files are read by New, not here.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, validateRules("rules", c.Rules)...)
	setNames := map[string]int{}
	for i, s := range c.Sets {
		key := fmt.Sprintf("sets[%d]", i)
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: missing", key))
		case strings.ContainsAny(s.Name, " \t\r\n"):
			errs = append(errs, fmt.Errorf("%s.name: %q contains white space", key, s.Name))
		default:
			if j, dup := setNames[s.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is already used by sets[%d]", key, s.Name, j))
			}
			setNames[s.Name] = i
		}
		errs = append(errs, validateRules(key+".rules", s.Rules)...)
	}
	return errors.Join(errs...)
}

func validateRules(key string, rules []RuleConfig) []error {
	var errs []error
	names := map[string]int{}
	for i, r := range rules {
		rk := fmt.Sprintf("%s[%d]", key, i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: missing", rk))
		} else {
			if j, dup := names[r.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is already used by %s[%d]", rk, r.Name, key, j))
			}
			names[r.Name] = i
		}
		for _, e := range r.problems() {
			errs = append(errs, fmt.Errorf("%s%s", rk, e))
		}
	}
	return errs
}

// problems lists what is wrong with one rule; each message starts with
// ".key: " or ": " so that the caller can prefix the rule's path.
func (r RuleConfig) problems() []string {
	var out []string
	bad := func(key, format string, a ...any) {
		sep := "."
		if key == "" {
			sep = ""
		}
		out = append(out, sep+key+": "+fmt.Sprintf(format, a...))
	}
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"address", r.Address != ""}, {"domain", r.Domain != ""}, {"regexp", r.Regexp != ""}, {"table", r.Table != ""}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		bad("", "give what the rule matches: one of address, domain, regexp, table")
	case 1:
	default:
		bad("", "give only one of address, domain, regexp, table (found %s)", strings.Join(kinds, " and "))
	}
	if r.Keep && r.Replace != "" {
		bad("keep", "cannot be combined with replace: keep leaves the address as it is")
	}
	if r.Direction != "" && r.Table == "" {
		bad("direction", "only for table rules")
	}
	if len(kinds) == 1 {
		switch kinds[0] {
		case "address":
			if _, _, err := addr.Parse(r.Address); err != nil {
				bad("address", "%v", err)
			}
			if !r.Keep {
				if r.Replace == "" {
					bad("replace", "missing: an address rule needs the new address (or keep: true)")
				} else if _, _, err := addr.Parse(r.Replace); err != nil {
					bad("replace", "%v", err)
				}
			}
		case "domain":
			wild, err := parseDomainPattern(r.Domain)
			if err != nil {
				bad("domain", "%v", err)
			}
			if !r.Keep {
				switch rwild, err := parseDomainPattern(r.Replace); {
				case r.Replace == "":
					bad("replace", "missing: a domain rule needs the new domain (or keep: true)")
				case err != nil:
					bad("replace", "%v", err)
				case rwild && !wild:
					bad("replace", "%q keeps subdomain labels, which only a \"*.domain\" match has", r.Replace)
				}
			}
		case "regexp":
			re, err := compileAnchored(r.Regexp)
			if err != nil {
				bad("regexp", "%v", err)
			}
			if !r.Keep {
				if r.Replace == "" {
					bad("replace", "missing: a regexp rule needs the new address, e.g. $1@pref.example.lg.jp (or keep: true)")
				} else if re != nil {
					if err := checkTemplate(re, r.Replace); err != nil {
						bad("replace", "%v", err)
					}
				}
			}
		case "table":
			if r.Replace != "" {
				bad("replace", "not allowed with table: the table gives the new domain")
			}
			if _, err := parseDirection(r.Direction); err != nil {
				bad("direction", "%v", err)
			}
		}
	}
	seenClass := classSet(0)
	for i, c := range r.Classes {
		cl, err := ParseClass(c)
		switch {
		case err != nil:
			bad(fmt.Sprintf("classes[%d]", i), "%v", err)
		case seenClass.has(cl):
			bad(fmt.Sprintf("classes[%d]", i), "%s is listed twice", c)
		}
		seenClass |= 1 << cl
	}
	if len(r.Source) == 0 {
		bad("source", "missing: list the sources the rule applies to (inner, authenticated, internet)")
	}
	for i, s := range r.Source {
		if _, err := ParseSource(s); err != nil {
			bad(fmt.Sprintf("source[%d]", i), "%v", err)
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"sender_domain", r.SenderDomain}, {"recipient_domain", r.RecipientDomain}} {
		for i, d := range l.list {
			if _, err := parseDomainPattern(d); err != nil {
				bad(fmt.Sprintf("%s[%d]", l.key, i), "%v", err)
			}
		}
	}
	return out
}

// parseDomainPattern checks "domain" or "*.domain" and reports which it is.
func parseDomainPattern(p string) (wild bool, err error) {
	_, wild, err = canonicalPattern(p)
	return wild, err
}

// canonicalPattern returns the canonical domain of a "d" or "*.d" pattern.
func canonicalPattern(p string) (string, bool, error) {
	wild := strings.HasPrefix(p, "*.")
	d := strings.TrimPrefix(p, "*.")
	if strings.ContainsAny(d, "*@ \t") {
		return "", false, fmt.Errorf("%q is not a domain or *.domain", p)
	}
	c, err := addr.Domain(d)
	if err != nil {
		return "", false, err
	}
	if addr.IsDomainLiteral(c) {
		return "", false, fmt.Errorf("%q: address literals cannot be rewritten", p)
	}
	return c, wild, nil
}

func parseDirection(s string) (reverse bool, err error) {
	switch s {
	case "", "forward":
		return false, nil
	case "reverse":
		return true, nil
	}
	return false, fmt.Errorf("%q is not a direction (forward, reverse)", s)
}

// compileAnchored compiles a rule's expression so that it must match the
// whole address: a partial match rewriting part of an address is never what
// an administrator meant.
func compileAnchored(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		// Report the expression as written, not our anchored version.
		if _, err2 := regexp.Compile(expr); err2 != nil {
			return nil, err2
		}
		return nil, err
	}
	return re, nil
}

// checkTemplate rejects references to groups the expression lacks, which
// regexp.Expand would silently replace with nothing ("$1x" is the group
// named "1x", a classic mistake).
func checkTemplate(re *regexp.Regexp, tmpl string) error {
	names := map[string]bool{}
	for _, n := range re.SubexpNames() {
		if n != "" {
			names[n] = true
		}
	}
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			continue
		}
		i++
		if i == len(tmpl) {
			return fmt.Errorf("%q ends with a lone $ (write $$ for a dollar sign)", tmpl)
		}
		if tmpl[i] == '$' {
			continue
		}
		var name string
		if tmpl[i] == '{' {
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return fmt.Errorf("%q: unclosed ${", tmpl)
			}
			name = tmpl[i+1 : i+end]
			i += end
		} else {
			j := i
			for j < len(tmpl) && (isWordByte(tmpl[j])) {
				j++
			}
			name = tmpl[i:j]
			i = j - 1
		}
		if name == "" {
			return fmt.Errorf("%q: $ must be followed by a group number or name", tmpl)
		}
		if n, ok := groupNumber(name); ok {
			if n > re.NumSubexp() {
				return fmt.Errorf("$%s refers to group %d, but the expression has %d", name, n, re.NumSubexp())
			}
			continue
		}
		if !names[name] {
			return fmt.Errorf("$%s refers to no group of the expression (write ${1}x, not $1x)", name)
		}
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func groupNumber(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > 1000 {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
