package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postfixPeer is a real Postfix started for one test as a separate
// instance (its own main.cf, queue and data folders under a temporary
// folder, smtpd on a loopback port of its own), as
// scripts/bench-vs-postfix.sh starts it; the system's Postfix, if any, is
// not touched.
type postfixPeer struct {
	addr string // 127.0.0.1:port of its smtpd
	dir  string
	etc  string
	log  string // its maillog_file
}

// postfixPaths finds the postfix and postconf commands; they live in
// /usr/sbin, which a test's PATH may lack.
func postfixPaths() (postfix, postconf string, err error) {
	find := func(name string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s is not installed (not in PATH nor in /usr/sbin)", name)
	}
	if postfix, err = find("postfix"); err != nil {
		return
	}
	postconf, err = find("postconf")
	return
}

// postfixInner is what a Postfix started as the inner mail server knows.
type postfixInner struct {
	hostname string // myhostname, its HELO name and the name in its Received fields
	domain   string // the domain of its mailboxes
	// mailboxes are the recipients of domain it accepts; mail for them is
	// relayed to mailstore (a sink's host:port).
	mailboxes []string
	mailstore string
	// relayhost, when set, takes everything else (its users' mail out:
	// the gateway); bindAddr is the address it sends from.
	relayhost, bindAddr string
}

// startPostfix starts Postfix as an inner mail server for the domain
// test.jp: it accepts RCPT only for the given recipients (550 5.1.1 "User
// unknown in relay recipient table" for the others) and relays what it
// accepts to relayTo (a sink's host:port). It skips the test, saying why,
// when Postfix is not installed or the test does not run as root (Postfix's
// master needs root). Postfix is stopped when the test ends; its log is
// shown if the test failed.
func startPostfix(t *testing.T, relayTo string, recipients []string) *postfixPeer {
	t.Helper()
	return startPostfixInner(t, postfixInner{hostname: "inner.test.jp", domain: "test.jp", mailboxes: recipients, mailstore: relayTo})
}

