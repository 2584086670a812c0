package export

import (
	"context"
	"errors"
	"testing"

	"github.com/sekisho/sekisho/accounts/export/slapdtest"
)

func TestLDAPAuthenticate(t *testing.T) {
	url := startSlapd(t, slapdtest.SignInLDIF)
	opt := LDAPBindOptions{LDAPOptions: LDAPOptions{URL: url + "/ou=people,dc=toyokawa,dc=example??sub?(objectClass=inetOrgPerson)"},
		GroupBase: "ou=groups,dc=toyokawa,dc=example"}
	ctx := context.Background()
	u, err := LDAPAuthenticate(ctx, opt, "kacho", "kacho-pw")
	if err != nil {
		t.Fatal(err)
	}
	if u.Mail != "kacho@city.toyokawa.aichi.jp" || u.Name != "課長" || len(u.Groups) != 1 ||
		!SameDN(u.Groups[0], "CN=approvers, OU=groups,dc=toyokawa,dc=example") {
		t.Errorf("user %+v", u)
	}
	for _, c := range []struct{ login, pw string }{
		{"kacho", "wrong"}, {"kacho", ""}, {"nobody", "x"}, {"twin", "twin-pw"}, {"*", "kacho-pw"}, {"kacho)(uid=*", "kacho-pw"},
	} {
		if _, err := LDAPAuthenticate(ctx, opt, c.login, c.pw); !errors.Is(err, ErrLDAPCredentials) {
			t.Errorf("%q/%q: %v, want ErrLDAPCredentials", c.login, c.pw, err)
		}
	}
	bad := opt
	bad.URL = "ldap://127.0.0.1:1/dc=x"
	if _, err := LDAPAuthenticate(ctx, bad, "kacho", "kacho-pw"); err == nil || errors.Is(err, ErrLDAPCredentials) {
		t.Errorf("an unreachable directory: %v (must not count as wrong credentials)", err)
	}
}

func TestLDAPGroupMembers(t *testing.T) {
	url := startSlapd(t, slapdtest.SignInLDIF)
	ctx := context.Background()
	opt := LDAPOptions{URL: url + "/dc=toyokawa,dc=example"}
	if n, err := LDAPGroupMembers(ctx, opt, "cn=approvers,ou=groups,dc=toyokawa,dc=example"); err != nil || n != 1 {
		t.Errorf("approvers: %d %v", n, err)
	}
	if _, err := LDAPGroupMembers(ctx, opt, "cn=nobody,ou=groups,dc=toyokawa,dc=example"); !errors.Is(err, ErrLDAPNoGroup) {
		t.Errorf("a missing group: %v", err)
	}
	if _, err := LDAPGroupMembers(ctx, LDAPOptions{URL: "ldap://127.0.0.1:1/dc=x"}, "cn=x"); err == nil || errors.Is(err, ErrLDAPNoGroup) {
		t.Errorf("an unreachable directory: %v", err)
	}
}
