package accounts

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Config is the `accounts` section of the configuration.
type Config struct {
	// Directory is the file holding the mirrored accounts and synced aliases
	// (see FORMAT.md). Empty means: only the accounts listed inline below.
	Directory string `koanf:"directory"`
	// Protected local parts may not be used as senders in our domains by
	// clients from outside without SMTP AUTH.
	Protected []string `koanf:"protected"`
	// MaxRemovalPercent: a sync that would remove more than this share of a
	// domain's accounts is refused without --force.
	MaxRemovalPercent float64 `koanf:"max_removal_percent"`
	// Domains are the domains this gateway answers for (the inner server's).
	Domains []DomainConfig `koanf:"domains"`
	// Accounts and Aliases listed inline, for small sites and the quickstart.
	// They must not repeat entries of the directory file.
	Accounts []AccountConfig `koanf:"accounts"`
	Aliases  []AliasConfig   `koanf:"aliases"`
}

// DomainConfig declares one of our domains.
type DomainConfig struct {
	Name string `koanf:"name"`
	// Mode is "mirror" (only listed accounts exist; the default) or
	// "wildcard" (every local part exists: weak, it lets spammers reach the
	// inner server with any name and invites backscatter).
	Mode string `koanf:"mode"`
	// LocalPartCase is "insensitive" (default: Tanaka@ and tanaka@ are the
	// same account) or "sensitive".
	LocalPartCase string `koanf:"local_part_case"`
	// Twin names another of our domains whose mailboxes this one shares:
	// the regional domain of an LG domain (city.x.aichi.jp and city.x.lg.jp
	// are the same people). An account synced in either is valid in both,
	// its flags apply in both, and mail for it is addressed to the twin, so
	// it takes the twin's route. An alias "*@this -> *@twin" between two
	// mirror domains says the same and is read as a twin too.
	Twin string `koanf:"twin"`
}

// AccountConfig is an account listed inline in the configuration.
type AccountConfig struct {
	Address         string `koanf:"address"`
	Name            string `koanf:"name"`
	OutboundBlocked bool   `koanf:"outbound_blocked"`
	Disabled        bool   `koanf:"disabled"`
	// Secret is a reference to the SMTP AUTH secret (see the relay package
	// for the schemes); it is never printed.
	Secret string `koanf:"secret"`
	// OutboundAllow lists the foreign recipients an outbound_blocked
	// account may still write to: *@domain, *@*.domain or local@domain.
	OutboundAllow []string `koanf:"outbound_allow"`
}

// AliasConfig is an alias listed inline: exact (info@d), partial wildcard
// (2009*@d) or wildcard (*@d), to a target address or "*@domain".
type AliasConfig struct {
	Alias  string `koanf:"alias"`
	Target string `koanf:"target"`
}

// DefaultConfig returns the defaults: no domains, postmaster and abuse
// protected, a 10% removal limit for syncs.
func DefaultConfig() Config {
	return Config{
		Protected:         []string{"postmaster", "abuse"},
		MaxRemovalPercent: 10,
	}
}

// Resolve makes relative paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {
	if c.Directory != "" && !filepath.IsAbs(c.Directory) {
		c.Directory = filepath.Join(base, c.Directory)
	}
}

// Validate reports every problem in the section; each error starts with the
// key path relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.MaxRemovalPercent < 0 || c.MaxRemovalPercent > 100 {
		bad("max_removal_percent", "must be between 0 and 100, got %v", c.MaxRemovalPercent)
	}
	for i, p := range c.Protected {
		if p == "" || strings.ContainsAny(p, "@ \t") {
			bad(fmt.Sprintf("protected[%d]", i), "%q is not a local part", p)
		}
	}
	seen := map[string]int{}
	for i, d := range c.Domains {
		key := fmt.Sprintf("domains[%d]", i)
		name, err := addr.Domain(d.Name)
		switch {
		case d.Name == "":
			bad(key+".name", "missing")
		case err != nil:
			bad(key+".name", "%v", err)
		case addr.IsDomainLiteral(name):
			bad(key+".name", "an address literal cannot be a mail domain")
		default:
			if j, dup := seen[name]; dup {
				bad(key+".name", "%s is already declared in domains[%d]", name, j)
			}
			seen[name] = i
		}
		if _, err := parseMode(d.Mode); err != nil {
			bad(key+".mode", "%v", err)
		}
		if _, err := parseCase(d.LocalPartCase); err != nil {
			bad(key+".local_part_case", "%v", err)
		}
	}
	for i, d := range c.Domains {
		if d.Twin == "" {
			continue
		}
		key := fmt.Sprintf("domains[%d].twin", i)
		name, _ := addr.Domain(d.Name)
		twin, err := addr.Domain(d.Twin)
		if err != nil {
			bad(key, "%v", err)
			continue
		}
		j, ok := seen[twin]
		switch {
		case !ok:
			bad(key, "%s is not declared in accounts.domains", twin)
		case twin == name:
			bad(key, "a domain cannot be its own twin")
		case c.Domains[j].Twin != "":
			bad(key, "%s is itself a twin of %s: name the domain with the mailboxes (%s)", twin, c.Domains[j].Twin, c.Domains[j].Twin)
		case c.Domains[j].LocalPartCase != d.LocalPartCase && !(isFold(c.Domains[j].LocalPartCase) && isFold(d.LocalPartCase)):
			bad(key, "%s and its twin %s must have the same local_part_case", name, twin)
		case c.Domains[j].Mode != d.Mode && !(isMirror(c.Domains[j].Mode) && isMirror(d.Mode)):
			bad(key, "%s and its twin %s must have the same mode", name, twin)
		}
	}
	// Accounts and aliases are checked by Build, which needs the whole
	// directory; Validate only checks that they are well-formed.
	for i, a := range c.Accounts {
		if _, _, err := addr.Parse(a.Address); err != nil {
			bad(fmt.Sprintf("accounts[%d].address", i), "%v", err)
		}
		for j, e := range a.OutboundAllow {
			if _, err := NormalizeAllow(e); err != nil {
				bad(fmt.Sprintf("accounts[%d].outbound_allow[%d]", i, j), "%v", err)
			}
		}
	}
	for i, a := range c.Aliases {
		if _, err := parseAliasPattern(a.Alias); err != nil {
			bad(fmt.Sprintf("aliases[%d].alias", i), "%v", err)
		}
		if err := checkAliasTarget(a.Alias, a.Target); err != nil {
			bad(fmt.Sprintf("aliases[%d].target", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

func isFold(s string) bool   { f, err := parseCase(s); return err == nil && f }
func isMirror(s string) bool { m, err := parseMode(s); return err == nil && m == ModeMirror }

func parseMode(s string) (Mode, error) {
	switch s {
	case "", "mirror":
		return ModeMirror, nil
	case "wildcard":
		return ModeWildcard, nil
	}
	return 0, fmt.Errorf("%q is not a mode (mirror, wildcard)", s)
}

func parseCase(s string) (bool, error) {
	switch s {
	case "", "insensitive":
		return true, nil
	case "sensitive":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a case rule (insensitive, sensitive)", s)
}
