package accounts

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Change is one difference between the directory and an export.
type Change struct {
	Key    string   `json:"key"`  // the account address or alias pattern
	Kind   string   `json:"kind"` // "account" or "alias"
	Fields []string `json:"fields,omitempty"`
	Old    *Record  `json:"-"`
	New    *Record  `json:"-"`
}

// Diff is what a sync would change.
type Diff struct {
	Added     []Change
	Removed   []Change
	Changed   []Change
	Unchanged int
}

// Empty reports whether the sync would change nothing.
func (d *Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// SyncPlan is a computed sync: the diff, the complete new record list for
// the directory file, and the reasons it is refused (if any).
type SyncPlan struct {
	Diff     Diff
	Records  []Record
	Refusals []string
}

// SyncOptions steer PlanSync.
type SyncOptions struct {
	// Domain, when set, limits the sync to that domain (and its twin): the
	// directory's entries for other domains are kept as they are.
	Domain string
	// Force overrides the empty-export and mass-removal refusals.
	Force bool
	// KeepAccounts and KeepAliases keep the directory's accounts (aliases)
	// that the incoming records do not name: set when no source carries
	// that kind of entry (an alias file alone must not remove every
	// account).
	KeepAccounts, KeepAliases bool
	// ResetMissing clears the fields an incoming record does not carry
	// (Record.Missing) instead of keeping the directory's values.
	ResetMissing bool
	// Patches change accounts after the merge (sender.dat: outbound_blocked
	// and its allow list), in order.
	Patches []Patch
}

// Patch changes accounts of the merged directory: the importers of files
// that say something about accounts without listing them (E-Post's
// sender.dat) produce patches.
type Patch struct {
	Source string // file name, for errors
	Line   int
	// Local and Domain name the account; an empty Domain matches the local
	// part in every domain, an empty Local every account (a global file).
	Local, Domain string
	Set, Clear    Flags
	// Allow replaces the allow list when SetAllow is true.
	Allow    []string
	SetAllow bool
}

// PlanSync compares the directory file's records with the incoming ones
// (one export, or several sources merged) and builds the new directory,
// refusing what looks like a truncated export. It never writes anything.
func PlanSync(cfg Config, current, incoming []Record, opt SyncOptions) (*SyncPlan, error) {
	mailboxes := MailboxDomains(cfg, current, incoming)
	if opt.Domain != "" {
		d, err := addr.Domain(opt.Domain)
		if err != nil {
			return nil, fmt.Errorf("--domain: %v", err)
		}
		opt.Domain = mailboxes(d)
	}
	scope := func(domain string) bool { return opt.Domain == "" || mailboxes(domain) == opt.Domain }
	fold := map[string]bool{}
	for _, dc := range cfg.Domains {
		name, err := addr.Domain(dc.Name)
		if err != nil {
			continue
		}
		fold[name], _ = parseCase(dc.LocalPartCase)
	}
	// A sync has few domains and many records: their mailbox domain and
	// case rule come from a short list rather than two map reads each.
	type domInfo struct {
		name, mb string
		fold     bool
	}
	var infos []domInfo
	info := func(d string) domInfo {
		for i := range infos {
			if infos[i].name == d {
				return infos[i]
			}
		}
		mb := mailboxes(d)
		in := domInfo{d, mb, fold[mb]}
		if len(infos) < 32 {
			infos = append(infos, in)
		}
		return in
	}
	// keyOf returns the key an entry is shown by, the key that matches it
	// across the twins (an account or exact alias in either names the same
	// mailbox), and its domain.
	keyOf := func(r *Record) (key, match, domain string) {
		if r.IsAlias() {
			p, err := parseAliasPattern(r.Alias)
			if err != nil {
				return r.Alias, "alias " + r.Alias, ""
			}
			in := info(p.domain)
			l := p.local
			if in.fold {
				l = addr.FoldLocal(l)
			}
			switch p.kind {
			case aliasWildcard:
				key = "*@" + p.domain
				return key, "alias " + key, p.domain
			case aliasPartial:
				key = l + "*@" + p.domain
				return key, "alias " + key, p.domain
			}
			return l + "@" + p.domain, "alias " + l + "@" + in.mb, p.domain
		}
		in := info(r.Domain)
		l := r.Local
		if in.fold {
			l = addr.FoldLocal(l)
		}
		return l + "@" + r.Domain, "account " + l + "@" + in.mb, r.Domain
	}

	plan := &SyncPlan{}
	old := make(map[string]*Record, len(current))
	perDomain := map[string]int{}
	curMatch := make([]string, len(current))
	for i := range current {
		r := &current[i]
		_, kk, dom := keyOf(r)
		if !scope(dom) {
			plan.Records = append(plan.Records, *r)
			continue
		}
		curMatch[i] = kk
		old[kk] = r
		if !r.IsAlias() {
			perDomain[info(dom).mb]++
		}
	}
	var outOfScope []string
	seen := make(map[string]bool, len(incoming))
	merged := make([]Record, 0, len(incoming))
	mergedKeys := make([]string, 0, len(incoming))
	for i := range incoming {
		r := incoming[i]
		k, kk, dom := keyOf(&r)
		if !scope(dom) {
			outOfScope = append(outOfScope, fmt.Sprintf("line %d: %s is not in domain %s", r.Line, k, opt.Domain))
			continue
		}
		if seen[kk] {
			continue // duplicates are reported by the export reader
		}
		seen[kk] = true
		if prev := old[kk]; prev != nil && !r.IsAlias() {
			keepMissing(&r, prev, opt.ResetMissing)
		}
		r.Missing = 0
		merged = append(merged, r)
		mergedKeys = append(mergedKeys, kk)
	}
	if len(outOfScope) > 0 {
		return nil, fmt.Errorf("the export has entries outside --domain:\n  %s", strings.Join(outOfScope, "\n  "))
	}
	// Kinds no source carries are kept as they are, in file order.
	if opt.KeepAccounts || opt.KeepAliases {
		for i := range current {
			r := &current[i]
			kk := curMatch[i]
			if kk == "" || seen[kk] || (r.IsAlias() && !opt.KeepAliases) || (!r.IsAlias() && !opt.KeepAccounts) {
				continue
			}
			seen[kk] = true
			merged = append(merged, *r)
			mergedKeys = append(mergedKeys, kk)
		}
	}
	plan.Refusals = append(plan.Refusals, applyPatches(merged, opt.Patches, mailboxes, fold)...)
	for i := range merged {
		r, kk := merged[i], mergedKeys[i]
		k, _, _ := keyOf(&r)
		prev := old[kk]
		if prev == nil {
			nr := r
			plan.Diff.Added = append(plan.Diff.Added, Change{Key: k, Kind: kindName(&r), New: &nr})
		} else if fields := changedFields(prev, &r); len(fields) > 0 {
			nr := r
			plan.Diff.Changed = append(plan.Diff.Changed, Change{Key: k, Kind: kindName(&r), Fields: fields, Old: prev, New: &nr})
		} else {
			plan.Diff.Unchanged++
		}
		plan.Records = append(plan.Records, r)
	}
	removedPerDomain := map[string]int{}
	for kk, r := range old {
		if seen[kk] {
			continue
		}
		k, _, dom := keyOf(r)
		plan.Diff.Removed = append(plan.Diff.Removed, Change{Key: k, Kind: kindName(r), Old: r})
		if !r.IsAlias() {
			removedPerDomain[info(dom).mb]++
		}
	}
	for _, list := range [][]Change{plan.Diff.Added, plan.Diff.Removed, plan.Diff.Changed} {
		sort.Slice(list, func(i, j int) bool {
			if list[i].Kind != list[j].Kind {
				return list[i].Kind < list[j].Kind
			}
			return list[i].Key < list[j].Key
		})
	}

	if len(incoming) == 0 && len(opt.Patches) == 0 && !(opt.KeepAccounts && opt.KeepAliases) {
		plan.Refusals = append(plan.Refusals, "the export is empty: it would remove every entry (use --force if that is really meant)")
	} else {
		doms := make([]string, 0, len(removedPerDomain))
		for d := range removedPerDomain {
			doms = append(doms, d)
		}
		sort.Strings(doms)
		for _, d := range doms {
			n, total := removedPerDomain[d], perDomain[d]
			pct := 100 * float64(n) / float64(total)
			if pct > cfg.MaxRemovalPercent {
				plan.Refusals = append(plan.Refusals, fmt.Sprintf(
					"the export would remove %d of %d accounts (%.1f%%) in %s, more than accounts.max_removal_percent (%g%%): is the export truncated? (use --force if that is really meant)",
					n, total, pct, d, cfg.MaxRemovalPercent))
			}
		}
	}
	if opt.Force {
		plan.Refusals = nil
	}
	// The new directory must itself be valid: an alias left pointing at a
	// removed account, or an account in an undeclared domain, is refused.
	if _, err := Build(cfg, "export", plan.Records); err != nil {
		plan.Refusals = append(plan.Refusals, "the resulting directory would be invalid:\n  "+
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return plan, nil
}

// keepMissing gives r the directory's values for the fields its source did
// not carry. A secret is also kept when the export's cell is empty:
// exports rarely carry secrets.
func keepMissing(r, prev *Record, reset bool) {
	if r.Secret == "" && (r.Missing&FieldSecret == 0 || !reset) {
		r.Secret = prev.Secret
	}
	if reset {
		return
	}
	if r.Missing&FieldName != 0 {
		r.Name = prev.Name
	}
	if r.Missing&FieldFlags != 0 {
		r.Flags = prev.Flags
	}
	if r.Missing&FieldAllow != 0 && r.Allow == nil {
		r.Allow = prev.Allow
	}
}

// applyPatches applies the patches in order to the merged accounts and
// returns a refusal for each patch that names no account.
func applyPatches(recs []Record, patches []Patch, mailboxes func(string) string, fold map[string]bool) []string {
	if len(patches) == 0 {
		return nil
	}
	byKey := make(map[string][]int, len(recs))
	byLocal := make(map[string][]int, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.IsAlias() {
			continue
		}
		m := mailboxes(r.Domain)
		byKey[addr.Key(r.Local, m, fold[m])] = append(byKey[addr.Key(r.Local, m, fold[m])], i)
		byLocal[addr.FoldLocal(r.Local)] = append(byLocal[addr.FoldLocal(r.Local)], i)
	}
	var refusals []string
	for _, p := range patches {
		var hits []int
		switch {
		case p.Local == "":
			for i := range recs {
				if !recs[i].IsAlias() && (p.Domain == "" || mailboxes(recs[i].Domain) == mailboxes(p.Domain)) {
					hits = append(hits, i)
				}
			}
		case p.Domain == "":
			hits = byLocal[addr.FoldLocal(p.Local)]
		default:
			m := mailboxes(p.Domain)
			hits = byKey[addr.Key(p.Local, m, fold[m])]
		}
		if len(hits) == 0 && p.Local != "" {
			who := p.Local
			if p.Domain != "" {
				who += "@" + p.Domain
			}
			refusals = append(refusals, fmt.Sprintf("%s:%d: no account %s in the merged directory", p.Source, p.Line, who))
			continue
		}
		for _, i := range hits {
			r := &recs[i]
			r.Flags = r.Flags&^p.Clear | p.Set
			if p.SetAllow {
				r.Allow = p.Allow
			}
		}
	}
	return refusals
}

// MailboxDomains returns a function giving, for a canonical domain, the
// domain whose mailboxes it names: its twin (declared, or read from a
// "*@a -> *@b" alias of the configuration or the records), or itself.
func MailboxDomains(cfg Config, lists ...[]Record) func(string) string {
	d := &Directory{domains: map[string]*Domain{}}
	for _, dc := range cfg.Domains {
		name, err := addr.Domain(dc.Name)
		mode, err2 := parseMode(dc.Mode)
		fold, err3 := parseCase(dc.LocalPartCase)
		if err == nil && err2 == nil && err3 == nil {
			d.domains[name] = &Domain{Name: name, Mode: mode, FoldLocal: fold}
		}
	}
	for _, dc := range cfg.Domains {
		name, _ := addr.Domain(dc.Name)
		twin, _ := addr.Domain(dc.Twin)
		if dom, tw := d.domains[name], d.domains[twin]; dom != nil && tw != nil && dc.Twin != "" && tw != dom {
			dom.Twin = tw
		}
	}
	inline := make([]Record, 0, len(cfg.Aliases))
	for _, a := range cfg.Aliases {
		inline = append(inline, Record{Alias: a.Alias, Target: a.Target})
	}
	d.readTwins(append([][]Record{inline}, lists...)...)
	// Called several times per record of a 100,000-line sync, mostly with
	// the domain of the record before: remember the last answer.
	var lastIn, lastOut string
	return func(domain string) string {
		if domain == lastIn && lastIn != "" {
			return lastOut
		}
		out := domain
		if dom := d.domains[domain]; dom != nil {
			out = dom.Mailboxes().Name
		}
		lastIn, lastOut = domain, out
		return out
	}
}

func kindName(r *Record) string {
	if r.IsAlias() {
		return "alias"
	}
	return "account"
}

func changedFields(a, b *Record) []string {
	var f []string
	if a.IsAlias() {
		if a.Target != b.Target {
			f = append(f, "target")
		}
		return f
	}
	if a.Local != b.Local {
		f = append(f, "local_part_case")
	}
	if a.Domain != b.Domain {
		f = append(f, "domain") // the same mailbox, now under its twin
	}
	if a.Name != b.Name {
		f = append(f, "name")
	}
	if a.Flags != b.Flags {
		f = append(f, "flags")
	}
	if a.Secret != b.Secret {
		f = append(f, "secret")
	}
	if strings.Join(a.Allow, ",") != strings.Join(b.Allow, ",") {
		f = append(f, "allow")
	}
	return f
}
