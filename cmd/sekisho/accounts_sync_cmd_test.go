package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts/export/slapdtest"
)

// twinsConfig is the municipal shape: the regional domain is the LG
// domain's twin, declared by the alias the shipped example uses.
const twinsConfig = `
accounts:
  directory: accounts.tsv
  domains:
    - name: city.toyokawa.lg.jp
    - name: city.toyokawa.aichi.jp
  aliases:
    - alias: "*@city.toyokawa.aichi.jp"
      target: "*@city.toyokawa.lg.jp"
`

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An export without a flags column keeps the blocks the directory has; a
// regional export after an LG one changes domains, removes nobody.
func TestAccountsSyncKeepsFlagsAcrossExports(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "sekisho.yaml", twinsConfig)
	withFlags := "mail\tname\t状態\ntanaka@city.toyokawa.lg.jp\t田中\t有効\nbaito@city.toyokawa.lg.jp\tアルバイト\t外部送信禁止\n"
	if out, errOut, code := runSekisho(t, withFlags, "accounts", "sync", "-c", cfg, "--from", "-"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	noFlags := "mail\tname\ntanaka@city.toyokawa.aichi.jp\t田中 太郎\nbaito@city.toyokawa.aichi.jp\tアルバイト\n"
	out, errOut, code := runSekisho(t, noFlags, "accounts", "sync", "-c", cfg, "--from", "-", "--diff")
	if code != exitOK {
		t.Fatalf("second sync: exit %d\n%s%s", code, out, errOut)
	}
	assertGolden(t, "accounts/sync-twins-noflags.txt", dir, out)
	out, _, _ = runSekisho(t, "", "accounts", "check", "-c", cfg, "baito@city.toyokawa.lg.jp", "baito@city.toyokawa.aichi.jp")
	if strings.Count(out, "[outbound_blocked]") != 2 || strings.Count(out, "account baito@city.toyokawa.aichi.jp") != 2 {
		t.Errorf("baito after an export without flags:\n%s", out)
	}
	// --domain accepts the twin's rows; an undeclared domain is a line error.
	out, _, code = runSekisho(t, noFlags, "accounts", "sync", "-c", cfg, "--from", "-", "--domain", "city.toyokawa.lg.jp", "--dry-run")
	if code != exitOK {
		t.Errorf("--domain of the twin: exit %d\n%s", code, out)
	}
	out, _, code = runSekisho(t, noFlags+"x@other.jp\tX\n", "accounts", "sync", "-c", cfg, "--from", "-", "--dry-run")
	if code != exitFinding || !strings.HasPrefix(out, "stdin:4: domain other.jp is not one of accounts.domains\n") {
		t.Errorf("undeclared domain: exit %d\n%s", code, out)
	}
	// --reset-missing clears what the export does not carry, on purpose.
	out, _, code = runSekisho(t, noFlags, "accounts", "sync", "-c", cfg, "--from", "-", "--reset-missing", "--diff", "--dry-run")
	if code != exitOK || !strings.Contains(out, "~ account baito@city.toyokawa.aichi.jp  flags: outbound_blocked -> -") {
		t.Errorf("--reset-missing: exit %d\n%s", code, out)
	}
}

// One sync of several sources: the export, E-Post's alias script and
// sender.dat files; then an alias file alone, which keeps every account.
func TestAccountsSyncSeveralSources(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "sekisho.yaml", twinsConfig)
	epost := filepath.Join("..", "..", "accounts", "export", "testdata", "epost")
	exp := writeTemp(t, dir, "export.csv", "メールアドレス,氏名\n"+
		"tanaka@city.toyokawa.aichi.jp,田中\nsuzuki@city.toyokawa.aichi.jp,鈴木\nsoumu@city.toyokawa.aichi.jp,総務課\n"+
		"baito@city.toyokawa.aichi.jp,アルバイト\nbucho@city.toyokawa.aichi.jp,部長\n")
	out, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", exp,
		"--from", filepath.Join(epost, "aliimport.sh"),
		"--from", filepath.Join(epost, "inbox", "baito", "sender.dat"),
		"--from", filepath.Join(epost, "inbox", "bucho", "sender.dat"), "--diff")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	assertGolden(t, "accounts/sync-sources.txt", dir, out)
	out, _, _ = runSekisho(t, "", "accounts", "check", "-c", cfg, "20091234@city.toyokawa.lg.jp", "info@city.toyokawa.aichi.jp")
	if !strings.Contains(out, "20091234@city.toyokawa.lg.jp: alias via 2009*@city.toyokawa.aichi.jp") ||
		!strings.Contains(out, "accepted, alias of tanaka@city.toyokawa.lg.jp") {
		t.Errorf("check after the sync:\n%s", out)
	}

	// The alias script alone, with one alias dropped: the accounts stay.
	script := writeTemp(t, dir, "aliases.txt", "./epstman mode=NA domname=city.toyokawa.aichi.jp aliases=info mappedto=suzuki\n")
	out, errOut, code = runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", script, "--diff")
	if code != exitOK || strings.Contains(out, "- account") || !strings.Contains(out, "~ alias info@city.toyokawa.aichi.jp  target:") {
		t.Errorf("alias-only sync: exit %d\n%s%s", code, out, errOut)
	}

	// The same entry from two sources is refused, naming both.
	out, _, code = runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", exp, "--kind", "export", "--from", exp, "--dry-run")
	if code != exitFinding || !strings.Contains(out, exp+":2: account tanaka@city.toyokawa.lg.jp is also defined at "+exp+":2") {
		t.Errorf("duplicate across sources: exit %d\n%s", code, out)
	}
	// usetime.dat is named, not misread as an export.
	ut := writeTemp(t, dir, "inbox/bucho/usetime.dat", "x\n")
	if _, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", ut); code != exitFinding || !strings.Contains(errOut, "usetime.dat") {
		t.Errorf("usetime.dat: exit %d %s", code, errOut)
	}
	if _, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", exp, "--kind", "aliases"); code != exitUsage || !strings.Contains(errOut, "--kind aliases must come before") {
		t.Errorf("trailing --kind: exit %d %s", code, errOut)
	}
}

