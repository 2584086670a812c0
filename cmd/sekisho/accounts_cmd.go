package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/export"
)

func init() {
	register(&command{name: "accounts sync", summary: "bring the account mirror up to date from the inner server's export", run: runAccountsSync})
	register(&command{name: "accounts check", summary: "tell what the gateway does with addresses as recipient and sender", run: runAccountsCheck})
	register(&command{name: "accounts list", summary: "list mirrored accounts and aliases", run: runAccountsList})
}

// syncJSON is the --json output of accounts sync.
type syncJSON struct {
	Counts struct {
		Added     int `json:"added"`
		Removed   int `json:"removed"`
		Changed   int `json:"changed"`
		Unchanged int `json:"unchanged"`
	} `json:"counts"`
	Added    []changeJSON    `json:"added"`
	Removed  []changeJSON    `json:"removed"`
	Changed  []changeJSON    `json:"changed"`
	Errors   []lineErrorJSON `json:"errors"`
	Refusals []string        `json:"refusals"`
	Applied  bool            `json:"applied"`
}

type changeJSON struct {
	Kind   string   `json:"kind"`
	Key    string   `json:"key"`
	Name   string   `json:"name,omitempty"`
	Flags  string   `json:"flags,omitempty"`
	Target string   `json:"target,omitempty"`
	Fields []string `json:"fields,omitempty"`
}

type lineErrorJSON struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func runAccountsSync(env *cmdEnv, args []string) int {
	fs := newFlags(env, "accounts sync", "-c FILE --from EXPORT [options]", `
Compares the inner server's account export with the gateway's directory file,
prints what would be added, removed and changed, and (unless --dry-run)
replaces the directory file atomically, keeping the previous one as .bak.
Refused, with nothing written: an export with invalid lines (unless
--skip-invalid), an empty export, or one that would remove more than
accounts.max_removal_percent of a domain's accounts (unless --force).
A running gateway picks the new directory up on SIGHUP.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	from := fs.String("from", "", "the export `file` (- for standard input)")
	format := fs.String("format", "auto", "export format: auto, tsv, csv or list")
	encoding := fs.String("encoding", "auto", "export encoding: auto, utf-8 or shift_jis")
	domain := fs.String("domain", "", "sync only this `domain`; also the domain of rows that give only a local part")
	columns := fs.String("columns", "", "column names in order, when the export has no header line (e.g. account,name,flags)")
	dryRun := fs.Bool("dry-run", false, "show the diff, write nothing")
	force := fs.Bool("force", false, "apply even an empty export or a mass removal")
	skipInvalid := fs.Bool("skip-invalid", false, "list invalid lines and skip them instead of refusing")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *from == "" {
		fmt.Fprintln(env.stderr, "accounts sync: --from is required")
		return exitUsage
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	dirPath := cfg.Accounts.Directory
	if dirPath == "" {
		fmt.Fprintf(env.stderr, "%s: accounts.directory is not set: a sync needs a directory file to write\n", cfg.Source)
		return exitFinding
	}
	current, err := accounts.ReadFile(dirPath)
	if err != nil {
		if _, statErr := os.Stat(dirPath); !errors.Is(statErr, os.ErrNotExist) {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		current = nil // the first sync creates the file
	}

	var in io.Reader = env.stdin
	name := "stdin"
	if *from != "-" {
		f, err := os.Open(*from)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		defer f.Close()
		in, name = f, *from
	}
	opt := export.Options{Format: *format, Encoding: *encoding, Domain: *domain, Restrict: *domain != "",
		SkipInvalid: *skipInvalid, FoldLocal: foldRule(cfg.Accounts)}
	if *columns != "" {
		opt.Columns = strings.Split(*columns, ",")
	}
	res, err := export.Read(in, name, opt)
	if err != nil && !errors.Is(err, export.ErrInvalidLines) {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}

	out := syncJSON{Errors: []lineErrorJSON{}, Refusals: []string{}, Added: []changeJSON{}, Removed: []changeJSON{}, Changed: []changeJSON{}}
	for _, le := range res.Errors {
		out.Errors = append(out.Errors, lineErrorJSON{Line: le.Line, Reason: le.Reason})
	}
	if len(res.Errors) > 0 && !*skipInvalid {
		out.Refusals = append(out.Refusals, fmt.Sprintf("%d invalid line(s) in %s (fix them, or use --skip-invalid)", len(res.Errors), name))
	}
	// The diff of the valid lines is shown even when invalid lines refuse
	// the sync, so one run tells the administrator everything.
	plan, err := accounts.PlanSync(cfg.Accounts, current, res.Records, accounts.SyncOptions{Domain: *domain, Force: *force})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	out.Refusals = append(out.Refusals, plan.Refusals...)
	fillDiff(&out, &plan.Diff)
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
		printSyncText(env, name, dirPath, &out, plan, *dryRun)
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
					j.Name = r.Name
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

func printSyncText(env *cmdEnv, exportName, dirPath string, out *syncJSON, plan *accounts.SyncPlan, dryRun bool) {
	w := env.stdout
	for _, e := range out.Errors {
		fmt.Fprintf(w, "%s:%d: %s\n", exportName, e.Line, e.Reason)
	}
	if plan != nil {
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
	fmt.Fprintf(w, "added %d, removed %d, changed %d, unchanged %d",
		out.Counts.Added, out.Counts.Removed, out.Counts.Changed, out.Counts.Unchanged)
	if len(out.Errors) > 0 {
		fmt.Fprintf(w, ", invalid lines %d", len(out.Errors))
	}
	fmt.Fprintln(w)
	for _, r := range out.Refusals {
		fmt.Fprintf(w, "refused: %s\n", r)
	}
	switch {
	case out.Applied:
		fmt.Fprintf(w, "written: %s (previous kept as %s.bak); send SIGHUP to a running gateway to load it\n", dirPath, dirPath)
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
	case "secret":
		return "secret: changed" // never printed
	}
	return field
}

// checkJSON is one address in the --json output of accounts check.
type checkJSON struct {
	Address   string   `json:"address"`
	Error     string   `json:"error,omitempty"`
	Ours      bool     `json:"ours"`
	Kind      string   `json:"kind,omitempty"`
	Target    string   `json:"target,omitempty"`
	Account   string   `json:"account,omitempty"`
	Flags     string   `json:"flags,omitempty"`
	Chain     []string `json:"chain,omitempty"`
	Protected bool     `json:"protected"`
	Recipient string   `json:"as_recipient,omitempty"`
	Sender    string   `json:"as_sender,omitempty"`
}

func runAccountsCheck(env *cmdEnv, args []string) int {
	fs := newFlags(env, "accounts check", "-c FILE ADDRESS... [--json]", `
Tells, for each address, whether it is ours, which account or alias target it
reaches, its flags, and what the gateway does with it as a recipient and as a
sender. Exit 1 if an address cannot be parsed.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	addrs, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(addrs) == 0 {
		fs.Usage()
		return exitUsage
	}
	dir, fate, ok := env.checkDirectory(*cfgPath)
	if !ok {
		return exitFinding
	}
	status := exitOK
	results := make([]checkJSON, 0, len(addrs))
	for _, a := range addrs {
		c := checkJSON{Address: a}
		r, err := dir.Lookup(a)
		if err != nil {
			c.Error = err.Error()
			status = exitFinding
			results = append(results, c)
			continue
		}
		c.Ours, c.Kind, c.Target, c.Chain, c.Protected = r.Ours(), r.Kind.String(), r.Target, r.Chain, r.Protected
		if r.Account != nil {
			c.Account = r.Account.Address()
			if f := r.Flags(); f != 0 {
				c.Flags = f.String()
			}
		}
		c.Recipient, c.Sender = fate.asRecipient(r), fate.asSender(r)
		results = append(results, c)
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
		return status
	}
	for _, c := range results {
		if c.Error != "" {
			fmt.Fprintf(env.stdout, "%s: invalid: %s\n", c.Address, c.Error)
			continue
		}
		fmt.Fprintf(env.stdout, "%s: %s", c.Address, c.Kind)
		if len(c.Chain) > 0 {
			fmt.Fprintf(env.stdout, " via %s", strings.Join(c.Chain, " -> "))
		}
		if c.Account != "" {
			fmt.Fprintf(env.stdout, ", account %s", c.Account)
		}
		if c.Flags != "" {
			fmt.Fprintf(env.stdout, " [%s]", c.Flags)
		}
		if c.Protected {
			fmt.Fprint(env.stdout, " [protected]")
		}
		fmt.Fprintf(env.stdout, "\n  as recipient: %s\n  as sender:    %s\n", c.Recipient, c.Sender)
	}
	return status
}

// directory loads the configuration and the accounts directory it names.
func (env *cmdEnv) directory(cfgPath string) (*accounts.Directory, bool) {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return nil, false
	}
	dir, err := accounts.Open(cfg.Accounts)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return nil, false
	}
	return dir, true
}

