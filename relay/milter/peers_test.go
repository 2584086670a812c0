package milter

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real content filters from Debian's packages as
// ordinary processes on loopback, with configurations and (for ClamAV) a
// signature database written here; nothing is downloaded. Each is skipped
// only when its binary is absent.

// eicar is the EICAR anti-virus test file, assembled at run time so this
// source file does not itself trip a scanner.
var eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"

// gtube is the generic test for unsolicited bulk email.
var gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s is not installed (Debian package: %s): %v", b, pkgOf(b), err)
		}
	}
}

func pkgOf(bin string) string {
	switch filepath.Base(bin) {
	case "clamd":
		return "clamav-daemon"
	case "clamav-milter":
		return "clamav-milter"
	}
	return filepath.Base(bin)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs a daemon in the foreground and stops it when the test ends
// or when the returned function is called; its output goes to a file
// shown when the test fails.
func start(t *testing.T, dir, name string, args ...string) (stop func()) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, filepath.Base(name)+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// The whole process group (rspamd forks its workers), killed:
			// clamav-milter takes 6 s and clamd 2 s to stop on SIGTERM, and a
			// crash is what the failure tests want anyway.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(out.Name())
				t.Logf("%s output:\n%s", name, b)
			}
			out.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitDial polls until network/addr accepts connections.
