package export

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/export/slapdtest"
)

func startSlapd(t *testing.T, ldif string) string { return slapdtest.Start(t, ldif) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// directoryLDIF is an inner server's directory: staff under ou=people as
// OpenLDAP and Active Directory keep them (Japanese display names,
// userAccountControl, proxyAddresses), broken entries, and 600 accounts
// under ou=bulk, more than slapd's default size limit of 500.
func directoryLDIF() string {
	var b strings.Builder
	b.WriteString(`dn: dc=toyokawa,dc=example
objectClass: dcObject
objectClass: organization
o: Toyokawa
dc: toyokawa

dn: ou=people,dc=toyokawa,dc=example
objectClass: organizationalUnit
ou: people

dn: ou=bulk,dc=toyokawa,dc=example
objectClass: organizationalUnit
ou: bulk

`)
	person := func(uid, mail, display string, extra ...string) {
		fmt.Fprintf(&b, "dn: uid=%s,ou=people,dc=toyokawa,dc=example\nobjectClass: inetOrgPerson\nobjectClass: extensibleObject\nuid: %s\ncn: %s\nsn: %s\n", uid, uid, uid, uid)
		if mail != "" {
			fmt.Fprintf(&b, "mail: %s\n", mail)
		}
		if display != "" {
			fmt.Fprintf(&b, "displayName:: %s\n", b64(display))
		}
		for _, e := range extra {
			b.WriteString(e + "\n")
		}
		b.WriteString("\n")
	}
	person("tanaka", "tanaka@city.toyokawa.aichi.jp", "田中 太郎", "userAccountControl: 512",
		"proxyAddresses: SMTP:tanaka@city.toyokawa.aichi.jp", "proxyAddresses: smtp:info@city.toyokawa.aichi.jp",
		"proxyAddresses: X500:/o=Toyokawa/cn=tanaka")
	person("kyushoku", "kyushoku@city.toyokawa.aichi.jp", "休職者", "userAccountControl: 514")
	person("suzuki", "Suzuki@City.Toyokawa.Aichi.JP", "", "userAccountControl: 66048")
	person("broken", "broken taro@city.toyokawa.aichi.jp", "壊れた 行")
	person("nomail", "", "メールなし")
	person("zdup", "tanaka@city.toyokawa.aichi.jp", "重複")
	person("baduac", "baduac@city.toyokawa.aichi.jp", "", "userAccountControl: lots")
	for i := range 600 {
		fmt.Fprintf(&b, "dn: uid=user%04d,ou=bulk,dc=toyokawa,dc=example\nobjectClass: inetOrgPerson\nuid: user%04d\ncn: user%04d\nsn: user\nmail: user%04d@city.toyokawa.aichi.jp\n\n", i, i, i, i)
	}
	return b.String()
}

func TestReadLDAP(t *testing.T) {
	url := startSlapd(t, directoryLDIF())
	ctx := context.Background()
	mapping := LDAPMapping{Flags: "userAccountControl", Aliases: "proxyAddresses"}

	res, err := ReadLDAP(ctx, LDAPOptions{URL: url + "/ou=people,dc=toyokawa,dc=example??sub?(objectClass=inetOrgPerson)", Map: mapping})
	got := strings.ReplaceAll(dump(res, err), url, "ldap://SLAPD")
	golden := filepath.Join("testdata", "ldap-people.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, rerr := os.ReadFile(golden)
	if rerr != nil || got != string(want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}

	// 600 entries, paged past slapd's size limit of 500, with a bind.
	res, err = ReadLDAP(ctx, LDAPOptions{URL: url + "/ou=bulk,dc=toyokawa,dc=example", BindDN: "cn=admin,dc=toyokawa,dc=example", Password: "admin-secret"})
	if err != nil || len(res.Records) != 600 || res.Records[0].Name != "user0000" || res.Records[0].Missing&accounts.FieldFlags == 0 {
		t.Errorf("bulk: %v, %d records, first %+v", err, len(res.Records), res.Records[:min(1, len(res.Records))])
	}
	// A wrong password and a base that does not exist are errors of the
	// whole source, never an empty list (which a sync would read as
	// "remove everyone").
	for _, c := range []struct {
		opt  LDAPOptions
		want string
	}{
		{LDAPOptions{URL: url + "/ou=bulk,dc=toyokawa,dc=example", BindDN: "cn=admin,dc=toyokawa,dc=example", Password: "wrong"}, "bind as cn=admin,dc=toyokawa,dc=example: LDAP Result Code 49"},
		{LDAPOptions{URL: url + "/ou=nobody,dc=toyokawa,dc=example"}, "No Such Object"},
		{LDAPOptions{URL: "ldap://127.0.0.1:1/dc=x", Timeout: 2 * time.Second}, "ldap://127.0.0.1:1/dc=x"},
	} {
		_, err := ReadLDAP(ctx, c.opt)
		if err == nil || errors.Is(err, ErrInvalidLines) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.opt.URL, err, c.want)
		}
	}
}

func TestParseLDAPURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ldap://dc1:389/ou=staff,dc=city,dc=local", "ldap://dc1:389 ou=staff,dc=city,dc=local 2 (mail=*)"},
		{"ldaps://dc1/dc=city,dc=local??one?(objectClass=user)", "ldaps://dc1 dc=city,dc=local 1 (objectClass=user)"},
		{"ldap://dc1/ou=staff%20a,dc=local??base?", "ldap://dc1 ou=staff a,dc=local 0 (mail=*)"},
		{"http://dc1/dc=x", "the scheme must be ldap or ldaps"},
		{"ldap://admin:pw@dc1/dc=x", "no credentials in the URL"},
		{"ldap://dc1/", "no base DN"},
		{"ldap://dc1/dc=x??deep?", "scope \"deep\""},
		{"ldap://dc1/dc=x???(mail=*", "filter \"(mail=*\""},
		{"ldap://dc1/notadn", "base DN \"notadn\""},
	}
	for _, c := range cases {
		tg, err := ParseLDAPURL(c.in)
		got := fmt.Sprint(err)
		if err == nil {
			got = fmt.Sprintf("%s %s %d %s", tg.server, tg.base, tg.scope, tg.filter)
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("ParseLDAPURL(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzParseLDAPURL: no panic; an accepted URL has a host, a base DN that
// parses and a filter that compiles (checked by ParseLDAPURL itself, so
// here: it does not accept credentials or other schemes).
func FuzzParseLDAPURL(f *testing.F) {
	for _, s := range []string{"ldap://dc1:389/ou=staff,dc=city,dc=local", "ldaps://dc1/dc=x??one?(objectClass=user)", "ldap://a@b/dc=x", "ldap:///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseLDAPURL(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(tg.server, "ldap://") && !strings.HasPrefix(tg.server, "ldaps://") || tg.base == "" || strings.Contains(tg.server, "@") {
			t.Fatalf("accepted %q as %+v", s, tg)
		}
	})
}
