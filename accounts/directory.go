package accounts

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/sekisho/sekisho/accounts/addr"
)

// MaxAliasChain is the longest alias chain followed; longer chains and
// cycles are refused when the directory is built.
const MaxAliasChain = 10

// Directory is an immutable, fully checked set of domains, accounts and
// aliases. Lookups are map reads; a new Directory is swapped in whole.
type Directory struct {
	domains   map[string]*Domain
	accounts  []Account
	index     accountIndex
	exact     map[string]aliasEntry
	partial   map[string][]partialAlias // domain -> longest prefix first
	wildcard  map[string]aliasEntry     // domain -> the *@domain alias
	protected map[string]bool           // folded local parts
	twins     []AliasEntry              // "*@regional -> *@lg" aliases read as twins
	allow     map[string][]string       // lookup key -> canonical allow list
}

type aliasEntry struct {
	pattern string
	target  string // an address, or "*@domain" to keep the local part
}

type partialAlias struct {
	prefix string // folded per the domain's rule
	aliasEntry
}

type aliasKind uint8

const (
	aliasExact aliasKind = iota
	aliasPartial
	aliasWildcard
)

type aliasPattern struct {
	kind   aliasKind
	local  string // the local part, or the prefix before '*'
	domain string
}

func parseAliasPattern(s string) (aliasPattern, error) {
	l, d, ok := addr.Split(s)
	if !ok {
		return aliasPattern{}, fmt.Errorf("alias %q is not local@domain, prefix*@domain or *@domain", s)
	}
	dom, err := addr.Domain(d)
	if err != nil {
		return aliasPattern{}, fmt.Errorf("alias %q: %v", s, err)
	}
	switch star := strings.IndexByte(l, '*'); {
	case l == "*":
		return aliasPattern{kind: aliasWildcard, domain: dom}, nil
	case star == len(l)-1:
		return aliasPattern{kind: aliasPartial, local: l[:star], domain: dom}, nil
	case star >= 0:
		return aliasPattern{}, fmt.Errorf("alias %q: '*' is allowed only at the end of the local part", s)
	}
	if err := addr.CheckLocal(l); err != nil {
		return aliasPattern{}, fmt.Errorf("alias %q: %v", s, err)
	}
	return aliasPattern{kind: aliasExact, local: l, domain: dom}, nil
}

func checkAliasTarget(pattern, t string) error {
	_, err := normalizeTarget(pattern, t)
	return err
}

// normalizeTarget returns the target with its domain canonical. A '*' in a
// target means "keep the local part": *@d, or E-Post's partial wildcard
// written on both sides (2009*@d -> 2009*@d), which is read as *@d. Any
// other '*' would readdress mail to a literal "2009*@d" and is refused.
func normalizeTarget(pattern, t string) (string, error) {
	if l, d, ok := addr.Split(t); ok && l != "*" && strings.Contains(l, "*") {
		pl, _, _ := addr.Split(pattern)
		if l != pl || !strings.HasSuffix(l, "*") {
			return "", fmt.Errorf("%q: '*' in a target keeps the local part: write *@%s, or the pattern's own prefix (%s)", t, d, pl)
		}
		t = "*@" + d
	}
	if strings.HasPrefix(t, "*@") {
		d, err := addr.Domain(t[2:])
		return "*@" + d, err
	}
	l, d, err := addr.Parse(t)
	return l + "@" + d, err
}

