package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/export"
)

func init() {
	register(&command{name: "accounts sync", summary: "bring the account mirror up to date from the inner server's exports and E-Post files", run: runAccountsSync})
}

// syncJSON is the --json output of accounts sync.
type syncJSON struct {
	Counts struct {
		Added     int `json:"added"`
		Removed   int `json:"removed"`
		Changed   int `json:"changed"`
		Unchanged int `json:"unchanged"`
	} `json:"counts"`
	Domains  []domainCount   `json:"domains"`
	Added    []changeJSON    `json:"added"`
	Removed  []changeJSON    `json:"removed"`
	Changed  []changeJSON    `json:"changed"`
	Errors   []lineErrorJSON `json:"errors"`
	Refusals []string        `json:"refusals"`
	Applied  bool            `json:"applied"`
}

// domainCount is the summary line of one domain: the accounts and aliases
// the new directory holds and what changed.
type domainCount struct {
	Domain   string `json:"domain"`
	Accounts int    `json:"accounts"`
	Aliases  int    `json:"aliases"`
	Added    int    `json:"added"`
	Removed  int    `json:"removed"`
	Changed  int    `json:"changed"`
}

type changeJSON struct {
	Kind   string   `json:"kind"`
	Key    string   `json:"key"`
	Name   string   `json:"name,omitempty"`
	Flags  string   `json:"flags,omitempty"`
	Target string   `json:"target,omitempty"`
	Allow  []string `json:"allow,omitempty"`
	Fields []string `json:"fields,omitempty"`
}

