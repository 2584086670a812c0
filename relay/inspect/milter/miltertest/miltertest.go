// Package miltertest runs the real content filters from Debian's packages (clamd with clamav-milter, rspamd) as ordinary processes on loopback for tests, with configurations and a ClamAV signature database written here; nothing is downloaded.
package miltertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// Each starter skips the test, with the Debian package to install, only
// when its binary is absent. The milters listen on unix sockets in the
// test's own folder, never on a TCP port chosen beforehand, which another
// test's daemon could take in between; and a starter returns once the
// milter answers a negotiation, not merely once its socket accepts (rspamd
// binds its socket long before its worker has loaded the rules).

// EICAR is the EICAR anti-virus test file, assembled at run time so this
// source file does not itself trip a scanner.
var EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"

// GTUBE is the generic test for unsolicited bulk email.
var GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

func need(t testing.TB, bins ...string) {
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

// start runs a daemon in the foreground and stops it when the test ends
// or when the returned function is called; its output goes to a file
// shown when the test fails.
func start(t testing.TB, dir, name string, args ...string) (stop func()) {
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
func waitDial(t testing.TB, network, addr string, what string) time.Duration {
	t.Helper()
	begin := time.Now()
	for time.Since(begin) < startWait {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
			return time.Since(begin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within %v", what, addr, startWait)
	return 0
}

// startWait bounds a daemon's start: generous, for a machine busy with
// other tests (rspamd compiles its rules at start).
const startWait = 2 * time.Minute

// waitMilter polls until the milter at the unix socket path answers an
// option negotiation.
func waitMilter(t testing.TB, path, what string) {
	t.Helper()
	begin := time.Now()
	var err error
	for time.Since(begin) < startWait {
		cl := gomilter.NewClientWithOptions("unix", path, gomilter.ClientOptions{
			Dialer:       &net.Dialer{Timeout: 5 * time.Second},
			ReadTimeout:  10 * time.Second,
			WriteTimeout: 10 * time.Second,
			ActionMask:   gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
			// Every step may be skipped, as the gateway offers: libmilter
			// hangs up on a milter that wants to skip one not offered.
			ProtocolMask: gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom |
				gomilter.OptNoRcptTo | gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH |
				gomilter.OptNoUnknown | gomilter.OptNoData | gomilter.OptSkip | gomilter.OptNoHeaderReply |
				gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
				gomilter.OptNoRcptReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
				gomilter.OptNoEOHReply | gomilter.OptNoBodyReply,
		})
		var s *gomilter.ClientSession
		if s, err = cl.Session(); err == nil {
			s.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer a milter negotiation on %s within %v: %v", what, path, startWait, err)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ClamAV starts clamd with a one-line hash database for EICAR and
// clamav-milter in front of it; it returns the milter's address.
func ClamAV(t testing.TB) (addr string, stopMilter func()) {
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
	msock := filepath.Join(dir, "clamav-milter.sock")
	writeFile(t, filepath.Join(dir, "clamav-milter.conf"), fmt.Sprintf(`Foreground yes
MilterSocket unix:%s
ClamdSocket unix:%s
TemporaryDirectory %s
LogFile %s/clamav-milter.log
OnInfected Reject
OnFail Defer
AddHeader Replace
RejectMsg Virus found: %%v
`, msock, sock, dir, dir))
	stopMilter = start(t, dir, "/usr/sbin/clamav-milter", "-c", filepath.Join(dir, "clamav-milter.conf"))
	waitMilter(t, msock, "clamav-milter")
	t.Logf("clamd and clamav-milter ready in %v", time.Since(begin).Round(time.Millisecond))
	return "unix:" + msock, stopMilter
}

// Rspamd starts rspamd's proxy worker in milter mode, scanning by
// itself, with every network lookup pointed at a closed port.
func Rspamd(t testing.TB) string {
	need(t, "/usr/bin/rspamd")
	dir := t.TempDir()
	begin := time.Now()
	addr := filepath.Join(dir, "rspamd.sock")
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
  bind_socket = "%[2]s mode=0600";
  milter = yes;
  timeout = 10s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
`, dir, addr))
	start(t, dir, "/usr/bin/rspamd", "-f", "-i", "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=DBDIR="+dir, "--var=RUNDIR="+dir, "--var=LOGDIR="+dir)
	waitMilter(t, addr, "rspamd")
	t.Logf("rspamd ready in %v", time.Since(begin).Round(time.Millisecond))
	return "unix:" + addr
}
