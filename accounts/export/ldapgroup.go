package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrLDAPNoGroup says the group's entry does not exist.
var ErrLDAPNoGroup = errors.New("ldap: no such group")

// LDAPGroupMembers counts the members of the group entry dn (member,
// uniqueMember and memberUid values), read with opt's search account on
// opt's server (the URL's base and filter are not used): config check
// warns about an approval group whose directory group is empty.
func LDAPGroupMembers(ctx context.Context, opt LDAPOptions, dn string) (int, error) {
	t, err := ParseLDAPURL(opt.URL)
	if err != nil {
		return 0, err
	}
	timeout := opt.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ldapConnect(ctx, t, opt, timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	attrs := []string{"member", "uniqueMember", "memberUid"}
	sr, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(timeout/time.Second), false,
		"(objectClass=*)", attrs, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || err == nil && len(sr.Entries) == 0 {
		return 0, ErrLDAPNoGroup
	}
	if err != nil {
		return 0, fmt.Errorf("%s: read %s: %v", t.safe, dn, err)
	}
	n := 0
	for _, a := range attrs {
		for _, v := range sr.Entries[0].GetAttributeValues(a) {
			if v != "" {
				n++
			}
		}
	}
	return n, nil
}
