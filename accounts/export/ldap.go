package export

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/accounts"
)

// LDAP as a source: many inner servers keep their accounts in a directory
// (OpenLDAP, Active Directory). The source is an RFC 4516 URL:
//
//	ldap://host:389/BASE-DN??SCOPE?FILTER
//	ldaps://dc1.city.local/ou=staff,dc=city,dc=local??sub?(objectClass=user)
//
// The attributes part of the URL is not used (the mapping says which
// attributes to read); SCOPE is base, one or sub (default sub); FILTER
// defaults to (mail=*). Each entry found is an account row, validated as an
// export's row is; problems name the entry by number and DN.

// LDAPMapping names the attributes read for each column. Empty fields take
// the defaults; "-" leaves a column out.
type LDAPMapping struct {
	Mail    string // default mail
	Account string // a login name or local part, e.g. uid, sAMAccountName; default none
	Name    string // default displayName, then cn
	// Flags is an attribute holding flag words (as an export's flags
	// column) or Active Directory's userAccountControl, whose
	// ACCOUNTDISABLE bit (0x2) makes the account disabled. Default none.
	Flags string
	// Aliases holds further addresses of the entry, each an alias of its
	// mail address; an "smtp:" prefix (Active Directory's proxyAddresses)
	// is dropped. Default none.
	Aliases string
}

// LDAPOptions say where and how to search.
type LDAPOptions struct {
	URL string
	// BindDN and Password bind before the search; empty BindDN searches
	// anonymously.
	BindDN, Password string
	// StartTLS upgrades an ldap:// connection; TLS configures it and
	// ldaps:// (nil: the system roots, verified).
	StartTLS bool
	TLS      *tls.Config
	// Timeout bounds the connection and the whole search (default 30 s).
	Timeout time.Duration
	Map     LDAPMapping
	// Domain, Restrict, Mailboxes and FoldLocal as in Options.
	Domain    string
	Restrict  bool
	Mailboxes func(domain string) string
	FoldLocal func(domain string) bool
}

// ldapTarget is a parsed source URL.
type ldapTarget struct {
	server, base, filter string
	scope                int
	safe                 string // the URL for messages
}

// ParseLDAPURL reads an RFC 4516 URL as LDAP sources use it.
func ParseLDAPURL(s string) (ldapTarget, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ldapTarget{}, fmt.Errorf("ldap source %q: %v", s, err)
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return ldapTarget{}, fmt.Errorf("ldap source %q: the scheme must be ldap or ldaps", s)
	}
	if u.User != nil {
		return ldapTarget{}, fmt.Errorf("ldap source %s://%s: no credentials in the URL (use the bind options)", u.Scheme, u.Host)
	}
	if u.Host == "" {
		return ldapTarget{}, fmt.Errorf("ldap source %q: no host", s)
	}
	t := ldapTarget{server: u.Scheme + "://" + u.Host, scope: ldap.ScopeWholeSubtree, filter: "(mail=*)"}
	t.base = strings.TrimPrefix(u.Path, "/")
	if t.base == "" {
		return ldapTarget{}, fmt.Errorf("ldap source %q: no base DN (ldap://host/ou=staff,dc=example,dc=jp)", s)
	}
	if _, err := ldap.ParseDN(t.base); err != nil {
		return ldapTarget{}, fmt.Errorf("ldap source %q: base DN %q: %v", s, t.base, err)
	}
	parts := strings.Split(u.RawQuery, "?")
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	if parts[3] != "" {
		return ldapTarget{}, fmt.Errorf("ldap source %q: extensions are not supported", s)
	}
	switch sc, _ := url.QueryUnescape(parts[1]); strings.ToLower(sc) {
	case "", "sub":
	case "one":
		t.scope = ldap.ScopeSingleLevel
	case "base":
		t.scope = ldap.ScopeBaseObject
	default:
		return ldapTarget{}, fmt.Errorf("ldap source %q: scope %q: want base, one or sub", s, sc)
	}
	if f, err := url.QueryUnescape(parts[2]); err != nil {
		return ldapTarget{}, fmt.Errorf("ldap source %q: filter: %v", s, err)
	} else if f != "" {
		if _, err := ldap.CompileFilter(f); err != nil {
			return ldapTarget{}, fmt.Errorf("ldap source %q: filter %q: %v", s, f, err)
		}
		t.filter = f
	}
	t.safe = t.server + "/" + t.base
	return t, nil
}

