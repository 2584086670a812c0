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
	open, err := dialFrom(internetIP, w.port("mx"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer open.conn.Close()
	step := func(send, want string) {
		t.Helper()
		if send != "" {
			open.send(send + "\r\n")
		}
		r, err := open.readReply()
		if err != nil {
			t.Fatalf("open session: %s: %v\n%s", send, err, open.log)
		}
		spec, _ := parseReplySpec(want)
		if err := spec.check(r); err != nil {
			t.Fatalf("open session: %s: %v; got %q\n%s", send, err, r, open.log)
		}
	}
	step("", "220")
	step("EHLO long-session.example.org", "250")
	step("MAIL FROM:<friend@example.org>", "250")
	step("RCPT TO:<bucho@test.jp>", "250")
	step("RCPT TO:<newuser@test.jp>", "550 5.1.1")

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

	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO after-reload.example.org
S: 250
C: MAIL FROM:<friend@example.org>
S: 250
C: RCPT TO:<newuser@test.jp>
S: 250
C: QUIT
S: 221
`)
	// The open session was not dropped and finishes its message.
	step("RCPT TO:<user1@test.jp>", "250")
	step("DATA", "354")
	open.send("From: <friend@example.org>\r\nSubject: across the reload\r\n\r\nhello\r\n.\r\n")
	step("", "250 2.0.0")
	step("QUIT", "221")
	w.dialogue(t, `
sink inner has 1 message for bucho@test.jp
sink inner has 1 message for user1@test.jp
sink inner has 1 message
`)

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
	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO still-serving.example.org
S: 250
C: MAIL FROM:<friend@example.org>
S: 250
C: RCPT TO:<newuser@test.jp>
S: 250
C: DATA
S: 354
`+message("friend@example.org", "newuser@test.jp", "after the refused reloads")+`
S: 250 2.0.0
C: QUIT
S: 221
sink inner has 1 message for newuser@test.jp
`)
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