// postfixMissing says why Postfix cannot be the inner server here, or "".
func postfixMissing() string {
	if _, _, err := postfixPaths(); err != nil {
		return fmt.Sprintf("%v; install the postfix package (.ci/run does)", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Sprintf("Postfix's master must run as root and this test runs as uid %d", os.Geteuid())
	}
	return ""
}

// startPostfixInner starts Postfix as the inner server o describes (see
// startPostfix).
func startPostfixInner(t *testing.T, o postfixInner) *postfixPeer {
	t.Helper()
	if why := postfixMissing(); why != "" {
		t.Skipf("Postfix as the inner server: %s", why)
	}
	postfix, postconf, err := postfixPaths()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its folders are mode 0700, and Postfix's daemons run
	// as the postfix user.
	dir, err := os.MkdirTemp("", "sekisho-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // runs after the stop below
	p := &postfixPeer{dir: dir, etc: filepath.Join(dir, "etc"), log: filepath.Join(dir, "postfix.log")}
	spool, data := filepath.Join(dir, "spool"), filepath.Join(dir, "data")
	for _, d := range []string{p.etc, spool, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Skipf("Postfix as the inner server: no postfix user to own its data folder (chown postfix: %v: %s)", err, out)
	}
	// The package's master.cf; Debian keeps a pristine copy too.
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		if master, err = os.ReadFile("/usr/share/postfix/master.cf.dist"); err != nil {
			t.Fatalf("Postfix as the inner server: postfix is installed but has no master.cf: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(p.etc, "master.cf"), master, 0o644); err != nil {
		t.Fatal(err)
	}
	p.addr = freePort(t)
	port := func(addr string) string {
		_, p, _ := strings.Cut(addr, "127.0.0.1:")
		if p == "" {
			t.Fatalf("postfix: %q is not on 127.0.0.1", addr)
		}
		return p
	}
	var rcpts []string
	for _, r := range o.mailboxes {
		rcpts = append(rcpts, r+"=OK")
	}
	var out string
	if o.relayhost != "" {
		out += fmt.Sprintf("# Everything else leaves through the gateway.\nrelayhost = [127.0.0.1]:%s\n", port(o.relayhost))
	}
	if o.bindAddr != "" {
		out += "smtp_bind_address = " + o.bindAddr + "\n"
	}
	mainCF := fmt.Sprintf(`# sekisho conformance: Postfix as the inner mail server of %[7]s.
compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = %[8]s
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# The mailboxes of %[7]s: unknown ones get 550 5.1.1 at RCPT.
relay_domains = %[7]s
relay_recipient_maps = inline:{ %[3]s }
# What Postfix accepts goes on to a sink, so the test sees it.
transport_maps = inline:{ %[7]s=smtp:[127.0.0.1]:%[4]s }
# Header addresses as the clients wrote them (no canonical rewriting), and
# no reverse DNS of loopback clients.
local_header_rewrite_clients =
smtpd_peername_lookup = no
%[9]s
# Postfix's own client folds lines over 998 bytes on the way to the sink;
# the test is about what reached Postfix, so it passes them as they came.
smtp_line_length_limit = 0
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = %[5]s
maillog_file = %[6]s
biff = no
`, spool, data, strings.Join(rcpts, ", "), port(o.mailstore), dir, p.log, o.domain, o.hostname, out)
	if err := os.WriteFile(filepath.Join(p.etc, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	// smtpd on its loopback port instead of *:25; no chroot (the queue is
	// in a temporary folder).
	p.run(t, postconf, "-c", p.etc, "-MX", "smtp/inet")
	p.run(t, postconf, "-c", p.etc, "-M", fmt.Sprintf("%s/inet = %s inet n - n - - smtpd", p.addr, p.addr))
	p.run(t, postconf, "-c", p.etc, "-F", "*/*/chroot = n")
	p.run(t, postfix, "-c", p.etc, "start")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, postfix, "-c", p.etc, "stop").CombinedOutput(); err != nil {
			t.Errorf("postfix -c %s stop: %v\n%s", p.etc, err, out)
		}
		if t.Failed() {
			t.Logf("Postfix log %s:\n%s", p.log, readFile(p.log))
		}
	})
	// Ready once its smtpd greets; the probe's session is logged before
	// the test marks the log (smtpdCommands pairs connects and disconnects).
	deadline := time.Now().Add(startTimeout)
	for {
		err := probe220(p.addr, false)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix's smtpd on %s did not answer 220 within %v: %v; its log:\n%s", p.addr, startTimeout, err, readFile(p.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.smtpdCommands(t, 0)
	return p
}

func (p *postfixPeer) run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s\nPostfix log:\n%s", name, strings.Join(args, " "), err, out, readFile(p.log))
	}
}

// logSize is the length of Postfix's log now: a mark for smtpdCommands.
func (p *postfixPeer) logSize() int { return len(readFile(p.log)) }

// disconnectRE matches smtpd's summary of a session, which counts the
// commands it received: "disconnect from localhost[127.0.0.1] ehlo=1
// mail=1 rcpt=1/2 bdat=3 quit=1 commands=6/7" (accepted/received).
var disconnectRE = regexp.MustCompile(`postfix/smtpd\[\d+\]: disconnect from \S+ (.*)$`)

// smtpdCommands waits until every smtpd session that began after the mark
// has ended and sums the commands their summaries count, by name ("bdat",
// "data", "rcpt"; a count is the number received, so "rcpt=1/2" is 2). It
// also returns the log after the mark, for messages.
func (p *postfixPeer) smtpdCommands(t *testing.T, mark int) (map[string]int, string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		log := readFile(p.log)
		if len(log) < mark {
			t.Fatalf("Postfix's log %s shrank", p.log)
		}
		log = log[mark:]
		connects := strings.Count(log, "]: connect from ")
		var summaries []string
		for _, l := range strings.Split(log, "\n") {
			if m := disconnectRE.FindStringSubmatch(l); m != nil {
				summaries = append(summaries, m[1])
			}
		}
		if connects > 0 && len(summaries) == connects {
			counts := map[string]int{}
			for _, s := range summaries {
				for _, f := range strings.Fields(s) {
					name, v, ok := strings.Cut(f, "=")
					if !ok {
						continue
					}
					if _, received, ok := strings.Cut(v, "/"); ok {
						v = received
					}
					n, err := strconv.Atoi(v)
					if err != nil {
						t.Fatalf("Postfix's session summary %q: %q is not a count", s, f)
					}
					counts[name] += n
				}
			}
			return counts, log
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix's smtpd sessions did not end within %v (%d connects, %d disconnects since the mark):\n%s",
				waitTimeout, connects, len(summaries), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
