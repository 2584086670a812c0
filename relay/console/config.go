package console

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/export"
	"github.com/sekisho/sekisho/relay/guard"
)

// Config is the `console` section: where the console listens, who may
// sign in as what, and which quarantined mail staff may release
// themselves.
type Config struct {
	// Listeners: none means no console.
	Listeners []ListenerConfig `koanf:"listeners"`
	// URL is how staff reach the console (https://gateway.city.lg.jp:8443/),
	// for links in the notices; empty: no link.
	URL string `koanf:"url"`
	// SessionLifetime bounds a sign-in; IdleTimeout ends one unused for
	// that long.
	SessionLifetime time.Duration `koanf:"session_lifetime"`
	IdleTimeout     time.Duration `koanf:"idle_timeout"`
	// Administrators and Approvers are principals: account addresses, or
	// "ldap-group:DN" for the members of an LDAP group. Administrators
	// may approve too.
	Administrators []string `koanf:"administrators"`
	Approvers      []string `koanf:"approvers"`
	// LDAP signs people in with a bind to the directory; empty URL: only
	// the accounts' secrets.
	LDAP LDAPConfig `koanf:"ldap"`
	// Release says who releases quarantined originals.
	Release ReleaseConfig `koanf:"release"`
}

// ListenerConfig is one address the console serves.
type ListenerConfig struct {
	Address string `koanf:"address"`
	// HTTP serves plain HTTP instead of HTTPS with relay.tls's
	// certificate; only a loopback address may.
	HTTP bool `koanf:"http"`
}

// LDAPConfig is the directory staff sign in with (the same directory an
// LDAP accounts source reads).
type LDAPConfig struct {
	// URL: ldap[s]://host/BASE-DN??SCOPE?FILTER, the people who may sign in.
	URL string `koanf:"url"`
	// BindDN and PasswordFile are the search account; empty: anonymous.
	BindDN       string `koanf:"bind_dn"`
	PasswordFile string `koanf:"password_file"`
	StartTLS     bool   `koanf:"start_tls"`
	// CAFile verifies the directory's certificate (default: the system's).
	CAFile string `koanf:"ca_file"`
	// Login is the attribute people type (uid, sAMAccountName,
	// userPrincipalName, mail); Mail gives their address.
	Login string `koanf:"login"`
	Mail  string `koanf:"mail"`
	// GroupsAttribute lists a person's groups on their entry (memberOf);
	// GroupBase is searched for groups naming them as member instead.
	GroupsAttribute string        `koanf:"groups_attribute"`
	GroupBase       string        `koanf:"group_base"`
	Timeout         time.Duration `koanf:"timeout"`
}

// ReleaseConfig chooses, per sanitize rule (by its route) and attachment
// class, whether the recipient releases an original at once (self) or an
// approver decides (approval).
type ReleaseConfig struct {
	// Default applies where no rule matches: approval (the safe choice)
	// or self.
	Default string        `koanf:"default"`
	Rules   []ReleaseRule `koanf:"rules"`
}

// ReleaseRule matches what a sanitized message lost.
type ReleaseRule struct {
	Policy string `koanf:"policy"`
	// Routes are the routes whose sanitize rule kept the original
	// (relay.sanitize.rules[].routes); empty: any.
	Routes []string `koanf:"routes"`
	// Classes are attachment classes: an extension (pdf), a content type
	// (application/pdf), "text" for a message that lost no attachment
	// (HTML turned into text, text cut), or "*" for any.
	Classes []string `koanf:"classes"`
}

// Policies.
const (
	PolicySelf     = "self"
	PolicyApproval = "approval"
)

// DefaultConfig has no listener (no console), 8 hour sign-ins ended after
// 30 idle minutes, and every release approved by an approver.
func DefaultConfig() Config {
	return Config{
		SessionLifetime: 8 * time.Hour,
		IdleTimeout:     30 * time.Minute,
		LDAP:            LDAPConfig{Login: "uid", Mail: "mail", GroupsAttribute: "memberOf", Timeout: 10 * time.Second},
		Release:         ReleaseConfig{Default: PolicyApproval},
	}
}

// On reports whether the console is served.
func (c Config) On() bool { return len(c.Listeners) > 0 }

