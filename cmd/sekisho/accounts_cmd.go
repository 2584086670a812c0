package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/relay/gateway"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
)

func init() {
	register(&command{name: "accounts check", summary: "tell what the gateway does with addresses as recipient and sender", run: runAccountsCheck})
	register(&command{name: "accounts list", summary: "list mirrored accounts and aliases", run: runAccountsList})
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
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	dr, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	status := exitOK
	results := make([]gateway.AddressCheck, 0, len(addrs))
	for _, a := range addrs {
		c := dr.CheckAddress(a)
		if c.Error != "" {
			status = exitFinding
		}
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
			j := changeJSON{Kind: "account", Key: a.Address(), Name: a.Name, Allow: dir.AllowList(a)}
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
		if len(j.Allow) > 0 {
			fmt.Fprintf(env.stdout, "         %-40s allowed: %s\n", "", strings.Join(j.Allow, ", "))
		}
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
