package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPUser is a person the directory vouched for with a bind.
type LDAPUser struct {
	DN   string
	Mail string
	Name string
	// Groups are the DNs of the groups the user is a member of.
	Groups []string
}

// LDAPBindOptions say how to check a person's password against the
// directory (the console's sign-in): the URL's base and filter select the
// people (as for a source), Login names the attribute they sign in with.
type LDAPBindOptions struct {
	// LDAPOptions: URL, the search account (BindDN, Password; empty:
	// anonymous), StartTLS, TLS, Timeout. Map and the domain options are
	// not used.
	LDAPOptions
	// Login is the attribute matched against the name typed (uid,
	// sAMAccountName, userPrincipalName, mail). Default uid.
	Login string
	// Mail and Name are read from the entry (defaults mail, displayName
	// then cn).
	Mail, Name string
	// GroupsAttr lists the user's groups on the entry (Active Directory's
	// memberOf). Default memberOf.
	GroupsAttr string
	// GroupBase, when set, is searched for groups naming the user as
	// member or uniqueMember (OpenLDAP without the memberOf overlay).
	GroupBase string
}

// ErrLDAPCredentials says the name or the password is wrong (or the name
// matches more than one entry); the caller counts it as a failed sign-in.
var ErrLDAPCredentials = errors.New("ldap: wrong name or password")

// LDAPAuthenticate finds the entry whose Login attribute is login and
// binds as it with password. An empty password is refused before the
// directory is asked: an LDAP server takes a bind without a password as
// anonymous (RFC 4513 §5.1.2), which must never sign anyone in.
func LDAPAuthenticate(ctx context.Context, opt LDAPBindOptions, login, password string) (LDAPUser, error) {
	if login == "" || password == "" || strings.ContainsAny(login, "\x00\r\n") {
		return LDAPUser{}, ErrLDAPCredentials
	}
	t, err := ParseLDAPURL(opt.URL)
	if err != nil {
		return LDAPUser{}, err
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	loginAttr, mailAttr, nameAttr, groupsAttr := def(opt.Login, "uid"), def(opt.Mail, "mail"), def(opt.Name, "displayName,cn"), def(opt.GroupsAttr, "memberOf")
	timeout := opt.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ldapConnect(ctx, t, opt.LDAPOptions, timeout)
	if err != nil {
		return LDAPUser{}, err
	}
	defer conn.Close()
	attrs := []string{mailAttr, groupsAttr}
	for _, a := range strings.Split(nameAttr, ",") {
		attrs = append(attrs, strings.TrimSpace(a))
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", t.filter, ldap.EscapeFilter(loginAttr), ldap.EscapeFilter(login))
	sr, err := conn.Search(ldap.NewSearchRequest(t.base, t.scope, ldap.NeverDerefAliases, 2, int(timeout/time.Second), false, filter, attrs, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return LDAPUser{}, fmt.Errorf("%s: search %s: %v", t.safe, filter, err)
	}
	if sr == nil || len(sr.Entries) != 1 {
		return LDAPUser{}, ErrLDAPCredentials
	}
	e := sr.Entries[0]
	if err := conn.Bind(e.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return LDAPUser{}, ErrLDAPCredentials
		}
		return LDAPUser{}, fmt.Errorf("%s: bind as %s: %v", t.safe, e.DN, err)
	}
	u := LDAPUser{DN: e.DN, Mail: e.GetAttributeValue(mailAttr), Name: firstValue(e, nameAttr), Groups: e.GetAttributeValues(groupsAttr)}
	if opt.GroupBase != "" {
		// Read as the search account again: a person may not be allowed
		// to read the groups.
		if opt.BindDN != "" {
			if err := conn.Bind(opt.BindDN, opt.Password); err != nil {
				return LDAPUser{}, fmt.Errorf("%s: bind as %s: %v", t.safe, opt.BindDN, err)
			}
		} else if err := conn.UnauthenticatedBind(""); err != nil {
			return LDAPUser{}, fmt.Errorf("%s: anonymous bind: %v", t.safe, err)
		}
		dn := ldap.EscapeFilter(e.DN)
		gr, err := conn.Search(ldap.NewSearchRequest(opt.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1000,
			int(timeout/time.Second), false, fmt.Sprintf("(|(member=%s)(uniqueMember=%s))", dn, dn), []string{"dn"}, nil))
		if err != nil {
			return LDAPUser{}, fmt.Errorf("%s: groups under %s: %v", t.safe, opt.GroupBase, err)
		}
		for _, g := range gr.Entries {
			u.Groups = append(u.Groups, g.DN)
		}
	}
	return u, nil
}

// SameDN compares two distinguished names as LDAP does (attribute types
// and values case-insensitively, spaces around separators ignored).
func SameDN(a, b string) bool {
	da, err1 := ldap.ParseDN(a)
	db, err2 := ldap.ParseDN(b)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return da.EqualFold(db)
}
