package conformance

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logsConfig writes E-Post's per-kind logs as files in the epost layout,
// and allows relay by the listener a connection arrived on (the SBS 2003
// article's method 3: relay from the inside interface only).
const logsConfig = `
accounts:
  domains:
    - name: test.jp
      mode: mirror
  accounts:
    - address: bucho@test.jp
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  smart_host:
    targets: ["{{sink "internet"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - name: outside
      address: "{{listen "outside"}}"
      mode: mx
    - name: inside
      address: "{{listen "inside"}}"
      mode: mx
  guard:
    rules:
      - name: inside-interface
        action: allow
        listeners: [inside]
  queue:
    dir: "{{path "queue"}}"
  log:
    format: text
    level: info
    outputs:
      - kinds: [accept]
        file: "{{path "acceptlog"}}"
        level: debug
      - kinds: [receive, reject]
        file: "{{path "receivelog"}}"
      - kinds: [send]
        file: "{{path "senderlog"}}"
      - kinds: [fail]
        file: "{{path "faillog"}}"
{{delivery}}
`

// A message to an account and a relay attempt on the outside listener, a
// relayed message on the inside one: each kind lands in its own file in
// the epost layout, nothing of those kinds in the main stream, and after
// a rename and SIGUSR1 the next lines go to a new file.
func TestLogs_PerKindFilesInEpostLayoutReopenedOnSIGUSR1(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(logsConfig)

	w.dialogueFile(t, "logs-outside-and-inside", nil)
	g.waitQueueEmpty(t)

	read := func(name string) []string {
		b, err := os.ReadFile(w.path(name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	// find returns the lines whose tab-separated columns start with the
	// given ones (after the time stamp).
	find := func(lines []string, cols ...string) int {
		n := 0
		for _, l := range lines {
			f := strings.Split(l, "\t")
			if len(f) < len(cols)+1 {
				continue
			}
			if _, err := time.ParseInLocation("2006/01/02 15:04:05", f[0], time.Local); err != nil {
				t.Errorf("line without an epost time stamp: %q", l)
				continue
			}
			ok := true
			for i, c := range cols {
				if c != "*" && f[i+1] != c {
					ok = false
				}
			}
			if ok {
				n++
			}
		}
		return n
	}
	receive := read("receivelog")
	// receive: client session id helo auth orig_from from orig_rcpts rcpts
	if find(receive, internetIP, "*", "*", "client.example.org", "-", "friend@example.org", "friend@example.org", "bucho@test.jp", "bucho@test.jp") != 1 {
		t.Errorf("receivelog lacks the accepted message:\n%s", strings.Join(receive, "\n"))
	}
	if find(receive, internetIP, "*", "*", "pc01.test.jp", "-", "friend@example.org", "friend@example.org", "someone@example.com", "someone@example.com", "*", "*", "inside-interface") != 1 {
		t.Errorf("receivelog lacks the relayed message with its rule:\n%s", strings.Join(receive, "\n"))
	}
	// reject: client session stage code enhanced from arg rule
	if find(receive, internetIP, "*", "rcpt", "554", "5.7.1", "friend@example.org", "someone@example.com", "builtin:relay") != 1 {
		t.Errorf("receivelog lacks the refused relay attempt:\n%s", strings.Join(receive, "\n"))
	}
	sender := read("senderlog")
	// send: id from rcpt hop remote result code
	if find(sender, "*", "friend@example.org", "bucho@test.jp", "*", "*", "delivered", "250") != 1 ||
		find(sender, "*", "friend@example.org", "someone@example.com", "*", "*", "delivered", "250") != 1 {
		t.Errorf("senderlog:\n%s", strings.Join(sender, "\n"))
	}
	// accept: client listener msg (connections are logged at debug)
	if accept := read("acceptlog"); find(accept, internetIP) < 2 {
		t.Errorf("acceptlog:\n%s", strings.Join(accept, "\n"))
	}
	if fail, err := os.ReadFile(w.path("faillog")); err != nil || len(fail) != 0 {
		t.Errorf("faillog: %q %v", fail, err)
	}
	for _, kind := range []string{"kind=receive", "kind=reject", "kind=send", "kind=accept"} {
		if strings.Contains(g.logs.String(), kind) {
			t.Errorf("%s reached the main stream", kind)
		}
	}

	// logrotate: move the file aside, SIGUSR1, the next message goes to a
	// new receivelog.
	if err := os.Rename(w.path("receivelog"), w.path("receivelog.1")); err != nil {
		t.Fatal(err)
	}
	g.signal(t, syscall.SIGUSR1)
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, err := os.Stat(w.path("receivelog")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not reopen receivelog")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.dialogueFile(t, "logs-after-rotation", nil)
	g.waitQueueEmpty(t)
	if after := read("receivelog"); len(after) != 1 || find(after, internetIP, "*", "*", "after.example.org") != 1 {
		t.Errorf("the new receivelog:\n%s", strings.Join(after, "\n"))
	}
	if old := read("receivelog.1"); len(old) != 3 {
		t.Errorf("the rotated receivelog has %d lines:\n%s", len(old), strings.Join(old, "\n"))
	}
}
