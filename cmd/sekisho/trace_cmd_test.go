package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTraceCommandErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfg, queueTestConfig)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"trace", "-c", cfg, "--client", "192.0.2.0/33"}, exitUsage, `--client "192.0.2.0/33"`},
		{[]string{"trace", "-c", cfg, "extra"}, exitUsage, `unexpected argument "extra"`},
		// No gateway runs: the socket is not there.
		{[]string{"trace", "-c", cfg, "--client", "192.0.2.7"}, exitFinding, filepath.Join(dir, "spool", "trace.sock")},
	} {
		_, errOut, code := runSekisho(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("sekisho %v: %d %q, want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestConfigCheckArchive(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfg, queueTestConfig+`
  archive:
    - direction: both
      address: archive
`)
	_, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg)
	for _, want := range []string{`relay.archive[0].direction: "both" is not a direction`, `relay.archive[0].address:`} {
		if code != exitFinding || !strings.Contains(errOut, want) {
			t.Errorf("config check: %d %q, want %q", code, errOut, want)
		}
	}
}
