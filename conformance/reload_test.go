package conformance

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConfig keeps the accounts in a directory file, as a site that
// syncs them from the inner server's export does.
const reloadConfig = `
accounts:
  directory: "{{path "accounts.tsv"}}"
  domains:
    - name: test.jp
      mode: mirror
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
`

const reloadDirectory = "#sekisho-directory v1\n" +
	"account\tbucho@test.jp\t-\t-\t部長\n" +
	"account\tuser1@test.jp\t-\t-\t-\n"

// Scenario 11: SIGHUP with a changed accounts file (after `sekisho accounts
// sync`) takes effect without dropping an open session; a broken
// configuration or directory file is refused and the old one keeps
// serving.
func TestSeedReload_SIGHUPAppliesNewAccountsKeepsSessionsRefusesBrokenConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeFile("accounts.tsv", reloadDirectory)
	g := w.start(reloadConfig)
	cfg := w.path("config.yaml")

	// A session in the middle of a transaction.
	open := w.newSession()
	defer open.close()
	open.runFile(t, "reload-open-session-start", nil)

	// The inner server's export now lists a new account.
	export := w.writeFile("export.txt", "bucho@test.jp\nuser1@test.jp\nnewuser@test.jp\n")
	sync := sekisho(context.Background(), "accounts", "sync", "-c", cfg, "--from", export, "--format", "list", "--domain", "test.jp")
	var out bytes.Buffer
	sync.Stdout, sync.Stderr = &out, &out
	if err := sync.Run(); err != nil {
		t.Fatalf("sekisho accounts sync: %v\n%s", err, out.String())
	}
	reloaded := g.countLog("configuration reloaded")
	g.signal(t, syscall.SIGHUP)
	waitCount(t, g, reloaded+1, "configuration reloaded")

	w.dialogueFile(t, "reload-new-account", nil)
	// The open session was not dropped and finishes its message.
	open.runFile(t, "reload-open-session-end", nil)

	// A broken configuration is refused; the running one stays.
	good := readFile(cfg)
	broken := strings.Replace(good, "  hostname: gw.test.jp", "  hostname: gw.test.jp\n  hostnme: typo.test.jp", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := g.countLog("reload refused")
	g.signal(t, syscall.SIGHUP)
	waitCount(t, g, refused+1, "reload refused")
	if !strings.Contains(g.logs.String(), "hostnme") {
		t.Errorf("the refusal does not name the bad key relay.hostnme")
	}

	// So is a broken directory file (a line with three fields).
	if err := os.WriteFile(cfg, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	w.writeFile("accounts.tsv", reloadDirectory+"account\tbroken-line\n")
	g.signal(t, syscall.SIGHUP)
	waitCount(t, g, refused+2, "reload refused")

	if !g.running() {
		t.Fatalf("the gateway exited after a refused reload")
	}
	w.dialogueFile(t, "reload-still-serving", nil)
}

// waitCount waits until the gateway's output has n lines containing s.
func waitCount(t *testing.T, g *gateway, n int, s string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for g.countLog(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not log %q (want %d such lines) within %v", s, n, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
