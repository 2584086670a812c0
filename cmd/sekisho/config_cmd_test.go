package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheckShowRedactsAndOverrides(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
accounts:
  domains: [{name: example.lg.jp}]
  accounts:
    - address: sato@example.lg.jp
      secret: "{PLAIN}do-not-print-me"
relay:
  hostname: gw.example.lg.jp
`), 0o644)
	t.Setenv("SEKISHO_RELAY__HOSTNAME", "override.example.lg.jp")
	t.Setenv("SEKISHO_ACCOUNTS__MAX_REMOVAL_PERCENT", "25")
	out, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg, "--show")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "do-not-print-me") || !strings.Contains(out, "secret: (redacted)") {
		t.Errorf("secret not redacted:\n%s", out)
	}
	if !strings.Contains(out, "hostname: override.example.lg.jp") || !strings.Contains(out, "max_removal_percent: 25") {
		t.Errorf("environment overrides not applied:\n%s", out)
	}
}

func TestConfigCheckLoadsReferencedFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
accounts:
  directory: missing.tsv
  domains: [{name: example.lg.jp}]
`), 0o644)
	_, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg)
	if code != exitFinding || !strings.Contains(errOut, "missing.tsv: directory file does not exist") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
