// Package slapdtest runs a real OpenLDAP server (Debian's slapd) on loopback
// for tests of LDAP sources: its own temporary configuration, suffix
// dc=toyokawa,dc=example, root DN cn=admin,dc=toyokawa,dc=example with the
// password admin-secret, and the schemas core, cosine, nis, inetorgperson
// and msuser (Active Directory's userAccountControl, proxyAddresses).
package slapdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// slapdBin is Debian's OpenLDAP server (package slapd; ldap-utils is not
// needed: the test loads its data with slapadd, which slapd ships).
const slapdBin = "/usr/sbin/slapd"

// Start runs a slapd of its own on a loopback port, with a temporary
// slapd.conf and an mdb database loaded from ldif by slapadd, and returns
// its ldap:// address. It skips only when slapd is not installed.
func Start(t testing.TB, ldif string) string {
	t.Helper()
	bin := slapdBin
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("slapd")
		if lerr != nil {
			t.Skipf("slapd is not installed (%s, and none in PATH): apt-get install slapd to run the LDAP source tests", slapdBin)
		}
		bin = p
	}
	slapadd := filepath.Join(filepath.Dir(bin), "slapadd")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Debian's layout first, then other distributions'.
	schema := firstExisting(t, "core.schema", "/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
	modules := ""
	if dir := firstExisting(nil, "back_mdb.so", "/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"); dir != "" {
		modules = "modulepath " + dir + "\nmoduleload back_mdb\n"
	} // else back_mdb is built into slapd
	conf := fmt.Sprintf(`include %[1]s/core.schema
include %[1]s/cosine.schema
include %[1]s/nis.schema
include %[1]s/inetorgperson.schema
include %[1]s/msuser.schema
%[3]spidfile %[2]s/slapd.pid
database mdb
suffix "dc=toyokawa,dc=example"
rootdn "cn=admin,dc=toyokawa,dc=example"
rootpw admin-secret
directory %[2]s/db
maxsize 104857600
`, schema, dir, modules)
	confPath := filepath.Join(dir, "slapd.conf")
	ldifPath := filepath.Join(dir, "data.ldif")
	for p, content := range map[string]string{confPath: conf, ldifPath: ldif} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(slapadd, "-f", confPath, "-l", ldifPath).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// -d keeps slapd in the foreground, so the test owns the process.
	cmd := exec.Command(bin, "-f", confPath, "-h", "ldap://"+addr+"/", "-d", "0")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "ldap://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstExisting returns the first folder holding file; with t set, none is
// a test failure (slapd is installed but its files are not where expected).
func firstExisting(t testing.TB, file string, dirs ...string) string {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	if t != nil {
		t.Fatalf("slapd is installed, but no %s in %s", file, strings.Join(dirs, ", "))
	}
	return ""
}
