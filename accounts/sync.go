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
	// Domain, when set, limits the sync to that domain: the directory's
	// entries for other domains are kept as they are.
	Domain string
	// Force overrides the empty-export and mass-removal refusals.
	Force bool
}

// PlanSync compares the directory file's records with an export and builds
// the new directory, refusing what looks like a truncated export. It never
// writes anything.
func PlanSync(cfg Config, current, incoming []Record, opt SyncOptions) (*SyncPlan, error) {
	scope := func(domain string) bool { return opt.Domain == "" || domain == opt.Domain }
	if opt.Domain != "" {
		d, err := addr.Domain(opt.Domain)
		if err != nil {
			return nil, fmt.Errorf("--domain: %v", err)
		}
		opt.Domain = d
	}
	fold := map[string]bool{}
	for _, dc := range cfg.Domains {
		name, err := addr.Domain(dc.Name)
		if err != nil {
			continue
		}
		fold[name], _ = parseCase(dc.LocalPartCase)
	}
	keyOf := func(r *Record) (key, domain string) {
		if r.IsAlias() {
			p, err := parseAliasPattern(r.Alias)
			if err != nil {
				return r.Alias, ""
			}
			l := p.local
			if fold[p.domain] {
				l = addr.FoldLocal(l)
			}
			switch p.kind {
			case aliasWildcard:
				return "*@" + p.domain, p.domain
			case aliasPartial:
				return l + "*@" + p.domain, p.domain
			}
			return l + "@" + p.domain, p.domain
		}
		return addr.Key(r.Local, r.Domain, fold[r.Domain]), r.Domain
	}

	plan := &SyncPlan{}
	old := make(map[string]*Record, len(current))
	perDomain := map[string]int{}
	for i := range current {
		r := &current[i]
		k, dom := keyOf(r)
		if !scope(dom) {
			plan.Records = append(plan.Records, *r)
			continue
		}
		old[kindKey(r, k)] = r
		if !r.IsAlias() {
			perDomain[dom]++
		}
	}
	var outOfScope []string
	seen := make(map[string]bool, len(incoming))
	for i := range incoming {
		r := incoming[i]
		k, dom := keyOf(&r)
		if !scope(dom) {
			outOfScope = append(outOfScope, fmt.Sprintf("line %d: %s is not in domain %s", r.Line, k, opt.Domain))
			continue
		}
		kk := kindKey(&r, k)
		if seen[kk] {
			continue // duplicates are reported by the export reader
		}
		seen[kk] = true
		prev := old[kk]
		if prev == nil {
			nr := r
			plan.Diff.Added = append(plan.Diff.Added, Change{Key: k, Kind: kindName(&r), New: &nr})
			plan.Records = append(plan.Records, r)
			continue
		}
		if r.Secret == "" {
			r.Secret = prev.Secret // exports rarely carry secrets: keep ours
		}
		if fields := changedFields(prev, &r); len(fields) > 0 {
			nr := r
			plan.Diff.Changed = append(plan.Diff.Changed, Change{Key: k, Kind: kindName(&r), Fields: fields, Old: prev, New: &nr})
		} else {
			plan.Diff.Unchanged++
		}
		plan.Records = append(plan.Records, r)
	}
	if len(outOfScope) > 0 {
		return nil, fmt.Errorf("the export has entries outside --domain:\n  %s", strings.Join(outOfScope, "\n  "))
	}
	removedPerDomain := map[string]int{}
	for kk, r := range old {
		if seen[kk] {
			continue
		}
		k, dom := keyOf(r)
		plan.Diff.Removed = append(plan.Diff.Removed, Change{Key: k, Kind: kindName(r), Old: r})
		if !r.IsAlias() {
			removedPerDomain[dom]++
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

	if len(incoming) == 0 {
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

func kindKey(r *Record, key string) string {
	if r.IsAlias() {
		return "alias " + key
	}
	return "account " + key
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
	if a.Name != b.Name {
		f = append(f, "name")
	}
	if a.Flags != b.Flags {
		f = append(f, "flags")
	}
	if a.Secret != b.Secret {
		f = append(f, "secret")
	}
	return f
}
