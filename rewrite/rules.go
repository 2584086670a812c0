package rewrite

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Rewriter holds the compiled rules of a configuration: the receive-time
// list and the named sets. It is immutable and safe for concurrent use; a
// configuration reload builds a new one.
type Rewriter struct {
	def  *RuleSet
	sets map[string]*RuleSet
}

// RuleSet is one ordered rule list.
type RuleSet struct {
	name  string
	rules []*rule
	// active[src] is the union of the classes of the rules that apply to
	// messages from src, so that a message no rule can touch costs nothing.
	active [SourceInternet + 1]classSet
}

type matchKind uint8

const (
	matchAddress matchKind = iota + 1
	matchDomain
	matchSubdomains
	matchRegexp
	matchTable
)

type rule struct {
	name    string
	key     string // "rules[2]", for messages
	kind    matchKind
	classes classSet
	sources sourceSet
	sender  []domainPattern // nil: any
	rcpt    []domainPattern // nil: any
	stop    bool
	keep    bool

	local, domain string // matchAddress: folded local part; matchAddress, matchDomain: domain
	suffix        string // matchSubdomains: ".domain"
	newLocal      string // matchAddress
	newDomain     string // matchAddress, matchDomain, matchSubdomains
	keepLabels    bool   // matchSubdomains with "*.new": the subdomain labels stay
	table         map[string]string
	re            *regexp.Regexp
	tmpl          string
}

type domainPattern struct {
	domain string
	suffix string // ".domain" for "*.domain"
}

func (p domainPattern) match(d string) bool {
	if p.suffix != "" {
		return len(d) > len(p.suffix) && strings.HasSuffix(d, p.suffix)
	}
	return d == p.domain
}

func matchAny(ps []domainPattern, d string) bool {
	for _, p := range ps {
		if p.match(d) {
			return true
		}
	}
	return false
}