// README.ja's steps: accounts.directory set, no file yet: the first sync
// creates it and says so, without a .bak line.
func TestAccountsSyncFirstRun(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "sekisho.yaml", twinsConfig)
	out, _, code := runSekisho(t, "mail\ntanaka@city.toyokawa.lg.jp\n", "accounts", "sync", "-c", cfg, "--from", "-")
	if code != exitOK || strings.Contains(out, ".bak") || !strings.Contains(out, "(created)") {
		t.Errorf("first sync: exit %d\n%s", code, out)
	}
	out, _, code = runSekisho(t, "mail\ntanaka@city.toyokawa.lg.jp\n", "accounts", "sync", "-c", cfg, "--from", "-")
	if code != exitOK || !strings.Contains(out, ".bak") {
		t.Errorf("second sync: exit %d\n%s", code, out)
	}
	writeTemp(t, dir, "nodir.yaml", "accounts:\n  domains:\n    - name: a.jp\n")
	if _, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", filepath.Join(dir, "nodir.yaml"), "--from", "-"); code != exitFinding ||
		!strings.Contains(errOut, "the first sync creates the file") {
		t.Errorf("no directory set: exit %d %s", code, errOut)
	}
}

// An LDAP source: a real slapd on loopback, searched with a bind whose
// password comes from a file; merged with an alias file.
func TestAccountsSyncLDAP(t *testing.T) {
	url := slapdtest.Start(t, `dn: dc=toyokawa,dc=example
objectClass: dcObject
objectClass: organization
o: Toyokawa
dc: toyokawa

dn: ou=people,dc=toyokawa,dc=example
objectClass: organizationalUnit
ou: people

dn: uid=tanaka,ou=people,dc=toyokawa,dc=example
objectClass: inetOrgPerson
objectClass: extensibleObject
uid: tanaka
cn: Tanaka Taro
sn: Tanaka
mail: tanaka@city.toyokawa.aichi.jp
userAccountControl: 512

dn: uid=gone,ou=people,dc=toyokawa,dc=example
objectClass: inetOrgPerson
objectClass: extensibleObject
uid: gone
cn: Gone
sn: Gone
mail: gone@city.toyokawa.aichi.jp
userAccountControl: 514
`)
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "sekisho.yaml", twinsConfig)
	pw := writeTemp(t, dir, "ldap.pw", "admin-secret\n")
	os.Chmod(pw, 0o600) // a password file others may read is refused
	aliases := writeTemp(t, dir, "aliases.txt", "./epstman mode=NA domname=city.toyokawa.aichi.jp aliases=info mappedto=tanaka\n")
	src := url + "/ou=people,dc=toyokawa,dc=example??sub?(objectClass=inetOrgPerson)"
	out, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", src, "--from", aliases,
		"--ldap-bind-dn", "cn=admin,dc=toyokawa,dc=example", "--ldap-password-file", pw,
		"--ldap-map", "name=cn,flags=userAccountControl", "--diff")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`+ account gone@city.toyokawa.aichi.jp  name="Gone"  flags=disabled`,
		`+ account tanaka@city.toyokawa.aichi.jp  name="Tanaka Taro"`,
		`+ alias info@city.toyokawa.aichi.jp -> tanaka@city.toyokawa.aichi.jp`,
		"city.toyokawa.aichi.jp: accounts 2, aliases 1 (added 3, removed 0, changed 0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A bind without a password is a usage error, before any connection.
	if _, errOut, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", src, "--ldap-bind-dn", "cn=admin,dc=toyokawa,dc=example"); code != exitUsage ||
		!strings.Contains(errOut, "needs a password") {
		t.Errorf("no password: exit %d %s", code, errOut)
	}
}

// config check warns about a mirror domain whose mail would go to the
// smart host: the regional domain of the issue, before it was a twin.
func TestConfigCheckWarnsUnroutedMirrorDomain(t *testing.T) {
	dir := t.TempDir()
	base := `
accounts:
  domains:
    - name: city.toyokawa.lg.jp
    - name: city.toyokawa.aichi.jp%s
routing:
  routes:
    - name: inner-server
      domain: city.toyokawa.lg.jp
      targets: ["192.0.2.10:20025"]
`
	for _, c := range []struct{ extra, want string }{
		{"", "warning: accounts.domains[1]: no route in routing.routes names city.toyokawa.aichi.jp, and it is no twin of a routed domain"},
		{"\n      twin: city.toyokawa.lg.jp", ""},
	} {
		cfg := writeTemp(t, dir, "c.yaml", fmt.Sprintf(base, c.extra))
		out, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if c.want == "" && strings.Contains(out, "warning") || c.want != "" && !strings.Contains(out, c.want) {
			t.Errorf("twin %q: output %q, want %q", c.extra, out, c.want)
		}
	}
}