func waitDial(t *testing.T, network, addr string, what string) time.Duration {
	t.Helper()
	begin := time.Now()
	for time.Since(begin) < 60*time.Second {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
			return time.Since(begin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within 60s", what, addr)
	return 0
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startClamAV starts clamd with a one-line hash database for EICAR and
// clamav-milter in front of it; it returns the milter's address.
func startClamAV(t *testing.T) (addr string, stopMilter func()) {
	need(t, "/usr/sbin/clamd", "/usr/sbin/clamav-milter")
	dir := t.TempDir()
	begin := time.Now()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	// .hdb: MD5:SIZE:NAME of the whole file.
	writeFile(t, filepath.Join(db, "sekisho-test.hdb"), "44d88612fea8a8f36de82e1278abb02f:68:Sekisho-Test-EICAR\n")
	sock := filepath.Join(dir, "clamd.sock")
	writeFile(t, filepath.Join(dir, "clamd.conf"), fmt.Sprintf(`Foreground yes
DatabaseDirectory %s
LocalSocket %s
TemporaryDirectory %s
LogFile %s/clamd.log
SelfCheck 0
`, db, sock, dir, dir))
	start(t, dir, "/usr/sbin/clamd", "-c", filepath.Join(dir, "clamd.conf"))
	waitDial(t, "unix", sock, "clamd")
	addr = freePort(t)
	host, port, _ := net.SplitHostPort(addr)
	writeFile(t, filepath.Join(dir, "clamav-milter.conf"), fmt.Sprintf(`Foreground yes
MilterSocket inet:%s@%s
ClamdSocket unix:%s
TemporaryDirectory %s
LogFile %s/clamav-milter.log
OnInfected Reject
OnFail Defer
AddHeader Replace
RejectMsg Virus found: %%v
`, port, host, sock, dir, dir))
	stopMilter = start(t, dir, "/usr/sbin/clamav-milter", "-c", filepath.Join(dir, "clamav-milter.conf"))
	waitDial(t, "tcp", addr, "clamav-milter")
	t.Logf("clamd and clamav-milter ready in %v", time.Since(begin).Round(time.Millisecond))
	return "inet:" + addr, stopMilter
}

// startRspamd starts rspamd's proxy worker in milter mode, scanning by
// itself, with every network lookup pointed at a closed port.
func startRspamd(t *testing.T) string {
	need(t, "/usr/bin/rspamd")
	dir := t.TempDir()
	begin := time.Now()
	addr := freePort(t)
	writeFile(t, filepath.Join(dir, "rspamd.conf"), fmt.Sprintf(`options {
  pidfile = "%[1]s/rspamd.pid";
  dbdir = "%[1]s";
  filters = "";
  local_addrs = [];
  disable_hyperscan = true;
  enable_test_patterns = true;
  dns { nameserver = ["127.0.0.1:9"]; timeout = 0.1s; retransmits = 0; }
}
logging { type = "file"; filename = "%[1]s/rspamd.log"; level = "notice"; }
lua = "$RULESDIR/rspamd.lua";
modules { path = "$PLUGINSDIR"; }
actions { reject = 15; add_header = 6; }
milter_headers { use = ["x-spamd-result", "x-spam-status"]; skip_local = false; skip_authenticated = false; }
worker "rspamd_proxy" {
  bind_socket = "%[2]s";
  milter = yes;
  timeout = 10s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
`, dir, addr))
	start(t, dir, "/usr/bin/rspamd", "-f", "-i", "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=DBDIR="+dir, "--var=RUNDIR="+dir, "--var=LOGDIR="+dir)
	waitDial(t, "tcp", addr, "rspamd")
	t.Logf("rspamd ready in %v", time.Since(begin).Round(time.Millisecond))
	return "inet:" + addr
}

func message(body string, attach []byte) (hdr, b []byte) {
	h := "From: alice@example.com\r\nTo: bob@city.lg.jp\r\nSubject: test\r\nMessage-ID: <t1@example.com>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
	if attach == nil {
		return []byte(h + "Content-Type: text/plain; charset=us-ascii\r\n"), []byte(body)
	}
	enc := base64.StdEncoding.EncodeToString(attach)
	return []byte(h + "Content-Type: multipart/mixed; boundary=b1\r\n"), []byte("--b1\r\nContent-Type: text/plain\r\n\r\n" + body +
		"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=test.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		enc + "\r\n--b1--\r\n")
}

func txnOf(hdr, body []byte) Transaction {
	t := testTxn()
	t.Header, t.Body = hdr, bytes.NewReader(body)
	return t
}

func TestClamAVMilter(t *testing.T) {
	addr, _ := startClamAV(t)
	c := New("gw.city.lg.jp", []Config{{Name: "clamav", Address: addr, Timeout: 10 * time.Second}})
	ctx := context.Background()

	hdr, body := message("Please see the attachment.\r\n", []byte(eicar))
	begin := time.Now()
	r := c.Check(ctx, txnOf(hdr, body))
	t.Logf("EICAR checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Reject || r.Reply.Code/100 != 5 || !strings.Contains(r.Reply.Text, "Sekisho-Test-EICAR") {
		t.Errorf("EICAR: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}

	hdr, body = message("A clean letter.\r\n", []byte("just some bytes\n"))
	begin = time.Now()
	r = c.Check(ctx, txnOf(hdr, body))
	t.Logf("clean message checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Accept || len(r.Failed) > 0 {
		t.Fatalf("clean: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
	out := string(ApplyEdits(hdr, r.Edits))
	if !strings.Contains(out, "X-Virus-Status: Clean") {
		t.Errorf("clean message header after edits:\n%s", out)
	}
}

func TestRspamdMilter(t *testing.T) {
	c := New("gw.city.lg.jp", []Config{{Name: "rspamd", Address: startRspamd(t), Timeout: 10 * time.Second}})
	ctx := context.Background()

	hdr, body := message("A clean letter about the budget meeting on Monday.\r\n", nil)
	begin := time.Now()
	r := c.Check(ctx, txnOf(hdr, body))
	t.Logf("clean message checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Accept || len(r.Failed) > 0 {
		t.Fatalf("clean: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
	out := string(ApplyEdits(hdr, r.Edits))
	if !strings.Contains(out, "X-Spamd-Result: default: False") {
		t.Errorf("no rspamd verdict header after edits %+v:\n%s", r.Edits, out)
	}

	hdr, body = message("Buy now.\r\n"+gtube+"\r\n", nil)
	r = c.Check(ctx, txnOf(hdr, body))
	if r.Action != Reject || r.Reply.Code/100 != 5 {
		t.Errorf("GTUBE: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
}

// A milter that dies between two messages: the next message is answered
// 451 (tempfail policy) or passes (accept policy), never lost or hung.
func TestClamAVMilterDies(t *testing.T) {
	addr, stop := startClamAV(t)
	hdr, body := message("hello\r\n", nil)
	if r := New("gw", []Config{{Name: "clamav", Address: addr}}).Check(context.Background(), txnOf(hdr, body)); r.Action != Accept {
		t.Fatalf("before the milter stops: %+v", r)
	}
	stop()
	for _, tc := range []struct {
		policy string
		want   Action
	}{{OnFailureTempfail, TempFail}, {OnFailureAccept, Accept}} {
		r := New("gw", []Config{{Name: "clamav", Address: addr, OnFailure: tc.policy, Timeout: time.Second}}).Check(context.Background(), txnOf(hdr, body))
		if r.Action != tc.want || len(r.Failed) != 1 {
			t.Errorf("%s: got %v %+v %v", tc.policy, r.Action, r.Reply, r.Failed)
		}
	}
}
