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
		{"      dir: /var/lib/sekisho/quarantine", `      dir: "{{path "quarantine"}}"`},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("configs/municipal-gateway.yaml no longer contains %q: update this scenario", r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1]) // both routes to the inner server
	}
	return cfg
}

// Issue 14: the inner server exports its accounts under the regional
// domain. With the shipped municipal example (the "*@regional -> *@lg"
// alias makes the two domains twins) and `accounts sync` as README.ja says,
// every synced account is reachable at its LG and at its regional address,
// from the internet and from the inner server, and arrives at the inner
// server under the LG domain its route names; an outbound block survives an
// export without a flags column, and E-Post's sender.dat adds its
// exception.
func TestAccountsSync_RegionalExportReachableAtBothAddresses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfgPath := w.configure(municipalExample(t, w))

	// The first export carries a flags column: user0003 may not send
	// outside. The next one has none, and comes with user0003's E-Post
	// sender.dat allowing one partner domain.
	var withFlags, noFlags strings.Builder
	withFlags.WriteString("メールアドレス\t氏名\t状態\n")
	noFlags.WriteString("メールアドレス\t氏名\n")
	var users []string
	for i := 1; i <= 12; i++ {
		u := fmt.Sprintf("user%04d", i)
		users = append(users, u)
		state := "有効"
		if i == 3 {
			state = "外部送信禁止"
		}
		fmt.Fprintf(&withFlags, "%s@city.toyokawa.aichi.jp\t職員 %d\t%s\n", u, i, state)
		fmt.Fprintf(&noFlags, "%s@city.toyokawa.aichi.jp\t職員 %d\n", u, i)
	}
	sync := func(want string, from ...string) {
		t.Helper()
		args := []string{"accounts", "sync", "-c", cfgPath}
		for _, f := range from {
			args = append(args, "--from", w.writeFile(f, map[string]string{
				"flags.tsv": withFlags.String(), "noflags.tsv": noFlags.String(),
				"inbox/user0003/sender.dat": "*@partner.example,-1\r\n*,0\r\n",
			}[f]))
		}
		out, err := sekisho(context.Background(), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("accounts sync %v: %v\n%s\nwant %q", from, err, out, want)
		}
	}
	sync("city.toyokawa.aichi.jp: accounts 12, aliases 0 (added 12", "flags.tsv")
	sync("(added 0, removed 0, changed 1)", "noflags.tsv", "inbox/user0003/sender.dat")
	g := w.newGateway(cfgPath)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}

	// One message from each side, to every account at both addresses.
	for _, from := range []struct{ client, sender string }{
		{"internet", "partner@example.com"},
		{"inner", "tanaka@city.toyokawa.lg.jp"},
	} {
		w.dialogueFile(t, "accounts-sync-every-account", map[string]string{"Client": from.client, "Sender": from.sender})
	}
	w.dialogueFile(t, "accounts-sync-delivered-inside", nil)
	// The block survived the export without flags, at both addresses; the
	// sender.dat's partner is the exception.
	w.dialogueFile(t, "accounts-sync-outbound-block", nil)
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
