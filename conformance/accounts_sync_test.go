package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// municipalExample returns configs/municipal-gateway.yaml, the example a
// new user starts from, with only what a test must change: the peers become
// sinks on loopback, the inner server's address the test's, the DNS the
// fake one, the spool and metrics the scenario's, and accounts.directory
// set as README.ja's sync steps say. Every replacement must apply, so a
// change to the example that this scenario no longer covers fails here.
func municipalExample(t *testing.T, w *world) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "municipal-gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join("..", "configs", "lgwan-domains.example.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	w.writeFile("lgwan-domains.example.tsv", string(table))
	cfg := string(b)
	for _, r := range [][2]string{
		{"  # directory: /var/lib/sekisho/accounts.tsv", `  directory: "{{path "accounts.tsv"}}"`},
		{`targets: ["192.168.0.103:20025"]`, `targets: ["{{sink "inner"}}"]`},
		{`targets: ["lgwan-relay.pref.aichi.lg.jp:25"]`, `targets: ["{{sink "lgwan"}}"]`},
		{"    targets: [mx]\n", "    targets: [\"{{sink \"internet\"}}\"]\n    tls: none\n"},
		{"\n  self:\n", "\n  dns:\n    servers: [\"{{dns}}\"]\n  self:\n"},
		{"    - address: 0.0.0.0:25\n", "    - address: \"{{listen \"mx\"}}\"\n"},
		{"inner_networks: [192.168.0.103/32]", "inner_networks: [" + innerIP + "/32]"},
		{"    dir: /var/spool/sekisho", `    dir: "{{path "queue"}}"`},
		{"    address: 127.0.0.1:9225", "    address: " + freePort(t)},
		{"    retry_interval: 2m", "    retry_interval: 1s"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("configs/municipal-gateway.yaml no longer contains %q: update this scenario", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	return cfg
}

// Issue 14: the inner server exports its accounts under the regional
// domain. With the shipped municipal example (the "*@regional -> *@lg"
// alias makes the two domains twins) and `accounts sync` as README.ja says,
// every synced account is reachable at its LG and at its regional address,
// from the internet and from the inner server, and arrives at the inner
// server under the LG domain its route names.
func TestAccountsSync_RegionalExportReachableAtBothAddresses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfgPath := w.configure(municipalExample(t, w))

	var export strings.Builder
	export.WriteString("メールアドレス\t氏名\n")
	var users []string
	for i := 1; i <= 12; i++ {
		u := fmt.Sprintf("user%04d", i)
		users = append(users, u)
		fmt.Fprintf(&export, "%s@city.toyokawa.aichi.jp\t職員 %d\n", u, i)
	}
	w.writeFile("export.tsv", export.String())
	out, err := sekisho(context.Background(), "accounts", "sync", "-c", cfgPath, "--from", w.path("export.tsv")).CombinedOutput()
	if err != nil {
		t.Fatalf("accounts sync: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "city.toyokawa.aichi.jp: accounts 12") || !strings.Contains(string(out), "(created)") {
		t.Errorf("accounts sync output:\n%s", out)
	}
	g := w.newGateway(cfgPath)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}

	// One message from each side, to every account at both addresses.
	for _, from := range []struct{ client, sender string }{
		{"internet", "partner@example.com"},
		{"inner", "tanaka@city.toyokawa.lg.jp"},
	} {
		var script strings.Builder
		fmt.Fprintf(&script, "connect mx from %s\nS: 220\nC: EHLO client.example\nS: 250\nC: MAIL FROM:<%s>\nS: 250\n", from.client, from.sender)
		for _, u := range users {
			fmt.Fprintf(&script, "C: RCPT TO:<%s@city.toyokawa.lg.jp>\nS: 250\nC: RCPT TO:<%s@city.toyokawa.aichi.jp>\nS: 250\n", u, u)
		}
		script.WriteString("C: RCPT TO:<nobody@city.toyokawa.aichi.jp>\nS: 550 5.1.1\n")
		script.WriteString("C: RCPT TO:<nobody@city.toyokawa.lg.jp>\nS: 550 5.1.1\n")
		script.WriteString("C: DATA\nS: 354\n" + message(from.sender, users[0]+"@city.toyokawa.aichi.jp", "from "+from.client) + "S: 250 2.0.0\nC: QUIT\nS: 221\n")
		w.dialogue(t, script.String())
	}
	w.dialogue(t, `
sink inner has 2 messages
sink lgwan has nothing
sink internet has nothing
`)
	want := make([]string, len(users))
	for i, u := range users {
		want[i] = u + "@city.toyokawa.lg.jp"
	}
	for _, m := range w.sinks["inner"].Messages() {
		got := map[string]bool{}
		for _, rcpt := range m.To {
			got[strings.ToLower(rcpt)] = true
		}
		var list []string
		for r := range got {
			list = append(list, r)
		}
		sort.Strings(list)
		if strings.Join(list, " ") != strings.Join(want, " ") {
			t.Errorf("the inner server got a message from <%s> for %v, want every synced account at its LG address %v", m.From, m.To, want)
		}
	}
}