// Build checks the configuration plus the directory file's records and
// returns the Directory, or every problem found (each naming its source).
func Build(cfg Config, fileName string, file []Record) (*Directory, error) {
	d := &Directory{
		domains:   make(map[string]*Domain, len(cfg.Domains)),
		index:     newAccountIndex(len(file) + len(cfg.Accounts)),
		exact:     map[string]aliasEntry{},
		partial:   map[string][]partialAlias{},
		wildcard:  map[string]aliasEntry{},
		protected: map[string]bool{},
		allow:     map[string][]string{},
	}
	var errs []error
	for _, p := range cfg.Protected {
		d.protected[addr.FoldLocal(p)] = true
	}
	for i, dc := range cfg.Domains {
		name, err := addr.Domain(dc.Name)
		mode, err2 := parseMode(dc.Mode)
		fold, err3 := parseCase(dc.LocalPartCase)
		if err := errors.Join(err, err2, err3); err != nil {
			errs = append(errs, fmt.Errorf("accounts.domains[%d]: %v", i, err))
			continue
		}
		if len(d.domains) >= 1<<16-1 {
			errs = append(errs, fmt.Errorf("accounts.domains[%d]: more than %d domains", i, 1<<16-1))
			break
		}
		d.domains[name] = &Domain{Name: name, Mode: mode, FoldLocal: fold, ord: uint16(len(d.domains))}
	}
	for _, dc := range cfg.Domains {
		name, _ := addr.Domain(dc.Name)
		twin, _ := addr.Domain(dc.Twin)
		if dom, tw := d.domains[name], d.domains[twin]; dom != nil && tw != nil && dc.Twin != "" && tw != dom {
			dom.Twin = tw // Validate names the problems of a bad twin
		}
	}

	// All records in one list: inline configuration first, then the file.
	inline := make([]Record, 0, len(cfg.Accounts)+len(cfg.Aliases))
	where := func(r *Record) string {
		if r.Line < 0 {
			return fmt.Sprintf("configuration accounts.%s", inlineKey(r, -r.Line-1))
		}
		return fmt.Sprintf("%s:%d", fileName, r.Line)
	}
	// srcLines[i] is the Line of accounts[i]'s record: where strings are
	// built only for error messages, never per account.
	srcLines := make([]int, 0, len(file)+len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		l, dom, err := addr.Parse(a.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("configuration accounts.accounts[%d].address: %v", i, err))
			continue
		}
		var f Flags
		if a.OutboundBlocked {
			f |= OutboundBlocked
		}
		if a.Disabled {
			f |= Disabled
		}
		inline = append(inline, Record{Line: -i - 1, Local: l, Domain: dom, Name: a.Name, Secret: a.Secret, Flags: f, Allow: a.OutboundAllow})
	}
	for i, a := range cfg.Aliases {
		inline = append(inline, Record{Line: -i - 1, Alias: a.Alias, Target: a.Target})
	}

	twinAlias := d.readTwins(inline, file)

	d.accounts = make([]Account, 0, len(file)+len(cfg.Accounts))
	firstSeen := make(map[string]string)
	add := func(r *Record) {
		if r.IsAlias() {
			if twinAlias[r.Alias] {
				d.twins = append(d.twins, AliasEntry{r.Alias, r.Target})
				return
			}
			if err := d.addAlias(r, where(r), firstSeen); err != nil {
				errs = append(errs, err)
			}
			return
		}
		dom := d.domains[r.Domain]
		if dom == nil {
			errs = append(errs, fmt.Errorf("%s: domain %s of %s@%s is not declared in accounts.domains", where(r), r.Domain, r.Local, r.Domain))
			return
		}
		mb := dom.Mailboxes()
		n := uint32(len(d.accounts))
		d.accounts = append(d.accounts, Account{Local: r.Local, Domain: dom.Name, Name: r.Name, Secret: r.Secret, Flags: r.Flags, mbox: mb.ord})
		if i, dup := d.insertAccount(n, mb); dup {
			d.accounts = d.accounts[:n]
			first := Record{Line: srcLines[i]}
			errs = append(errs, fmt.Errorf("%s: account %s is already defined at %s", where(r), addr.Key(r.Local, mb.Name, mb.FoldLocal), where(&first)))
			return
		}
		srcLines = append(srcLines, r.Line)
		if len(r.Allow) > 0 {
			key := addr.Key(r.Local, mb.Name, mb.FoldLocal)
			list := make([]string, 0, len(r.Allow))
			for _, e := range r.Allow {
				n, err := NormalizeAllow(e)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %v", where(r), key, err))
					continue
				}
				list = append(list, n)
			}
			d.allow[key] = list
		}
	}
	for i := range inline {
		add(&inline[i])
	}
	for i := range file {
		add(&file[i])
	}
	for dom := range d.partial {
		p := d.partial[dom]
		sort.SliceStable(p, func(i, j int) bool { return len(p[i].prefix) > len(p[j].prefix) })
	}
	if len(errs) == 0 {
		errs = append(errs, d.checkAliases()...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// readTwins finds the aliases "*@a -> *@b" between two mirror domains of
// ours with the same case rule, neither already a twin: the shipped way of
// saying that a regional domain is an LG domain's mailboxes. Each makes a
// a twin of b; the aliases it read are returned, so Build does not also
// add them as aliases (which, keyed by the twin, would be identities).
func (d *Directory) readTwins(lists ...[]Record) map[string]bool {
	out := map[string]bool{}
	for _, list := range lists {
		for i := range list {
			r := &list[i]
			a, b, ok := twinAlias(r)
			if !ok {
				continue
			}
			da, db := d.domains[a], d.domains[b]
			if da == nil || db == nil || da == db || da.Twin != nil || db.Twin != nil ||
				da.Mode != ModeMirror || db.Mode != ModeMirror || da.FoldLocal != db.FoldLocal {
				continue
			}
			da.Twin = db
			out[r.Alias] = true
		}
	}
	return out
}

// twinAlias reports whether r is an alias "*@a -> *@b" and returns the
// canonical a and b.
func twinAlias(r *Record) (a, b string, ok bool) {
	if !r.IsAlias() || !strings.HasPrefix(r.Alias, "*@") || !strings.HasPrefix(r.Target, "*@") {
		return "", "", false
	}
	a, err1 := addr.Domain(r.Alias[2:])
	b, err2 := addr.Domain(r.Target[2:])
	return a, b, err1 == nil && err2 == nil && a != b
}

func inlineKey(r *Record, i int) string {
	if r.IsAlias() {
		return fmt.Sprintf("aliases[%d]", i)
	}
	return fmt.Sprintf("accounts[%d]", i)
}

func (d *Directory) addAlias(r *Record, where string, firstSeen map[string]string) error {
	p, err := parseAliasPattern(r.Alias)
	if err != nil {
		return fmt.Errorf("%s: %v", where, err)
	}
	dom := d.domains[p.domain]
	if dom == nil {
		return fmt.Errorf("%s: alias %s: domain %s is not declared in accounts.domains", where, r.Alias, p.domain)
	}
	target, err := normalizeTarget(r.Alias, r.Target)
	if err != nil {
		return fmt.Errorf("%s: alias %s: target: %v", where, r.Alias, err)
	}
	e := aliasEntry{pattern: r.Alias, target: target}
	dom = dom.Mailboxes() // an alias in either twin names the same mailbox
	var key string
	switch p.kind {
	case aliasExact:
		key = addr.Key(p.local, dom.Name, dom.FoldLocal)
		if _, dup := d.exact[key]; dup {
			return fmt.Errorf("%s: alias %s is already defined at %s", where, r.Alias, firstSeen["alias "+key])
		}
		d.exact[key] = e
	case aliasPartial:
		prefix := p.local
		if dom.FoldLocal {
			prefix = addr.FoldLocal(prefix)
		}
		key = prefix + "*@" + dom.Name
		for _, q := range d.partial[dom.Name] {
			if q.prefix == prefix {
				return fmt.Errorf("%s: alias %s is already defined at %s", where, r.Alias, firstSeen["alias "+key])
			}
		}
		d.partial[dom.Name] = append(d.partial[dom.Name], partialAlias{prefix: prefix, aliasEntry: e})
	case aliasWildcard:
		key = "*@" + dom.Name
		if _, dup := d.wildcard[dom.Name]; dup {
			return fmt.Errorf("%s: alias %s is already defined at %s", where, r.Alias, firstSeen["alias "+key])
		}
		d.wildcard[dom.Name] = e
	}
	firstSeen["alias "+key] = where
	return nil
}

// checkAliases resolves every alias once, so that cycles, chains that are too
// long and exact aliases pointing at nobody are refused now, not at RCPT.
func (d *Directory) checkAliases() []error {
	var errs []error
	probe := func(pattern, address string, mustExist bool) {
		r, err := d.Lookup(address)
		if err != nil {
			errs = append(errs, fmt.Errorf("alias %s: %v", pattern, err))
			return
		}
		if mustExist && r.Ours() && !r.Exists() && r.Target != "" {
			if tl, td, ok := addr.Split(r.Target); ok {
				if dom := d.domains[td]; dom != nil {
					errs = append(errs, fmt.Errorf("alias %s: target %s does not exist in %s", pattern, addr.Key(tl, td, false), dom.Name))
				}
			}
		}
	}
	keys := make([]string, 0, len(d.exact))
	for k := range d.exact {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		probe(d.exact[k].pattern, k, true)
	}
	for dom, ps := range d.partial {
		for _, p := range ps {
			probe(p.pattern, p.prefix+"sekisho-probe@"+dom, false)
		}
	}
	for dom, w := range d.wildcard {
		probe(w.pattern, "sekisho-probe@"+dom, false)
	}
	return errs
}

// Lookup answers what the gateway knows about an address. It fails only for
// an address that cannot be parsed or an alias loop (refused at Build, so
// only reachable through patterns).
func (d *Directory) Lookup(address string) (Result, error) {
	local, domain, err := addr.Parse(address)
	if err != nil {
		return Result{Input: address}, err
	}
	res := Result{Input: address, Target: local + "@" + domain}
	dom := d.domains[domain]
	if dom == nil {
		return res, nil
	}
	res.Domain = dom
	res.Protected = d.protected[addr.FoldLocal(local)]
	// A twin's addresses are its mailbox domain's: keyed and addressed
	// there, so they take that domain's route.
	dom = dom.Mailboxes()
	res.Target = local + "@" + dom.Name
	seen := make([]string, 0, 2)
	for hop := 0; ; hop++ {
		key := addr.Key(local, dom.Name, dom.FoldLocal)
		for _, s := range seen {
			if s == key {
				return res, fmt.Errorf("alias loop: %s -> %s", strings.Join(res.Chain, " -> "), key)
			}
		}
		seen = append(seen, key)
		if hop > MaxAliasChain {
			return res, fmt.Errorf("alias chain longer than %d: %s", MaxAliasChain, strings.Join(res.Chain, " -> "))
		}
		e, found := d.exact[key]
		if !found {
			if i, ok := d.findAccount(local, dom); ok {
				res.Account = &d.accounts[i]
				res.Kind = KindAccount
				if len(res.Chain) > 0 {
					res.Kind = KindAlias
				}
				res.Target = res.Account.Local + "@" + dom.Name
				return res, nil
			}
			e, found = d.matchPattern(dom, local)
		}
		if !found {
			switch {
			case dom.Mode == ModeWildcard && len(res.Chain) > 0:
				res.Kind = KindAlias
			case dom.Mode == ModeWildcard:
				res.Kind = KindWildcard
			default:
				res.Kind = KindUnknown
			}
			return res, nil
		}
		res.Chain = append(res.Chain, e.pattern)
		next := e.target
		if strings.HasPrefix(next, "*@") {
			next = local + next[1:]
		}
		res.Target = next
		nl, nd, _ := addr.Split(next)
		ndom := d.domains[nd]
		if ndom == nil {
			res.Kind = KindAlias // forwarded outside
			return res, nil
		}
		ndom = ndom.Mailboxes()
		res.Target = nl + "@" + ndom.Name
		if addr.Key(nl, ndom.Name, ndom.FoldLocal) == key {
			// An identity alias (user@d -> user@d, *@d -> *@d): the
			// address exists as it is (configurations A and B).
			if i, ok := d.findAccount(local, dom); ok {
				res.Account = &d.accounts[i]
			}
			res.Kind = KindAlias
			return res, nil
		}
		local, dom = nl, ndom
	}
}

func (d *Directory) matchPattern(dom *Domain, local string) (aliasEntry, bool) {
	if ps := d.partial[dom.Name]; len(ps) > 0 {
		l := local
		if dom.FoldLocal {
			l = addr.FoldLocal(l)
		}
		for _, p := range ps {
			if strings.HasPrefix(l, p.prefix) {
				return p.aliasEntry, true
			}
		}
	}
	e, ok := d.wildcard[dom.Name]
	return e, ok
}

// Domain returns one of our domains by canonical name, or nil.
func (d *Directory) Domain(name string) *Domain { return d.domains[name] }

// Domains returns our domains sorted by name.
func (d *Directory) Domains() []*Domain {
	out := make([]*Domain, 0, len(d.domains))
	for _, v := range d.domains {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// IsOurDomain reports whether a (canonical) domain is one of ours.
func (d *Directory) IsOurDomain(name string) bool { return d.domains[name] != nil }

// Accounts calls fn for every account, in load order, until fn returns false.
func (d *Directory) Accounts(fn func(*Account) bool) {
	for i := range d.accounts {
		if !fn(&d.accounts[i]) {
			return
		}
	}
}

// Len returns the number of accounts.
func (d *Directory) Len() int { return len(d.accounts) }

// Account returns the account with exactly this address, or nil. Used for
// SMTP AUTH, where the login names an account and no alias is followed.
func (d *Directory) Account(address string) *Account {
	local, domain, err := addr.Parse(address)
	if err != nil {
		return nil
	}
	dom := d.domains[domain]
	if dom == nil {
		return nil
	}
	dom = dom.Mailboxes()
	if i, ok := d.findAccount(local, dom); ok {
		return &d.accounts[i]
	}
	return nil
}

// Store holds the current Directory; readers never block, and a reload
// swaps in a new one whole.
type Store struct{ p atomic.Pointer[Directory] }

// NewStore returns a Store holding d.
func NewStore(d *Directory) *Store {
	s := &Store{}
	s.p.Store(d)
	return s
}

// Get returns the current Directory.
func (s *Store) Get() *Directory { return s.p.Load() }

// Swap replaces the Directory.
func (s *Store) Swap(d *Directory) { s.p.Store(d) }

// AliasEntry is an alias as configured: its pattern and target.
type AliasEntry struct {
	Alias, Target string
}

// Aliases returns every alias sorted by pattern.
func (d *Directory) Aliases() []AliasEntry {
	var out []AliasEntry
	for _, e := range d.exact {
		out = append(out, AliasEntry{e.pattern, e.target})
	}
	for _, ps := range d.partial {
		for _, p := range ps {
			out = append(out, AliasEntry{p.pattern, p.target})
		}
	}
	for _, e := range d.wildcard {
		out = append(out, AliasEntry{e.pattern, e.target})
	}
	out = append(out, d.twins...)
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out
}