// New compiles a configuration: it validates it, loads the table files and
// refuses rule lists that loop. Every problem is reported, with the key path
// and, for tables, FILE:LINE.
func New(cfg Config) (*Rewriter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := compiler{tables: map[string]tableLoad{}}
	w := &Rewriter{def: c.list("rules", "", cfg.Rules), sets: map[string]*RuleSet{}}
	for i, s := range cfg.Sets {
		w.sets[s.Name] = c.list(fmt.Sprintf("sets[%d].rules", i), s.Name, s.Rules)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return w, nil
}

// Default returns the receive-time rules (`rewrite.rules`).
func (w *Rewriter) Default() *RuleSet { return w.def }

// Set returns the named rule set (`rewrite.sets`).
func (w *Rewriter) Set(name string) (*RuleSet, bool) {
	s, ok := w.sets[name]
	return s, ok
}

// SetNames lists the named sets in alphabetical order.
func (w *Rewriter) SetNames() []string {
	names := make([]string, 0, len(w.sets))
	for n := range w.sets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Name is the set's name, "" for the receive-time rules.
func (s *RuleSet) Name() string { return s.name }

// Len is the number of rules.
func (s *RuleSet) Len() int { return len(s.rules) }

type tableLoad struct {
	t   *Table
	err error
}

type compiler struct {
	tables map[string]tableLoad
	errs   []error
}

func (c *compiler) list(key, name string, cfgs []RuleConfig) *RuleSet {
	s := &RuleSet{name: name}
	for i, rc := range cfgs {
		r, err := c.rule(fmt.Sprintf("%s[%d]", key, i), rc)
		if err != nil {
			continue
		}
		s.rules = append(s.rules, r)
		for src := SourceInner; src <= SourceInternet; src++ {
			if r.sources.has(src) {
				s.active[src] |= r.classes
			}
		}
	}
	if len(s.rules) == len(cfgs) {
		c.errs = append(c.errs, checkLoops(s.rules)...)
	}
	return s
}

// rule compiles one validated rule configuration.
func (c *compiler) rule(key string, rc RuleConfig) (*rule, error) {
	r := &rule{name: rc.Name, key: key, stop: rc.Stop || rc.Keep, keep: rc.Keep}
	for _, cl := range rc.Classes {
		v, _ := ParseClass(cl)
		r.classes |= 1 << v
	}
	if r.classes == 0 {
		r.classes = allClasses
	}
	for _, src := range rc.Source {
		v, _ := ParseSource(src)
		r.sources |= 1 << v
	}
	r.sender = patterns(rc.SenderDomain)
	r.rcpt = patterns(rc.RecipientDomain)
	switch {
	case rc.Address != "":
		l, d, _ := addr.Parse(rc.Address)
		r.kind, r.local, r.domain = matchAddress, addr.FoldLocal(l), d
		if !r.keep {
			r.newLocal, r.newDomain, _ = addr.Parse(rc.Replace)
		}
	case rc.Domain != "":
		d, wild, _ := canonicalPattern(rc.Domain)
		r.kind, r.domain = matchDomain, d
		if wild {
			r.kind, r.suffix = matchSubdomains, "."+d
		}
		if !r.keep {
			r.newDomain, r.keepLabels, _ = canonicalPattern(rc.Replace)
		}
	case rc.Regexp != "":
		r.kind, r.tmpl = matchRegexp, rc.Replace
		r.re, _ = compileAnchored(rc.Regexp)
	case rc.Table != "":
		r.kind = matchTable
		ld, seen := c.tables[rc.Table]
		if !seen {
			ld.t, ld.err = LoadTable(rc.Table)
			c.tables[rc.Table] = ld
			for _, e := range keyerr.Flatten(ld.err) {
				c.errs = append(c.errs, fmt.Errorf("%s.table: %w", key, e))
			}
		}
		if ld.err != nil {
			return nil, ld.err
		}
		r.table = ld.t.Forward
		if reverse, _ := parseDirection(rc.Direction); reverse {
			r.table = ld.t.Reverse
		}
	}
	return r, nil
}

func patterns(list []string) []domainPattern {
	var out []domainPattern
	for _, p := range list {
		d, wild, _ := canonicalPattern(p)
		if wild {
			out = append(out, domainPattern{suffix: "." + d})
		} else {
			out = append(out, domainPattern{domain: d})
		}
	}
	return out
}

// errRewrite describes a rewrite that produced something unusable.
type errRewrite struct{ msg string }

func (e *errRewrite) Error() string { return e.msg }

// apply runs the rule on one address. It reports whether the rule matched
// and the new local part and domain (unchanged for keep rules). The local
// part is only computed when the rule needs it.
func (r *rule) apply(sl *slot) (newLocal, newDomain string, matched bool, err error) {
	d := sl.domain
	switch r.kind {
	case matchTable:
		v, ok := r.table[d]
		if !ok {
			return "", "", false, nil
		}
		return sl.localPart(), v, true, nil
	case matchDomain:
		if d != r.domain {
			return "", "", false, nil
		}
		if r.keep {
			return sl.localPart(), d, true, nil
		}
		return sl.localPart(), r.newDomain, true, nil
	case matchSubdomains:
		if len(d) <= len(r.suffix) || !strings.HasSuffix(d, r.suffix) {
			return "", "", false, nil
		}
		switch {
		case r.keep:
			return sl.localPart(), d, true, nil
		case r.keepLabels:
			return sl.localPart(), d[:len(d)-len(r.suffix)] + "." + r.newDomain, true, nil
		}
		return sl.localPart(), r.newDomain, true, nil
	case matchAddress:
		if d != r.domain {
			return "", "", false, nil
		}
		l := sl.localPart()
		if !equalFoldASCII(l, r.local) {
			return "", "", false, nil
		}
		if r.keep {
			return l, d, true, nil
		}
		return r.newLocal, r.newDomain, true, nil
	case matchRegexp:
		l := sl.localPart()
		a := l + "@" + d
		m := r.re.FindStringSubmatchIndex(a)
		if m == nil {
			return "", "", false, nil
		}
		if r.keep {
			return l, d, true, nil
		}
		res := string(r.re.ExpandString(nil, r.tmpl, a, m))
		nl, nd, perr := addr.Parse(res)
		if perr != nil {
			return "", "", true, &errRewrite{fmt.Sprintf("rule %q turned %s into %q, which is not a valid address: %v", r.name, a, res, perr)}
		}
		return nl, nd, true, nil
	}
	return "", "", false, nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// outputs describes what a rule can produce, for the loop check.
type outputs struct {
	address string   // one exact address (folded local@domain), or ""
	domains []string // exact domains
	suffix  string   // any subdomain ending in this (".domain"), or ""
}

func (r *rule) outputs() (outputs, bool) {
	if r.keep {
		return outputs{}, false
	}
	switch r.kind {
	case matchAddress:
		return outputs{address: addr.FoldLocal(r.newLocal) + "@" + r.newDomain, domains: []string{r.newDomain}}, true
	case matchDomain:
		return outputs{domains: []string{r.newDomain}}, true
	case matchSubdomains:
		if r.keepLabels {
			return outputs{suffix: "." + r.newDomain}, true
		}
		return outputs{domains: []string{r.newDomain}}, true
	case matchTable:
		ds := make([]string, 0, len(r.table))
		for _, v := range r.table {
			ds = append(ds, v)
		}
		sort.Strings(ds)
		return outputs{domains: ds}, true
	}
	return outputs{}, false // a regexp's results cannot be listed
}

// reaches reports whether the rule matches something out can produce, and
// an example of it.
func (r *rule) reaches(out outputs) (string, bool) {
	if r.keep {
		return "", false // an exception stops, it never rewrites again
	}
	if out.address != "" {
		l, d, _ := addr.Split(out.address)
		switch r.kind {
		case matchAddress:
			if l == r.local && d == r.domain {
				return out.address, true
			}
			return "", false
		case matchRegexp:
			return out.address, r.re.MatchString(out.address)
		}
	}
	for _, d := range out.domains {
		switch r.kind {
		case matchAddress, matchDomain:
			if d == r.domain {
				return d, true
			}
		case matchSubdomains:
			if len(d) > len(r.suffix) && strings.HasSuffix(d, r.suffix) {
				return d, true
			}
		case matchTable:
			if _, ok := r.table[d]; ok {
				return d, true
			}
		}
	}
	if s := out.suffix; s != "" {
		switch r.kind {
		case matchAddress, matchDomain:
			if strings.HasSuffix(r.domain, s) {
				return r.domain, true
			}
		case matchSubdomains:
			if strings.HasSuffix(s, r.suffix) || strings.HasSuffix(r.suffix, s) {
				return "*" + s, true
			}
		case matchTable:
			for k := range r.table {
				if strings.HasSuffix(k, s) {
					return k, true
				}
			}
		}
	}
	return "", false
}

// checkLoops refuses a list in which a rule's result is matched again by
// the same rule or an earlier one that can fire on the same message (same
// source, same class). Rules run once each, in order, so such a list never
// loops forever, but it flips addresses back and forth (A->B->A) and a
// second pass would give a different result. A chain to a later rule
// (A->B, then B->C) is fine. Regexp results cannot be listed; a regexp that
// brings an address back to an earlier value is caught when it happens.
func checkLoops(rules []*rule) []error {
	var errs []error
	for j, rj := range rules {
		out, ok := rj.outputs()
		if !ok {
			continue
		}
		for _, ri := range rules[:j+1] {
			if ri.sources&rj.sources == 0 || ri.classes&rj.classes == 0 {
				continue
			}
			ex, hit := ri.reaches(out)
			if !hit {
				continue
			}
			if ri == rj {
				errs = append(errs, fmt.Errorf("%s: rule %q produces %s, which it matches again: a second pass would rewrite it again", rj.key, rj.name, ex))
			} else {
				errs = append(errs, fmt.Errorf("%s: rule %q produces %s, which the earlier rule %q (%s) rewrites: the rules loop (A->B->A); reorder them, narrow their source or classes, or move the way back into a set", rj.key, rj.name, ex, ri.name, ri.key))
			}
		}
	}
	return errs
}
