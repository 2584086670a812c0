// Package routing chooses the next hop for a recipient: the gateway table, a smart host, or DNS MX.
package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Config is the `routing` section of the configuration.
//
// Precedence: routes are not tried in order. For a recipient, the most
// specific recipient condition wins: an `address` beats an exact `domain`,
// which beats the longest matching `*.domain` wildcard, which beats
// `domain: "*"` (allowed only together with a sender condition). Among
// routes with the same recipient condition, the most specific matching
// `sender` condition wins by the same ladder, a route without a sender
// condition comes last, and the earlier route wins a remaining tie (which
// Validate refuses anyway: it is a duplicate). A route whose sender condition
// does not match is skipped. When no route matches, the smart host takes
// the mail; without one, it goes by DNS MX.
type Config struct {
	// Routes is the gateway table (the seeds' gateway.dat).
	Routes []RouteConfig `koanf:"routes"`
	// SmartHost takes every recipient no route matches. Its targets may be
	// hosts, "mx" (to give the MX default a TLS policy or a rewrite) or
	// "dir:PATH". Empty: unmatched recipients go by MX, opportunistic TLS.
	SmartHost TargetConfig `koanf:"smart_host"`
	// DNS configures the resolver used for MX and host lookups.
	DNS DNSConfig `koanf:"dns"`
	// Hosts and HostsFile override DNS address lookups (E-Post's "hosts
	// file or DNS"): a name listed here is never looked up in DNS. A
	// recipient domain listed here with no route is delivered to the listed
	// addresses without an MX lookup. Entries in Hosts replace entries for
	// the same name in HostsFile.
	Hosts     []HostConfig `koanf:"hosts"`
	HostsFile string       `koanf:"hosts_file"`
	// Self lists further names and addresses by which other hosts reach
	// this gateway (NAT, a load balancer address, DNS aliases), in addition
	// to those the relay listens on. A target or MX host that is one of
	// them is a mail loop.
	Self SelfConfig `koanf:"self"`
}

// RouteConfig is one entry of the gateway table. Exactly one of Domain and
// Address is set.
type RouteConfig struct {
	// Name labels the route in explanations and logs; default "routes[N]".
	Name string `koanf:"name"`
	// Domain is "example.jp" (that domain only), "*.example.jp" (its
	// subdomains, not example.jp itself) or "*" (every domain; only with a
	// sender condition).
	Domain string `koanf:"domain"`
	// Address is a full recipient address; local parts compare without
	// regard to ASCII case.
	Address string `koanf:"address"`
	// Sender, when set, restricts the route to an envelope sender: an
	// address, a domain or "*.domain". The null sender never matches.
	Sender       string `koanf:"sender"`
	TargetConfig `koanf:",squash"`
}

// TargetConfig says where matching mail goes and how.
type TargetConfig struct {
	// Targets is one of: a list of "host[:port]" tried in order (port 25
	// by default; hosts are looked up for A/AAAA only, never MX), "mx"
	// (the recipient domain's MX), or "dir:PATH" (one file per message in
	// a local directory, for capture and tests).
	Targets []string `koanf:"targets"`
	// TLS is "none", "opportunistic" (the default) or "required".
	TLS string `koanf:"tls"`
	// TLSCAFile and TLSServerName apply with tls: required: the CA bundle
	// to verify the next hop against (default: the system roots), and the
	// name expected in its certificate (default: the host of each target).
	TLSCAFile     string `koanf:"tls_ca_file"`
	TLSServerName string `koanf:"tls_server_name"`
	// Auth logs in to the next hop.
	Auth AuthConfig `koanf:"auth"`
	// MaxConnections caps simultaneous connections to this route's next
	// hops; 0 leaves the delivery default.
	MaxConnections int `koanf:"max_connections"`
	// Rewrite names the rewrite rule set applied at delivery time (the
	// reverse rewrite, like Postfix's smtp_generic_maps) to this route's
	// copy of a message.
	Rewrite string `koanf:"rewrite"`
	// Received is what this route's copy keeps of the Received fields
	// written inside the inner networks: "keep" (the default),
	// "mask-inner" (inner addresses and their host names replaced) or
	// "remove-inner" (the fields added inside removed, the rest masked).
	Received string `koanf:"received"`
}

// AuthConfig is SMTP AUTH to the next hop. The password is read from a
// file or an environment variable when the router is built, and never
// printed.
type AuthConfig struct {
	// Mechanism is "plain" or "login"; empty means no AUTH.
	Mechanism    string `koanf:"mechanism"`
	Username     string `koanf:"username"`
	PasswordFile string `koanf:"password_file"`
	PasswordEnv  string `koanf:"password_env"`
	// AllowPlaintext permits AUTH without TLS. Without it, AUTH needs
	// tls: required, so that the password never crosses the network in
	// clear.
	AllowPlaintext bool `koanf:"allow_plaintext"`
}

