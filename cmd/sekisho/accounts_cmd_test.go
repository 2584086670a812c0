package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the golden files of command output")

// runSekisho runs a subcommand in process and returns its output and status.
func runSekisho(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = dispatch(&cmdEnv{stdin: strings.NewReader(stdin), stdout: &o, stderr: &e}, args)
	return o.String(), e.String(), code
}

// assertGolden compares got with testdata/NAME, after replacing dir (a
// temporary folder) with $DIR so the files do not depend on the machine.
func assertGolden(t *testing.T, name, dir, got string) {
	t.Helper()
	if dir != "" {
		got = strings.ReplaceAll(got, dir, "$DIR")
	}
	path := filepath.Join("testdata", name)
	if *updateGolden {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/sekisho -update-golden to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output:\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

const accountsConfig = `
accounts:
  directory: accounts.tsv
  domains:
    - name: example.lg.jp
    - name: other.lg.jp
    - name: 例え.jp
`

func TestAccountsSyncShiftJIS(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	os.WriteFile(cfg, []byte(accountsConfig), 0o644)
	export := filepath.Join("..", "..", "accounts", "export", "testdata", "sjis_crlf.tsv")

	out, _, code := runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", export, "--dry-run", "--json")
	if code != exitFinding {
		t.Errorf("invalid lines: exit %d, want %d", code, exitFinding)
	}
	assertGolden(t, "accounts/sync-sjis-dryrun.json", dir, out)

	out, _, code = runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", export, "--skip-invalid")
	if code != exitOK {
		t.Errorf("--skip-invalid: exit %d\n%s", code, out)
	}
	assertGolden(t, "accounts/sync-sjis-apply.txt", dir, out)
	if _, err := os.Stat(filepath.Join(dir, "accounts.tsv")); err != nil {
		t.Fatalf("directory not written: %v", err)
	}
}

func TestAccountsSyncRefusesTruncated(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	os.WriteFile(cfg, []byte(accountsConfig), 0o644)
	var full strings.Builder
	full.WriteString("mail\tname\n")
	for _, u := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		full.WriteString(u + "@example.lg.jp\t職員 " + u + "\n")
	}
	if _, errOut, code := runSekisho(t, full.String(), "accounts", "sync", "-c", cfg, "--from", "-"); code != exitOK {
		t.Fatalf("first sync: exit %d: %s", code, errOut)
	}
	dirFile := filepath.Join(dir, "accounts.tsv")
	before, _ := os.ReadFile(dirFile)

	truncated := "mail\tname\na@example.lg.jp\t職員 a\nb@example.lg.jp\t職員 b\n"
	out, _, code := runSekisho(t, truncated, "accounts", "sync", "-c", cfg, "--from", "-")
	if code != exitFinding {
		t.Errorf("truncated export: exit %d, want %d", code, exitFinding)
	}
	assertGolden(t, "accounts/sync-truncated.txt", dir, out)
	after, _ := os.ReadFile(dirFile)
	if !bytes.Equal(before, after) {
		t.Error("a refused sync changed the directory file")
	}

	out, _, code = runSekisho(t, "", "accounts", "sync", "-c", cfg, "--from", "-", "--json")
	if code != exitFinding || !strings.Contains(out, "the export is empty") || !strings.Contains(out, `"applied": false`) {
		t.Errorf("empty export: exit %d\n%s", code, out)
	}

	_, _, code = runSekisho(t, truncated, "accounts", "sync", "-c", cfg, "--from", "-", "--force")
	if code != exitOK {
		t.Errorf("--force: exit %d", code)
	}
	if got, _ := os.ReadFile(dirFile + ".bak"); !bytes.Equal(got, before) {
		t.Error("the previous directory was not kept as .bak")
	}
}

func TestAccountsCheckAndList(t *testing.T) {
	out, _, code := runSekisho(t, "", "accounts", "check", "tanaka@city.example.lg.jp", "baito@city.example.lg.jp",
		"info@city.example.lg.jp", "nobody@city.example.lg.jp", "postmaster@city.example.lg.jp", "someone@example.com")
	if code != exitOK {
		t.Errorf("check: exit %d", code)
	}
	assertGolden(t, "accounts/check.txt", "", out)

	out, _, _ = runSekisho(t, "", "accounts", "check", "--json", "baito@city.example.lg.jp")
	assertGolden(t, "accounts/check.json", "", out)

	if _, _, code := runSekisho(t, "", "accounts", "check", "not-an-address"); code != exitFinding {
		t.Errorf("bad address: exit %d, want %d", code, exitFinding)
	}
	out, _, _ = runSekisho(t, "", "accounts", "list")
	assertGolden(t, "accounts/list.txt", "", out)
}

func TestConfigCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte(`
accounts:
  domainz: []
  max_removal_percent: 300
  domains:
    - name: "a..b"
      mode: open
`), 0o644)
	_, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg)
	if code != exitFinding {
		t.Errorf("exit %d", code)
	}
	assertGolden(t, "config/bad.txt", dir, errOut)

	os.WriteFile(cfg, []byte("accounts: [unclosed\n"), 0o644)
	_, errOut, _ = runSekisho(t, "", "config", "check", "-c", cfg)
	if !regexp.MustCompile(`bad.yaml:\d+: `).MatchString(errOut) {
		t.Errorf("YAML syntax error does not name the line: %q", errOut)
	}
}

func TestUsage(t *testing.T) {
	if _, _, code := runSekisho(t, ""); code != exitUsage {
		t.Errorf("no command: exit %d", code)
	}
	if _, _, code := runSekisho(t, "", "no-such-command"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	out, _, code := runSekisho(t, "", "accounts", "sync", "--help")
	if code != exitOK || !strings.Contains(out, "usage: sekisho accounts sync") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	if _, _, code := runSekisho(t, "", "accounts", "sync", "--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: exit %d", code)
	}
}
