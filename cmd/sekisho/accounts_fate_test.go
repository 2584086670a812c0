package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// accounts check, route test and relay test tell what the gateway does:
// an alias whose target a rewrite sends outside is refused from the
// internet and goes to the smart host from inside; a quoted local part is
// the account.
func TestDryRunsFollowAliasAndRewrite(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`accounts:
  domains: [{name: test.jp}]
  accounts:
    - address: user1@test.jp
    - address: helpdesk@test.jp
    - address: baito@test.jp
      outbound_blocked: true
  aliases:
    - alias: info@test.jp
      target: helpdesk@test.jp
rewrite:
  rules:
    - name: outsourced
      address: helpdesk@test.jp
      replace: helpdesk@partner.example
      classes: [envelope_recipient]
      source: [inner, authenticated, internet]
routing:
  routes:
    - name: inner
      domain: test.jp
      targets: ["192.168.0.103:25"]
  smart_host:
    targets: ["198.51.100.1:25"]
relay:
  hostname: gw.test.jp
  guard:
    inner_networks: [192.168.0.0/24]
`), 0o644)
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"accounts", "check", "-c", cfg, "info@test.jp", "user1@test.jp", "baito@test.jp"}, exitOK,
			[]string{"as recipient: rejected from the internet: 554 5.7.1", "rewritten to helpdesk@partner.example", "as recipient: accepted, delivered to inner 192.168.0.103:25",
				"as sender:    from the internet: refused 553 5.7.1 (builtin:spoof); from the inner networks to the internet: accepted",
				"from the inner networks to the internet: refused 550 5.7.1 (builtin:outbound-blocked)"}},
		{[]string{"route", "test", "-c", cfg, "--no-dns", "--client", "192.168.0.5", "info@test.jp"}, exitOK,
			[]string{"alias:    helpdesk@test.jp", "rewrite:  helpdesk@partner.example (on receipt)", "smart_host"}},
		{[]string{"relay", "test", "-c", cfg, "--client", "203.0.113.5", "--from", "a@example.org", "--rcpt", "info@test.jp"}, exitFinding,
			[]string{"rcpt    info@test.jp", "554 5.7.1"}},
		{[]string{"relay", "test", "-c", cfg, "--client", "203.0.113.5", "--from", "a@example.org", "--rcpt", `"user1"@test.jp`}, exitOK,
			[]string{"rcpt    user1@test.jp", "accept   250 2.1.5", "next hop inner 192.168.0.103:25"}},
		{[]string{"rewrite", "test", "-c", cfg, "--client", "203.0.113.5", "--from", "a@example.org", "--rcpt", "info@test.jp"}, exitOK,
			[]string{"relay policy (source internet)", "rcpt  info@test.jp: reject 554 5.7.1"}},
	}
	for _, tt := range tests {
		out, errOut, code := runSekisho(t, "", tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, code, tt.code, out, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s%s", tt.args, w, out, errOut)
			}
		}
	}
}