// DNSConfig configures the resolver.
type DNSConfig struct {
	// Servers are "ip" or "ip:port" (IPv6 as "[ip]:port"). Empty: the
	// nameservers of ResolvConf.
	Servers    []string `koanf:"servers"`
	ResolvConf string   `koanf:"resolv_conf"`
	// Timeout bounds one query to one server; Attempts is how many rounds
	// over the server list a lookup makes before failing temporarily.
	Timeout  time.Duration `koanf:"timeout"`
	Attempts int           `koanf:"attempts"`
	// CacheSize is the most answers kept, each for its TTL (at most an
	// hour; a negative answer for its SOA minimum, at most 15 minutes),
	// the least recently used dropped first; 0 keeps none.
	CacheSize int `koanf:"cache_size"`
}

// HostConfig is one hosts override entry.
type HostConfig struct {
	Name  string   `koanf:"name"`
	Addrs []string `koanf:"addrs"`
}

// SelfConfig lists extra names and addresses of this gateway.
type SelfConfig struct {
	Hostnames []string `koanf:"hostnames"`
	// Addrs are "ip:port" (or "ip", meaning port 25); an unspecified
	// address (0.0.0.0, ::) means every local address.
	Addrs []string `koanf:"addrs"`
}

// DefaultConfig returns the defaults: no routes, MX for everything, the
// system resolver with 5 s per query and 2 rounds.
func DefaultConfig() Config {
	return Config{
		DNS: DNSConfig{
			ResolvConf: "/etc/resolv.conf",
			Timeout:    5 * time.Second,
			Attempts:   2,
			CacheSize:  10000,
		},
	}
}

// Resolve makes relative paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	resolveTarget := func(t *TargetConfig) {
		for i, s := range t.Targets {
			if p, ok := strings.CutPrefix(s, "dir:"); ok && p != "" && !filepath.IsAbs(p) {
				t.Targets[i] = "dir:" + filepath.Join(base, p)
			}
		}
		abs(&t.TLSCAFile)
		abs(&t.Auth.PasswordFile)
	}
	for i := range c.Routes {
		resolveTarget(&c.Routes[i].TargetConfig)
	}
	resolveTarget(&c.SmartHost)
	abs(&c.HostsFile)
	abs(&c.DNS.ResolvConf)
}

