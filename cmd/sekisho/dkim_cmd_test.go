package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
)

func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"rsa", "ed25519"} {
		key := filepath.Join(dir, kind+".pem")
		out, errOut, code := runSekisho(t, "", "dkim", "keygen", "City.Example.JP.", "--selector", "s2026", "--type", kind, "--out", key)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", kind, code, errOut)
		}
		// The printed record is valid zone file syntax and publishes the
		// public half of the written key.
		rr, err := dns.NewRR(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("%s: record %q does not parse: %v", kind, out, err)
		}
		if rr.Header().Name != "s2026._domainkey.city.example.jp." {
			t.Errorf("%s: owner %s", kind, rr.Header().Name)
		}
		signer, err := dkimsign.LoadKey(key)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := dkimsign.TXTRecord(signer.Public())
		if got := strings.Join(rr.(*dns.TXT).Txt, ""); got != want {
			t.Errorf("%s: published %q, key file has %q", kind, got, want)
		}
		if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", kind, st.Mode())
		}
		// Never replaced without --force.
		if _, errOut, code := runSekisho(t, "", "dkim", "keygen", "city.example.jp", "--out", key); code != exitFinding || !strings.Contains(errOut, "exists") {
			t.Errorf("%s: overwrite: exit %d %s", kind, code, errOut)
		}
	}
	for _, args := range [][]string{{"dkim", "keygen"}, {"dkim", "keygen", "localhost"}, {"dkim", "keygen", "a.example", "--type", "dsa"}} {
		if _, _, code := runSekisho(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