// Resolve makes file paths relative to base.
func (c *Config) Resolve(base string) {
	for _, p := range []*string{&c.LDAP.PasswordFile, &c.LDAP.CAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

// ldapGroupPrefix marks an LDAP group among principals (the outbound
// rules' approval groups write them the same way).
const ldapGroupPrefix = guard.LDAPGroupPrefix

// Validate reports every problem, keys relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	seen := map[string]int{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		host, _, err := net.SplitHostPort(l.Address)
		if err != nil {
			bad(key+".address", "%q: %v", l.Address, err)
			continue
		}
		if j, dup := seen[l.Address]; dup {
			bad(key+".address", "%s is already used by listeners[%d]", l.Address, j)
		}
		seen[l.Address] = i
		if l.HTTP && !loopback(host) {
			bad(key+".http", "plain HTTP only on a loopback address (127.0.0.1, ::1, localhost): sign-ins and cookies would cross the network in the clear")
		}
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://") {
		bad("url", "%q is not an http(s):// address", c.URL)
	}
	if c.SessionLifetime < time.Second {
		bad("session_lifetime", "must be at least 1s, got %v", c.SessionLifetime)
	}
	if c.IdleTimeout < time.Second || c.IdleTimeout > c.SessionLifetime {
		bad("idle_timeout", "must be at least 1s and at most session_lifetime, got %v", c.IdleTimeout)
	}
	for _, list := range []struct {
		key string
		v   []string
	}{{"administrators", c.Administrators}, {"approvers", c.Approvers}} {
		for i, p := range list.v {
			if err := checkPrincipal(p, c.LDAP.URL != ""); err != nil {
				bad(fmt.Sprintf("%s[%d]", list.key, i), "%v", err)
			}
		}
	}
	if c.On() && len(c.Administrators) == 0 {
		bad("administrators", "name at least one administrator (an account address or ldap-group:DN)")
	}
	if c.LDAP.URL != "" {
		if _, err := export.ParseLDAPURL(c.LDAP.URL); err != nil {
			bad("ldap.url", "%v", err)
		}
		if c.LDAP.BindDN != "" && c.LDAP.PasswordFile == "" {
			bad("ldap.password_file", "required with bind_dn (the password is never written in the configuration)")
		}
		if c.LDAP.GroupBase != "" {
			if _, err := ldap.ParseDN(c.LDAP.GroupBase); err != nil {
				bad("ldap.group_base", "%q is not a DN: %v", c.LDAP.GroupBase, err)
			}
		}
		if c.LDAP.Timeout <= 0 {
			bad("ldap.timeout", "must be positive")
		}
	}
	if !validPolicy(c.Release.Default) {
		bad("release.default", "%q is not a policy (self, approval)", c.Release.Default)
	}
	for i, r := range c.Release.Rules {
		key := fmt.Sprintf("release.rules[%d]", i)
		if !validPolicy(r.Policy) {
			bad(key+".policy", "%q is not a policy (self, approval)", r.Policy)
		}
		if len(r.Classes) == 0 {
			bad(key+".classes", "list at least one class (an extension like pdf, a type like application/pdf, text, or *)")
		}
		for j, cl := range r.Classes {
			if !classRE.MatchString(cl) {
				bad(fmt.Sprintf("%s.classes[%d]", key, j), "%q: give an extension without the dot (pdf), a type (application/pdf), text or *", cl)
			}
		}
	}
	return errors.Join(errs...)
}

// classRE is an attachment class: *, text, an extension or a media type,
// in lower case.
var classRE = regexp.MustCompile(`^(\*|[a-z0-9]+|[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*)$`)

func validPolicy(p string) bool { return p == PolicySelf || p == PolicyApproval }

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkPrincipal accepts an address or ldap-group:DN (only with LDAP).
func checkPrincipal(p string, ldapOn bool) error {
	if dn, ok := strings.CutPrefix(p, ldapGroupPrefix); ok {
		if !ldapOn {
			return fmt.Errorf("%q names an LDAP group, but ldap.url is not set", p)
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			return fmt.Errorf("%q: not a DN: %v", p, err)
		}
		return nil
	}
	if _, _, err := addr.Parse(p); err != nil {
		return fmt.Errorf("%q is neither an address nor ldap-group:DN: %v", p, err)
	}
	return nil
}

// CheckTLS reports listeners that need HTTPS when relay.tls has no
// certificate (the command checks it: the certificate is the relay's).
func (c Config) CheckTLS(haveCert bool) error {
	var errs []error
	for i, l := range c.Listeners {
		if !l.HTTP && !haveCert {
			errs = append(errs, fmt.Errorf("listeners[%d]: HTTPS needs relay.tls.cert_file and key_file (or http: true on a loopback address)", i))
		}
	}
	return errors.Join(errs...)
}

// CheckRoutes reports release rules naming routes routing does not have.
func (c Config) CheckRoutes(routes map[string]bool) error {
	var errs []error
	for i, r := range c.Release.Rules {
		for j, name := range r.Routes {
			if !routes[name] {
				errs = append(errs, fmt.Errorf("release.rules[%d].routes[%d]: %q is not a route in routing.routes", i, j, name))
			}
		}
	}
	return errors.Join(errs...)
}