// Validate reports every problem in the section; each error starts with the
// key path relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	type condition struct{ rcpt, sender string }
	seenCond := map[condition]int{}
	seenName := map[string]int{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name != "" {
			if strings.TrimSpace(r.Name) != r.Name || strings.ContainsAny(r.Name, "\r\n\t") {
				bad(key+".name", "%q has surrounding spaces or control characters", r.Name)
			}
			if j, dup := seenName[r.Name]; dup {
				bad(key+".name", "%q is already the name of routes[%d]", r.Name, j)
			}
			seenName[r.Name] = i
		}
		rcpt, sender, err := r.conditions()
		for _, e := range err {
			bad(key+"."+e.key, "%v", e.err)
		}
		if len(err) == 0 {
			cond := condition{rcpt.String(), sender.String()}
			if sender.kind == matchAny {
				cond.sender = ""
			}
			if j, dup := seenCond[cond]; dup {
				bad(key, "same recipient and sender condition as routes[%d]", j)
			}
			seenCond[cond] = i
		}
		for _, e := range r.TargetConfig.check() {
			bad(key+"."+e.key, "%v", e.err)
		}
	}
	if !c.SmartHost.isZero() {
		for _, e := range c.SmartHost.check() {
			bad("smart_host."+e.key, "%v", e.err)
		}
	}
	for _, e := range c.DNS.check() {
		bad("dns."+e.key, "%v", e.err)
	}
	for i, h := range c.Hosts {
		key := fmt.Sprintf("hosts[%d]", i)
		if _, err := hostName(h.Name); err != nil {
			bad(key+".name", "%v", err)
		}
		if len(h.Addrs) == 0 {
			bad(key+".addrs", "missing")
		}
		for j, a := range h.Addrs {
			if _, err := parseIP(a); err != nil {
				bad(fmt.Sprintf("%s.addrs[%d]", key, j), "%v", err)
			}
		}
	}
	for i, h := range c.Self.Hostnames {
		if _, err := hostName(h); err != nil {
			bad(fmt.Sprintf("self.hostnames[%d]", i), "%v", err)
		}
	}
	for i, a := range c.Self.Addrs {
		if _, err := parseSelfAddr(a); err != nil {
			bad(fmt.Sprintf("self.addrs[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

// keyError is a problem under a key path relative to its struct.
type keyError struct {
	key string
	err error
}

// conditions parses the recipient and sender conditions of a route.
func (r RouteConfig) conditions() (rcpt, sender matcher, errs []keyError) {
	switch {
	case r.Domain != "" && r.Address != "":
		errs = append(errs, keyError{"domain", errors.New("set either domain or address, not both")})
	case r.Domain == "" && r.Address == "":
		errs = append(errs, keyError{"domain", errors.New("missing (set domain or address)")})
	case r.Address != "":
		m, err := parseAddressPattern(r.Address)
		if err != nil {
			errs = append(errs, keyError{"address", err})
		}
		rcpt = m
	default:
		m, err := parseDomainPattern(r.Domain, r.Sender != "")
		if err != nil {
			errs = append(errs, keyError{"domain", err})
		}
		rcpt = m
	}
	if r.Sender != "" {
		m, err := parseSenderPattern(r.Sender)
		if err != nil {
			errs = append(errs, keyError{"sender", err})
		}
		sender = m
	}
	return rcpt, sender, errs
}

func (t TargetConfig) isZero() bool {
	return len(t.Targets) == 0 && t.TLS == "" && t.TLSCAFile == "" && t.TLSServerName == "" &&
		t.Auth == AuthConfig{} && t.MaxConnections == 0 && t.Rewrite == "" && t.Received == ""
}

// targetSpec is the parsed form of Targets.
type targetSpec struct {
	kind  Kind
	dir   string
	hosts []hostPort
}

func parseTargets(ts []string) (targetSpec, []keyError) {
	if len(ts) == 0 {
		return targetSpec{}, []keyError{{"targets", errors.New("missing (a list of host[:port], \"mx\" or \"dir:PATH\")")}}
	}
	var errs []keyError
	spec := targetSpec{kind: KindHosts}
	seen := map[string]int{}
	for i, s := range ts {
		key := fmt.Sprintf("targets[%d]", i)
		lone := func(what string) {
			if len(ts) > 1 {
				errs = append(errs, keyError{key, fmt.Errorf("%s cannot be combined with other targets", what)})
			}
		}
		switch {
		case strings.EqualFold(s, "mx"):
			lone(`"mx"`)
			spec.kind = KindMX
		case strings.HasPrefix(s, "dir:"):
			lone(`"dir:"`)
			spec.kind, spec.dir = KindDir, s[len("dir:"):]
			if spec.dir == "" {
				errs = append(errs, keyError{key, errors.New(`"dir:" needs a path`)})
			}
		default:
			hp, err := parseHostPort(s, smtpPort)
			if err != nil {
				errs = append(errs, keyError{key, err})
				continue
			}
			if j, dup := seen[hp.String()]; dup {
				errs = append(errs, keyError{key, fmt.Errorf("%s repeats targets[%d]", hp, j)})
			}
			seen[hp.String()] = i
			spec.hosts = append(spec.hosts, hp)
		}
	}
	return spec, errs
}

func (t TargetConfig) check() []keyError {
	spec, errs := parseTargets(t.Targets)
	add := func(key, format string, a ...any) {
		errs = append(errs, keyError{key, fmt.Errorf(format, a...)})
	}
	mode, err := parseTLSMode(t.TLS)
	if err != nil {
		add("tls", "%v", err)
	}
	if spec.kind == KindDir {
		if t.TLS != "" || t.TLSCAFile != "" || t.TLSServerName != "" || t.Auth != (AuthConfig{}) || t.MaxConnections != 0 {
			add("targets", "a dir: target takes no tls, auth or max_connections")
		}
	}
	if mode != TLSRequired {
		if t.TLSCAFile != "" {
			add("tls_ca_file", "only used with tls: required")
		}
		if t.TLSServerName != "" {
			add("tls_server_name", "only used with tls: required")
		}
	}
	if t.TLSServerName != "" {
		if _, err := hostName(t.TLSServerName); err != nil {
			add("tls_server_name", "%v", err)
		}
	}
	if t.MaxConnections < 0 {
		add("max_connections", "must not be negative, got %d", t.MaxConnections)
	}
	if strings.TrimSpace(t.Rewrite) != t.Rewrite {
		add("rewrite", "%q has surrounding spaces", t.Rewrite)
	}
	if _, err := parseReceivedMode(t.Received); err != nil {
		add("received", "%v", err)
	}
	errs = append(errs, t.Auth.check(mode)...)
	return errs
}

func (a AuthConfig) check(mode TLSMode) []keyError {
	if a == (AuthConfig{}) {
		return nil
	}
	var errs []keyError
	add := func(key, format string, args ...any) {
		errs = append(errs, keyError{"auth." + key, fmt.Errorf(format, args...)})
	}
	if _, err := parseMechanism(a.Mechanism); err != nil {
		add("mechanism", "%v", err)
	}
	if a.Username == "" {
		add("username", "missing")
	} else if strings.ContainsAny(a.Username, "\x00\r\n") {
		add("username", "contains NUL or a line break")
	}
	switch {
	case a.PasswordFile == "" && a.PasswordEnv == "":
		add("password_file", "missing (set password_file or password_env)")
	case a.PasswordFile != "" && a.PasswordEnv != "":
		add("password_file", "set either password_file or password_env, not both")
	}
	if strings.HasPrefix(strings.ToUpper(a.PasswordEnv), "SEKISHO_") {
		// The loader reads every SEKISHO_* variable as a setting.
		add("password_env", "%s: SEKISHO_* variables are configuration overrides; choose another name", a.PasswordEnv)
	}
	if mode != TLSRequired && !a.AllowPlaintext {
		add("mechanism", "AUTH needs tls: required (or auth.allow_plaintext: true): the password would cross the network in clear")
	}
	return errs
}

func (d DNSConfig) check() []keyError {
	var errs []keyError
	for i, s := range d.Servers {
		if _, err := parseServer(s); err != nil {
			errs = append(errs, keyError{fmt.Sprintf("servers[%d]", i), err})
		}
	}
	if len(d.Servers) == 0 && d.ResolvConf == "" {
		errs = append(errs, keyError{"servers", errors.New("missing (set servers or resolv_conf)")})
	}
	if d.Timeout <= 0 {
		errs = append(errs, keyError{"timeout", fmt.Errorf("must be positive, got %v", d.Timeout)})
	}
	if d.Attempts < 1 || d.Attempts > 10 {
		errs = append(errs, keyError{"attempts", fmt.Errorf("must be between 1 and 10, got %d", d.Attempts)})
	}
	if d.CacheSize < 0 {
		errs = append(errs, keyError{"cache_size", fmt.Errorf("must not be negative, got %d", d.CacheSize)})
	}
	return errs
}

// parseServer reads a nameserver "ip" or "ip:port" into "ip:port".
func parseServer(s string) (string, error) {
	hp, err := parseHostPort(s, 53)
	if err != nil {
		return "", err
	}
	if !hp.ip.IsValid() {
		return "", fmt.Errorf("%q: a nameserver must be an IP address", s)
	}
	return netip.AddrPortFrom(hp.ip, uint16(hp.port)).String(), nil
}

func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return ip.Unmap(), nil
}

func parseSelfAddr(s string) (netip.AddrPort, error) {
	hp, err := parseHostPort(s, smtpPort)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !hp.ip.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%q: expected ip:port (names go in self.hostnames)", s)
	}
	return netip.AddrPortFrom(hp.ip, uint16(hp.port)), nil
}

func parseTLSMode(s string) (TLSMode, error) {
	switch TLSMode(strings.ToLower(s)) {
	case "", TLSOpportunistic:
		return TLSOpportunistic, nil
	case TLSNone:
		return TLSNone, nil
	case TLSRequired:
		return TLSRequired, nil
	}
	return "", fmt.Errorf("%q is not a TLS policy (none, opportunistic, required)", s)
}

func parseReceivedMode(s string) (ReceivedMode, error) {
	switch m := ReceivedMode(s); m {
	case "":
		return ReceivedKeep, nil
	case ReceivedKeep, ReceivedMaskInner, ReceivedRemoveInner:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a Received policy (keep, mask-inner, remove-inner)", s)
}

func parseMechanism(s string) (string, error) {
	switch m := strings.ToUpper(s); m {
	case "PLAIN", "LOGIN":
		return m, nil
	case "":
		return "", errors.New("missing (plain or login)")
	}
	return "", fmt.Errorf("%q is not a supported mechanism (plain, login)", s)
}

// RouteNames lists the names a decision's Rule can take under this
// configuration: each route's name ("routes[N]" when unnamed) and
// "smart_host". Other sections that refer to routes check against it.
func (c Config) RouteNames() []string {
	names := make([]string, 0, len(c.Routes)+1)
	for i, r := range c.Routes {
		if r.Name != "" {
			names = append(names, r.Name)
		} else {
			names = append(names, fmt.Sprintf("routes[%d]", i))
		}
	}
	return append(names, "smart_host")
}