// ReadLDAP searches the directory and returns its entries as an export's
// Result: Records in DN order, Errors numbered by entry (1-based, in that
// order), Lines the number of entries. Like Read it returns ErrInvalidLines
// (wrapped) when entries were rejected.
func ReadLDAP(ctx context.Context, opt LDAPOptions) (Result, error) {
	t, err := ParseLDAPURL(opt.URL)
	if err != nil {
		return Result{}, err
	}
	m := opt.Map
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
		if *v == "-" {
			*v = ""
		}
	}
	def(&m.Mail, "mail")
	def(&m.Name, "displayName,cn")
	def(&m.Account, "-")
	def(&m.Flags, "-")
	def(&m.Aliases, "-")
	if m.Mail == "" && m.Account == "" {
		return Result{}, errors.New("ldap mapping: neither a mail nor an account attribute")
	}
	timeout := opt.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	entries, err := ldapSearch(ctx, t, opt, m, timeout)
	if err != nil {
		return Result{}, err
	}
	p, err := newParser(t.safe, Options{Domain: opt.Domain, Restrict: opt.Restrict, Mailboxes: opt.Mailboxes, FoldLocal: opt.FoldLocal})
	if err != nil {
		return Result{}, err
	}
	// The columns the mapping reads, in a layout like an export header's.
	var names []string
	var roles []role
	for _, c := range []struct {
		attr string
		r    role
	}{{m.Mail, roleMail}, {m.Account, roleAccount}, {m.Name, roleName}, {m.Flags, roleFlags}} {
		if c.attr != "" {
			names, roles = append(names, c.attr), append(roles, c.r)
		}
	}
	if m.Aliases != "" {
		names, roles = append(names, m.Aliases, "(mail)"), append(roles, roleAlias, roleTarget)
	}
	if p.lay, err = newLayout(names, roles); err != nil {
		return Result{}, fmt.Errorf("ldap mapping: %v", err)
	}
	p.started = true
	p.res = Result{Format: "ldap", Encoding: EncodingUTF8, Columns: p.lay.columns(), Lines: len(entries),
		Records: make([]accounts.Record, 0, len(entries)), Accounts: true, Aliases: m.Aliases != ""}
	p.firstAccount = make(map[key]int, len(entries))
	isUAC := strings.EqualFold(m.Flags, "userAccountControl")
	for i, e := range entries {
		n := i + 1
		before := len(p.res.Errors)
		mail := e.GetAttributeValue(m.Mail)
		cells := make([]string, 0, len(roles))
		for _, r := range roles {
			switch r {
			case roleMail:
				cells = append(cells, mail)
			case roleAccount:
				cells = append(cells, e.GetAttributeValue(m.Account))
			case roleName:
				cells = append(cells, firstValue(e, m.Name))
			case roleFlags:
				v := e.GetAttributeValue(m.Flags)
				if isUAC {
					v = uacFlags(v)
				}
				cells = append(cells, v)
			case roleAlias, roleTarget:
				cells = append(cells, "") // an account row
			}
		}
		p.row(n, cells)
		if m.Aliases != "" && len(p.res.Errors) == before {
			target := mail
			if target == "" && len(p.res.Records) > 0 {
				target = p.res.Records[len(p.res.Records)-1].Address()
			}
			for _, a := range e.GetAttributeValues(m.Aliases) {
				if low := strings.ToLower(a); strings.HasPrefix(low, "smtp:") {
					a = a[5:]
				} else if strings.Contains(a, ":") && !strings.Contains(a[:strings.IndexByte(a, ':')], "@") {
					continue // another address type (X500:, SIP:): not mail
				}
				if strings.EqualFold(a, target) {
					continue
				}
				acells := make([]string, len(roles))
				acells[len(roles)-2], acells[len(roles)-1] = a, target
				p.row(n, acells)
			}
		}
		// Name the entry in its errors: the number alone means little.
		for j := before; j < len(p.res.Errors); j++ {
			p.res.Errors[j].Reason = "dn " + e.DN + ": " + p.res.Errors[j].Reason
		}
	}
	res := p.res
	if len(res.Errors) > 0 {
		return res, invalidLines{name: t.safe, n: len(res.Errors), first: res.Errors[0]}
	}
	return res, nil
}