func asRecipient(r accounts.Result) string {
	switch {
	case !r.Ours():
		return "not ours: relayed only for trusted clients (inner networks, authenticated users)"
	case r.Exists() && r.Target != r.Input && !strings.EqualFold(r.Target, r.Input):
		return "accepted, forwarded to " + r.Target
	case r.Exists():
		return "accepted, forwarded to the inner server"
	case r.Flags()&accounts.Disabled != 0:
		return "rejected: 550 5.2.1 mailbox disabled"
	default:
		return "rejected: 550 5.1.1 no such account"
	}
}

func runAccountsList(env *cmdEnv, args []string) int {
	fs := newFlags(env, "accounts list", "-c FILE [--domain D] [--json]", `
Lists the mirrored accounts (address, flags, display name) and aliases,
from the configuration and the directory file.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	domain := fs.String("domain", "", "only this `domain`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	dir, ok := env.directory(*cfgPath)
	if !ok {
		return exitFinding
	}
	want := ""
	if *domain != "" {
		var err error
		if want, err = addr.Domain(*domain); err != nil {
			fmt.Fprintf(env.stderr, "--domain: %v\n", err)
			return exitUsage
		}
		if !dir.IsOurDomain(want) {
			fmt.Fprintf(env.stderr, "%s is not one of our domains\n", want)
			return exitFinding
		}
	}
	var list []changeJSON
	dir.Accounts(func(a *accounts.Account) bool {
		if want == "" || a.Domain == want {
			j := changeJSON{Kind: "account", Key: a.Address(), Name: a.Name}
			if a.Flags != 0 {
				j.Flags = a.Flags.String()
			}
			list = append(list, j)
		}
		return true
	})
	for _, al := range dir.Aliases() {
		if want == "" || strings.HasSuffix(al.Alias, "@"+want) {
			list = append(list, changeJSON{Kind: "alias", Key: al.Alias, Target: al.Target})
		}
	}
	if *asJSON {
		if list == nil {
			list = []changeJSON{}
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(list)
		return exitOK
	}
	for _, j := range list {
		if j.Kind == "alias" {
			fmt.Fprintf(env.stdout, "alias    %s -> %s\n", j.Key, j.Target)
			continue
		}
		fmt.Fprintf(env.stdout, "account  %-40s %-18s %s\n", j.Key, orDash(j.Flags), j.Name)
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
