package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The seeds' mistakes, all in one file: every problem and warning in one
// run, each on its line, nothing twice.
func TestConfigCheckSeedsMistakes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "seeds.yaml")
	os.WriteFile(cfg, []byte(`accounts:
  domains:
    - name: city.example.lg.jp
      mode: mirror
    - name: other.example.lg.jp
      mode: mirror
  accounts:
    - address: tanaka@city.example.lg.jp
      secret: "{SHA512-CRYPT}not-a-hash"
    - address: sato@city.example.lg.jp
      secret: "{PLAIN}ok"
routing:
  routes:
    - name: inner
      domain: city.example.lg.jp
      targets: ["192.168.0.103:25"]
  smart_host:
    targets: ["192.168.0.103:25"]
relay:
  hostname: gw.city.example.lg.jp
  limits:
    max_recipients: many
  listeners:
    - address: "0.0.0.0:25"
      mode: relay
  guard:
    inner_networks: [192.168.0.103/32]
    rules:
      - name: deny-all
        action: deny
`), 0o644)
	_, errOut, code := runSekisho(t, "", "config", "check", cfg)
	if code != exitFinding {
		t.Errorf("exit %d, want 1", code)
	}
	assertGolden(t, "config/seeds.txt", dir, errOut)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("printed twice: %s", l)
		}
		seen[l] = true
	}
}

// Warnings alone exit 0; --strict makes them count.
func TestConfigCheckStrict(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`accounts:
  domains: [{name: city.example.lg.jp}]
routing:
  routes:
    - name: inner
      domain: city.example.lg.jp
      targets: ["192.168.0.103:25"]
  smart_host:
    targets: ["192.168.0.103:25"]
relay:
  hostname: gw.city.example.lg.jp
  guard:
    inner_networks: [192.168.0.0/24]
`), 0o644)
	out, errOut, code := runSekisho(t, "", "config", "check", cfg)
	if code != exitOK || !strings.Contains(errOut, "warning: "+cfg+":9: routing.smart_host.targets: the smart host 192.168.0.103:25 is in relay.guard.inner_networks") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, _, code := runSekisho(t, "", "config", "check", "--strict", cfg); code != exitFinding {
		t.Errorf("--strict: exit %d, want 1", code)
	}
}

// A positional path is the configuration, never the quickstart.
func TestConfigPathPositional(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("relay:\n  hostname: [a]\n"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "check", cfg}, exitFinding, cfg + ":2: relay.hostname"},
		{[]string{"config", "check", "-c", cfg, cfg}, exitFinding, cfg + ":2: relay.hostname"},
		{[]string{"config", "check", "-c", cfg, "other.yaml"}, exitUsage, "two configuration files"},
		{[]string{"config", "check", cfg, "other.yaml"}, exitUsage, "unexpected argument"},
		{[]string{"config", "check", filepath.Join(dir, "missing.yaml")}, exitFinding, "no such file"},
		{[]string{"serve", filepath.Join(dir, "missing.yaml")}, exitFinding, "no such file"},
		{[]string{"serve", cfg}, exitFinding, cfg + ":2: relay.hostname"},
	}
	for _, tt := range tests {
		out, errOut, code := runSekisho(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || strings.Contains(out+errOut, "quickstart") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

func TestPasswd(t *testing.T) {
	out, errOut, code := runSekisho(t, "s3cret\n", "passwd")
	if code != exitOK || !strings.HasPrefix(out, "{SHA512-CRYPT}$6$rounds=") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The hash works as an account secret: config check takes it
	// without a warning.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("accounts:\n  domains: [{name: a.example.lg.jp}]\n  accounts:\n    - address: x@a.example.lg.jp\n      secret: \""+strings.TrimSpace(out)+"\"\n"), 0o644)
	if _, errOut, _ := runSekisho(t, "", "config", "check", cfg); strings.Contains(errOut, "secret") {
		t.Errorf("the passwd hash is not a usable secret: %s", errOut)
	}
	for _, in := range []string{"", "\n"} {
		if _, _, code := runSekisho(t, in, "passwd"); code != exitFinding {
			t.Errorf("password %q: exit %d, want 1", in, code)
		}
	}
	if _, _, code := runSekisho(t, "x\n", "passwd", "secret-on-the-command-line"); code != exitUsage {
		t.Errorf("a password argument: exit %d, want 2", code)
	}
}

// Every reference between sections is checked: the rewrite set of a route
// and of the smart host, the routes sanitize names, the DKIM key files,
// the mailboxes archive copies and postmaster mail go to.
func TestConfigCheckReferences(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "refs.yaml")
	os.WriteFile(cfg, []byte(`accounts:
  domains: [{name: city.example.lg.jp}]
  accounts:
    - address: tanaka@city.example.lg.jp
rewrite:
  sets:
    - name: to-internet
      rules:
        - name: regional
          domain: city.example.lg.jp
          replace: city.example.jp
          source: [inner]
routing:
  routes:
    - name: inner
      domain: city.example.lg.jp
      targets: ["192.168.0.103:25"]
      tls: none
      rewrite: to-inner
  smart_host:
    targets: [mx]
    rewrite: to-internt
relay:
  hostname: gw.city.example.lg.jp
  postmaster: admin@city.example.lg.jp
  archive:
    - direction: all
      address: archive@city.example.lg.jp
  guard:
    inner_networks: [192.168.0.103/32]
  sanitize:
    rules:
      - routes: [inner-srv]
        source: internet
  inspect:
    dkim_sign:
      keys:
        - domain: city.example.jp
          selector: s1
          key_file: missing.pem
`), 0o644)
	_, errOut, code := runSekisho(t, "", "config", "check", cfg)
	if code != exitFinding {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		cfg + `:19: routing.routes[0].rewrite: route "inner" names rewrite set "to-inner", which rewrite.sets does not define`,
		cfg + `:22: routing.smart_host.rewrite: the smart host names rewrite set "to-internt", which rewrite.sets does not define`,
		cfg + `:25: relay.postmaster: admin@city.example.lg.jp is in our domain city.example.lg.jp but no account or alias of accounts`,
		cfg + `:28: relay.archive[0].address: archive@city.example.lg.jp is in our domain city.example.lg.jp but no account or alias of accounts`,
		cfg + `:33: relay.sanitize.rules[0].routes[0]: "inner-srv" is not a route`,
		cfg + `:40: relay.inspect.dkim_sign.keys[0].key_file: open ` + filepath.Join(dir, "missing.pem") + `: no such file or directory`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in\n%s", want, errOut)
		}
	}
}

// The shipped configurations pass config check --strict: no problem and
// no warning (configs/municipal-gateway.yaml's regional domain is the LG
// domain's twin, routed with it).
func TestShippedConfigsStrict(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("configs: %v %v", files, err)
	}
	for _, f := range files {
		out, errOut, code := runSekisho(t, "", "config", "check", "--strict", f)
		if code != exitOK || errOut != "" {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
}