// firstValue returns the first non-empty value of the comma-separated
// attributes.
func firstValue(e *ldap.Entry, attrs string) string {
	for _, a := range strings.Split(attrs, ",") {
		if v := e.GetAttributeValue(strings.TrimSpace(a)); v != "" {
			return v
		}
	}
	return ""
}

// uacFlags reads Active Directory's userAccountControl: ACCOUNTDISABLE
// (0x2) is disabled; anything else is an ordinary account.
func uacFlags(v string) string {
	if v == "" {
		return ""
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return v // reported by the flags check, with the value
	}
	if n&0x2 != 0 {
		return "disabled"
	}
	return "-"
}

func ldapSearch(ctx context.Context, t ldapTarget, opt LDAPOptions, m LDAPMapping, timeout time.Duration) ([]*ldap.Entry, error) {
	conn, err := ldapConnect(ctx, t, opt, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var attrs []string
	for _, a := range []string{m.Mail, m.Account, m.Flags, m.Aliases} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	for _, a := range strings.Split(m.Name, ",") {
		if a = strings.TrimSpace(a); a != "" {
			attrs = append(attrs, a)
		}
	}
	req := ldap.NewSearchRequest(t.base, t.scope, ldap.NeverDerefAliases, 0, int(timeout/time.Second), false, t.filter, attrs, nil)
	// Paged, so that a directory's size limit (Active Directory: 1000)
	// does not cut the list short, which a sync would read as removals.
	sr, err := conn.SearchWithPaging(req, 500)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: search: %v", t.safe, ctx.Err())
		}
		return nil, fmt.Errorf("%s: search %s: %v", t.safe, t.filter, err)
	}
	sort.Slice(sr.Entries, func(i, j int) bool { return sr.Entries[i].DN < sr.Entries[j].DN })
	return sr.Entries, nil
}

// timeout is Timeout, or its default.
func (opt LDAPOptions) timeout() time.Duration {
	if opt.Timeout > 0 {
		return opt.Timeout
	}
	return 30 * time.Second
}

// ldapConnect connects to the directory of t (TLS for ldaps://, StartTLS
// when asked) and binds with the search account, when there is one; the
// connection is closed when ctx ends, which ends any call on it (go-ldap's
// calls take no context).
func ldapConnect(ctx context.Context, t ldapTarget, opt LDAPOptions, timeout time.Duration) (*ldap.Conn, error) {
	tlsCfg := opt.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := ldap.DialURL(t.server, ldap.DialWithTLSConfig(tlsCfg), ldap.DialWithDialer(&net.Dialer{Timeout: timeout}))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", t.safe, err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	conn.SetTimeout(timeout)
	if opt.StartTLS {
		if err := conn.StartTLS(tlsCfg); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: StartTLS: %v", t.safe, err)
		}
	}
	if opt.BindDN != "" {
		if err := conn.Bind(opt.BindDN, opt.Password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: bind as %s: %v", t.safe, opt.BindDN, err)
		}
	}
	return conn, nil
}
