package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// routeWorld is the seeds' applied example against a fake DNS: the inner
// server on port 20025 for the municipality's domains, a LGWAN relay for
// *.lg.jp, DNS MX for everything else. This gateway is
// gw.city.example.lg.jp at 192.0.2.25.
const routeWorldConfig = `
rewrite:
  sets:
    - name: lg-to-regional
      rules:
        - name: back-to-regional
          domain: city.example.lg.jp
          replace: city.example.jp
          source: [inner, authenticated, internet]
routing:
  self:
    hostnames: [gw.city.example.lg.jp]
    addrs: ["192.0.2.25:25"]
  dns:
    servers: ["$DNS"]
    timeout: 2s
    attempts: 1
  routes:
    - name: inner
      domain: city.example.lg.jp
      targets: ["192.168.0.103:20025"]
      tls: none
    - name: inner-regional
      domain: city.example.jp
      targets: ["192.168.0.103:20025"]
      tls: none
    - name: lgwan
      domain: "*.lg.jp"
      targets: [lgwan-relay.example.lg.jp, lgwan-relay2.example.lg.jp]
      rewrite: lg-to-regional
      max_connections: 4
    - name: capture
      address: audit@city.example.lg.jp
      targets: dir:capture
`

func routeWorld(t *testing.T) (dir, cfg string, dns *dnstest.Server) {
	t.Helper()
	dns = dnstest.New(t)
	dns.A("lgwan-relay.example.lg.jp", "10.1.0.25")
	dns.A("lgwan-relay2.example.lg.jp", "10.1.0.26")
	dns.MX("example.com", 10, "mx1.example.com")
	dns.MX("example.com", 20, "mx2.example.com")
	dns.A("mx1.example.com", "192.0.2.1")
	dns.AAAA("mx1.example.com", "2001:db8::1")
	dns.A("mx2.example.com", "192.0.2.2")
	dns.A("a-only.example", "192.0.2.3")
	dns.NullMX("nomail.example")
	dns.ServFail("broken.example")
	dns.MX("loop.example", 10, "gw.city.example.lg.jp")
	dir = t.TempDir()
	cfg = filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfg, strings.ReplaceAll(routeWorldConfig, "$DNS", dns.Addr))
	return dir, cfg, dns
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRouteTestSeedsExample is the "done when": the inner server on
// port 20025, the LGWAN relay for *.lg.jp, MX for the rest.
func TestRouteTestSeedsExample(t *testing.T) {
	dir, cfg, dns := routeWorld(t)
	out, errOut, code := runSekisho(t, "", "route", "test", "-c", cfg,
		"tanaka@city.example.lg.jp", "suzuki@city.example.jp", "kikaku@pref.aichi.lg.jp", "user@example.com", "user@a-only.example",
		"audit@city.example.lg.jp")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	assertGolden(t, "route/seeds.txt", dir, strings.ReplaceAll(out, dns.Addr, "$DNS"))
}

func TestRouteTestJSON(t *testing.T) {
	dir, cfg, dns := routeWorld(t)
	out, errOut, code := runSekisho(t, "", "route", "test", "-c", cfg, "--json",
		"tanaka@city.example.lg.jp", "kikaku@pref.aichi.lg.jp", "user@example.com",
		"user@nowhere.example", "user@nomail.example", "user@broken.example", "user@loop.example", "not-an-address")
	if code != exitFinding || errOut != "" {
		t.Errorf("exit %d (want %d for the unroutable addresses), stderr %q", code, exitFinding, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if len(list) != 8 {
		t.Fatalf("%d results, want 8", len(list))
	}
	for _, r := range list {
		for _, key := range []string{"address", "rule", "hops", "error"} {
			if _, ok := r[key]; !ok {
				t.Errorf("%v: no %q", r["address"], key)
			}
		}
	}
	assertGolden(t, "route/errors.json", dir, strings.ReplaceAll(out, dns.Addr, "$DNS"))
}

func TestRouteTestNoDNS(t *testing.T) {
	dir, cfg, dns := routeWorld(t)
	out, _, code := runSekisho(t, "", "route", "test", "-c", cfg, "--no-dns",
		"tanaka@city.example.lg.jp", "kikaku@pref.aichi.lg.jp", "user@example.com")
	if code != exitOK {
		t.Errorf("exit %d", code)
	}
	if n := len(dns.Queries()); n != 0 {
		t.Errorf("--no-dns asked DNS %d times", n)
	}
	assertGolden(t, "route/no-dns.txt", dir, out)
}

func TestRouteTestSender(t *testing.T) {
	dir, cfg, dns := routeWorld(t)
	text := strings.ReplaceAll(routeWorldConfig, "$DNS", dns.Addr) + `
    - name: m365
      domain: "*"
      sender: "*.m365.example.jp"
      targets: ["smtp.m365.example.jp:587"]
      tls: required
      tls_server_name: smtp.office365.example.jp
      auth:
        mechanism: login
        username: gw@m365.example.jp
        password_env: TEST_M365_RELAY_PASSWORD
`
	writeConfig(t, cfg, text)
	dns.A("smtp.m365.example.jp", "192.0.2.87")
	t.Setenv("TEST_M365_RELAY_PASSWORD", "do-not-print-me")
	out, errOut, code := runSekisho(t, "", "route", "test", "-c", cfg, "--from", "soumu@x.m365.example.jp", "user@example.com", "tanaka@city.example.lg.jp")
	if code != exitOK {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "do-not-print-me") {
		t.Fatal("the AUTH password was printed")
	}
	assertGolden(t, "route/sender.txt", dir, out)
}

// A route back to this gateway is refused when the configuration loads,
// before any address is looked at.
func TestRouteTestRefusesSelfRoute(t *testing.T) {
	dir, cfg, dns := routeWorld(t)
	text := strings.ReplaceAll(routeWorldConfig, "$DNS", dns.Addr)
	text = strings.Replace(text, `targets: ["192.168.0.103:20025"]
      tls: none
    - name: inner-regional`, `targets: ["192.0.2.25"]
      tls: none
    - name: inner-regional`, 1)
	text = strings.Replace(text, "targets: [lgwan-relay.example.lg.jp, lgwan-relay2.example.lg.jp]", "targets: [lgwan-relay.example.lg.jp, gw.city.example.lg.jp]", 1)
	writeConfig(t, cfg, text)
	out, errOut, code := runSekisho(t, "", "route", "test", "-c", cfg, "tanaka@city.example.lg.jp")
	if code != exitFinding || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	assertGolden(t, "route/self-route.txt", dir, errOut)
}

func TestRouteTestUsage(t *testing.T) {
	_, errOut, code := runSekisho(t, "", "route", "test")
	if code != exitUsage || !strings.Contains(errOut, "give at least one ADDRESS") {
		t.Errorf("no address: exit %d, %q", code, errOut)
	}
	out, _, code := runSekisho(t, "", "route", "test", "--help")
	if code != exitOK || !strings.Contains(out, "usage: sekisho route test") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}