type lineErrorJSON struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func runAccountsSync(env *cmdEnv, args []string) int {
	fs := newFlags(env, "accounts sync", "-c FILE --from SOURCE [--from SOURCE ...] [options]", `
Reads the sources, merges them, compares the result with the gateway's
directory file and (unless --dry-run) replaces the file atomically, keeping
the previous one as .bak. The first sync creates the file: set
accounts.directory before it.

A source is one of (detected from its name or content; --kind before a
--from says it when detection cannot):
  export         the inner server's account list: TSV, CSV or one address a
                 line, Shift_JIS or UTF-8, with a header (see accounts/FORMAT.md)
  aliases        E-Post alias commands: epstman mode=NA lines, or aliimport.sh
  sender         E-Post's sender.dat of one account, in a folder named after
                 it (inbox/bucho/sender.dat): outbound_blocked and its allow list
  sender-global  E-Post's global sender.dat (EPOST/MS/sender.dat): every account
  ldap           an LDAP or Active Directory search, as an RFC 4516 URL:
                 ldap://host/BASE-DN??SCOPE?FILTER (scope default sub, filter
                 default (mail=*)); see the --ldap-* options

Entry kinds no source carries are kept (an alias file alone keeps every
account); fields an export has no column for (flags, names, secrets) keep
their current values unless --reset-missing.

Refused, with nothing written: invalid lines (unless --skip-invalid), an
empty export, one that would remove more than accounts.max_removal_percent of
a domain's accounts (unless --force), or a directory that would be invalid.
A running gateway picks the new directory up on SIGHUP.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	var srcs sourceFlags
	fs.Var(fromFlag{&srcs}, "from", "a source `file` (- for standard input); repeatable")
	fs.Var(kindFlag{&srcs}, "kind", "the `kind` of the next --from: export, aliases, sender or sender-global")
	format := fs.String("format", "auto", "export format: auto, tsv, csv or list")
	encoding := fs.String("encoding", "auto", "encoding of the sources: auto, utf-8 or shift_jis")
	domain := fs.String("domain", "", "sync only this `domain` (and its twin); also the domain of rows that give only a local part")
	columns := fs.String("columns", "", "column names in order, when the export has no header line (e.g. account,name,flags)")
	dryRun := fs.Bool("dry-run", false, "show the result, write nothing")
	showDiff := fs.Bool("diff", false, "list every change (else only the counts per domain)")
	force := fs.Bool("force", false, "apply even an empty export or a mass removal")
	skipInvalid := fs.Bool("skip-invalid", false, "list invalid lines and skip them instead of refusing")
	resetMissing := fs.Bool("reset-missing", false, "clear the fields an export has no column for, instead of keeping them")
	asJSON := fs.Bool("json", false, "print one JSON object")
	lf := addLDAPFlags(fs)
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if len(srcs.list) == 0 {
		fmt.Fprintln(env.stderr, "accounts sync: --from is required")
		return exitUsage
	}
	if srcs.pending != "" {
		fmt.Fprintf(env.stderr, "accounts sync: --kind %s must come before the --from it describes\n", srcs.pending)
		return exitUsage
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	dirPath := cfg.Accounts.Directory
	if dirPath == "" {
		fmt.Fprintf(env.stderr, "%s: accounts.directory is not set: set it to where the directory file should be (for example /var/lib/sekisho/accounts.tsv); the first sync creates the file\n", cfg.Source)
		return exitFinding
	}
	current, err := accounts.ReadFile(dirPath)
	existed := true
	if err != nil {
		if _, statErr := os.Stat(dirPath); !errors.Is(statErr, os.ErrNotExist) {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		current, existed = nil, false // the first sync creates the file
	}

	opt := export.Options{Format: *format, Encoding: *encoding, Domain: *domain, Restrict: *domain != "",
		SkipInvalid: *skipInvalid, FoldLocal: foldRule(cfg.Accounts), Mailboxes: accounts.MailboxDomains(cfg.Accounts)}
	if *columns != "" {
		opt.Columns = strings.Split(*columns, ",")
	}
	lopt, err := lf.options(opt)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitUsage
	}
	m, err := readSources(env, cfg.Accounts, srcs.list, opt, lopt)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}

	out := syncJSON{Errors: []lineErrorJSON{}, Refusals: []string{}, Added: []changeJSON{}, Removed: []changeJSON{}, Changed: []changeJSON{}, Domains: []domainCount{}}
	out.Errors = append(out.Errors, m.errors...)
	if len(m.errors) > 0 && !*skipInvalid {
		out.Refusals = append(out.Refusals, fmt.Sprintf("%d invalid line(s) in %s (fix them, or use --skip-invalid)", len(m.errors), strings.Join(m.names, ", ")))
	}
	// The result of the valid lines is shown even when invalid lines refuse
	// the sync, so one run tells the administrator everything.
	plan, err := accounts.PlanSync(cfg.Accounts, current, m.records, accounts.SyncOptions{
		Domain: *domain, Force: *force, ResetMissing: *resetMissing, Patches: m.patches,
		KeepAccounts: !m.accounts, KeepAliases: !m.aliases})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	out.Refusals = append(out.Refusals, plan.Refusals...)
	fillDiff(&out, &plan.Diff)
	out.Domains = domainCounts(cfg.Accounts, plan)
	if len(out.Refusals) == 0 && !*dryRun {
		if err := accounts.WriteFile(dirPath, plan.Records); err != nil {
			fmt.Fprintf(env.stderr, "writing %s: %v (the previous directory is untouched)\n", dirPath, err)
			return exitFinding
		}
		out.Applied = true
	}

	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		printSyncText(env, dirPath, &out, plan, *dryRun, *showDiff, existed)
	}
	if len(out.Refusals) > 0 {
		return exitFinding
	}
	return exitOK
}

// foldRule tells the export reader which domains compare local parts
// case-insensitively, so its duplicate check agrees with the directory.
func foldRule(c accounts.Config) func(string) bool {
	fold := map[string]bool{}
	for _, d := range c.Domains {
		if name, err := addr.Domain(d.Name); err == nil {
			fold[name] = d.LocalPartCase != "sensitive"
		}
	}
	return func(domain string) bool {
		f, ok := fold[domain]
		return !ok || f
	}
}

// domainCounts summarizes the new directory per domain, in name order.
func domainCounts(cfg accounts.Config, plan *accounts.SyncPlan) []domainCount {
	by := map[string]*domainCount{}
	get := func(d string) *domainCount {
		if by[d] == nil {
			by[d] = &domainCount{Domain: d}
		}
		return by[d]
	}
	aliasDomain := func(pattern string) string {
		_, d, _ := addr.Split(pattern)
		return d
	}
	for i := range plan.Records {
		r := &plan.Records[i]
		if r.IsAlias() {
			get(aliasDomain(r.Alias)).Aliases++
		} else {
			get(r.Domain).Accounts++
		}
	}
	count := func(cs []accounts.Change, inc func(*domainCount)) {
		for _, c := range cs {
			r := c.New
			if r == nil {
				r = c.Old
			}
			if r.IsAlias() {
				inc(get(aliasDomain(r.Alias)))
			} else {
				inc(get(r.Domain))
			}
		}
	}
	count(plan.Diff.Added, func(d *domainCount) { d.Added++ })
	count(plan.Diff.Removed, func(d *domainCount) { d.Removed++ })
	count(plan.Diff.Changed, func(d *domainCount) { d.Changed++ })
	list := make([]domainCount, 0, len(by))
	for _, d := range by {
		list = append(list, *d)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Domain < list[j].Domain })
	return list
}

func fillDiff(out *syncJSON, d *accounts.Diff) {
	conv := func(cs []accounts.Change, useNew bool) []changeJSON {
		list := make([]changeJSON, 0, len(cs))
		for _, c := range cs {
			j := changeJSON{Kind: c.Kind, Key: c.Key, Fields: c.Fields}
			r := c.Old
			if useNew {
				r = c.New
			}
			if r != nil && c.Fields == nil {
				if r.IsAlias() {
					j.Target = r.Target
				} else {
					j.Name, j.Allow = r.Name, r.Allow
					if r.Flags != 0 {
						j.Flags = r.Flags.String()
					}
				}
			}
			list = append(list, j)
		}
		return list
	}
	out.Added, out.Removed, out.Changed = conv(d.Added, true), conv(d.Removed, false), conv(d.Changed, true)
	out.Counts.Added, out.Counts.Removed = len(d.Added), len(d.Removed)
	out.Counts.Changed, out.Counts.Unchanged = len(d.Changed), d.Unchanged
}

// printSyncText prints the invalid lines first, then the changes (with
// --diff), then the summary per domain and the verdict, so that the
// problems and the outcome are never scrolled away by a long diff.
func printSyncText(env *cmdEnv, dirPath string, out *syncJSON, plan *accounts.SyncPlan, dryRun, showDiff, existed bool) {
	w := env.stdout
	for _, e := range out.Errors {
		fmt.Fprintf(w, "%s:%d: %s\n", e.File, e.Line, e.Reason)
	}
	if showDiff {
		for _, c := range plan.Diff.Added {
			fmt.Fprintf(w, "+ %s %s%s\n", c.Kind, c.Key, describe(c.New))
		}
		for _, c := range plan.Diff.Removed {
			fmt.Fprintf(w, "- %s %s%s\n", c.Kind, c.Key, describe(c.Old))
		}
		for _, c := range plan.Diff.Changed {
			fmt.Fprintf(w, "~ %s %s", c.Kind, c.Key)
			for _, f := range c.Fields {
				fmt.Fprintf(w, "  %s", fieldChange(f, c.Old, c.New))
			}
			fmt.Fprintln(w)
		}
	}
	for _, d := range out.Domains {
		fmt.Fprintf(w, "%s: accounts %d, aliases %d (added %d, removed %d, changed %d)\n",
			d.Domain, d.Accounts, d.Aliases, d.Added, d.Removed, d.Changed)
	}
	fmt.Fprintf(w, "added %d, removed %d, changed %d, unchanged %d",
		out.Counts.Added, out.Counts.Removed, out.Counts.Changed, out.Counts.Unchanged)
	if len(out.Errors) > 0 {
		fmt.Fprintf(w, ", invalid lines %d", len(out.Errors))
	}
	if !showDiff && out.Counts.Added+out.Counts.Removed+out.Counts.Changed > 0 {
		fmt.Fprint(w, " (--diff lists them)")
	}
	fmt.Fprintln(w)
	for _, r := range out.Refusals {
		fmt.Fprintf(w, "refused: %s\n", r)
	}
	switch {
	case out.Applied && existed:
		fmt.Fprintf(w, "written: %s (previous kept as %s.bak); send SIGHUP to a running gateway to load it\n", dirPath, dirPath)
	case out.Applied:
		fmt.Fprintf(w, "written: %s (created); start the gateway, or send SIGHUP to a running one, to load it\n", dirPath)
	case len(out.Refusals) > 0:
		fmt.Fprintf(w, "nothing written: %s is untouched\n", dirPath)
	case dryRun:
		fmt.Fprintln(w, "dry run: nothing written")
	}
}

func describe(r *accounts.Record) string {
	if r == nil {
		return ""
	}
	if r.IsAlias() {
		return " -> " + r.Target
	}
	s := ""
	if r.Name != "" {
		s += fmt.Sprintf("  name=%q", r.Name)
	}
	if r.Flags != 0 {
		s += "  flags=" + r.Flags.String()
	}
	if len(r.Allow) > 0 {
		s += "  allow=" + strings.Join(r.Allow, ",")
	}
	return s
}

func fieldChange(field string, a, b *accounts.Record) string {
	switch field {
	case "name":
		return fmt.Sprintf("name: %q -> %q", a.Name, b.Name)
	case "flags":
		return fmt.Sprintf("flags: %s -> %s", a.Flags, b.Flags)
	case "target":
		return fmt.Sprintf("target: %s -> %s", a.Target, b.Target)
	case "local_part_case":
		return fmt.Sprintf("local part: %s -> %s", a.Local, b.Local)
	case "domain":
		return fmt.Sprintf("domain: %s -> %s", a.Domain, b.Domain)
	case "allow":
		return fmt.Sprintf("allow: %s -> %s", orDash(strings.Join(a.Allow, ",")), orDash(strings.Join(b.Allow, ",")))
	case "secret":
		return "secret: changed" // never printed
	}
	return field
}
