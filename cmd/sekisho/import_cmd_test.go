package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/routing/dnstest"
)

func TestImportGatewayDat(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "routing", "testdata", "gateway.dat"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "gateway.dat")
	writeConfig(t, file, string(data))
	out, errOut, code := runSekisho(t, "", "import", "gateway-dat", file)
	if code != exitFinding {
		t.Errorf("unconvertible lines: exit %d, want %d", code, exitFinding)
	}
	assertGolden(t, "import/gateway-dat.yaml", dir, out)
	assertGolden(t, "import/gateway-dat.stderr", dir, errOut)
}

// The seeds' own example converts cleanly, and the result is a working
// configuration: test.jp to the inner server at 20025, the rest by MX.
func TestImportGatewayDatThenRouteTest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.dat")
	writeConfig(t, file, ";\n; 対象ドメイン, ゲートウェイ先 (FQDN or IP), 接続ポート番号\n;\ntest.jp, 192.168.0.100, 20025\n*.lg.jp, lgwan-relay.example.lg.jp\n")
	out, errOut, code := runSekisho(t, "", "import", "gateway-dat", file)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dns := dnstest.New(t)
	dns.A("lgwan-relay.example.lg.jp", "10.1.0.25")
	dns.MX("example.com", 10, "mx.example.com")
	dns.A("mx.example.com", "192.0.2.1")
	cfg := filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfg, out+"  dns:\n    servers: [\""+dns.Addr+"\"]\n")
	if _, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg); code != exitOK {
		t.Fatalf("config check: %s", errOut)
	}
	res, errOut, code := runSekisho(t, "", "route", "test", "-c", cfg, "a@test.jp", "b@pref.aichi.lg.jp", "c@example.com")
	if code != exitOK {
		t.Fatalf("route test: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"1. 192.168.0.100:20025  192.168.0.100",
		"1. lgwan-relay.example.lg.jp:25  10.1.0.25",
		"1. mx.example.com:25  pref 10  192.0.2.1",
	} {
		if !strings.Contains(res, want) {
			t.Errorf("route test output lacks %q:\n%s", want, res)
		}
	}
}

func TestImportGatewayDatUsage(t *testing.T) {
	if _, _, code := runSekisho(t, "", "import", "gateway-dat"); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
	_, errOut, code := runSekisho(t, "", "import", "gateway-dat", filepath.Join(t.TempDir(), "missing.dat"))
	if code != exitFinding || !strings.Contains(errOut, "missing.dat") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}
