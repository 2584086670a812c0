package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeSkip lists the command lines of README.md that this test does not
// run, and why: they need root, systemd or the network, or they are this
// test suite itself.
var readmeSkip = []struct{ prefix, why string }{
	{"go test", "the test suite itself (CI runs it)"},
	{"sudo ", "needs root"},
	{"make install", "needs root"},
	{"systemctl ", "needs systemd and root"},
	{"journalctl ", "needs systemd"},
}

// readmeCommands returns the command lines of the ```sh blocks of a
// Markdown file: comments after "  #" removed, "\" continuations joined.
func readmeCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	in, cont := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in:
			continue
		}
		if i := strings.Index(line, "  #"); i >= 0 {
			// The comment goes, but an expected exit status stays (bash
			// reads it as a comment).
			exits := exitsComment.FindString(line[i:])
			line = line[:i]
			if exits != "" {
				line += " " + exits
			}
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		out = append(out, cont+line)
		cont = ""
	}
	return out
}

var (
	listenFlag   = regexp.MustCompile(`--listen\s+(\S+)`)
	exitsComment = regexp.MustCompile(`#\s*exits (\d+)`)
)

// TestReadmeCommands runs the README's command lines as written, in order,
// in a scratch folder that sees the repository's files, with
// "go run ./cmd/sekisho" standing for a binary built once. A "serve" line
// starts the gateway in the background (the rest of the lines talk to it)
// on a free loopback port instead of the README's, so that a quickstart
// someone runs on this machine does not break the test; every later
// mention of the README's address is given the same port. Every other
// line must exit 0, or N where its comment says "# exits N" (relay test
// exits 1 when the policy refuses, which a README example may show).
func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lines := readmeCommands(t, filepath.Join(repo, "README.md"))
	if len(lines) < 5 {
		t.Fatalf("README.md has %d command lines; the parser lost them", len(lines))
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "sekisho"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	entries, _ := os.ReadDir(repo)
	for _, e := range entries {
		if e.Name() == ".git" || e.Name() == "sekisho-quickstart" {
			continue
		}
		if err := os.Symlink(filepath.Join(repo, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	sekishoBin := filepath.Join(bin, "sekisho")

	var server *exec.Cmd
	serverOut := &syncBuffer{}
	defer func() {
		if server != nil {
			server.Process.Signal(syscall.SIGTERM)
			server.Wait()
		}
	}()
	readmeAddr, testAddr := "127.0.0.1:2525", ""
	ran := 0
	for _, line := range lines {
		skipped := false
		for _, s := range readmeSkip {
			if strings.HasPrefix(line, s.prefix) {
				t.Logf("not run (%s): %s", s.why, line)
				skipped = true
			}
		}
		if tool := strings.Fields(line)[0]; !skipped && tool != "go" && tool != "sekisho" {
			if _, err := exec.LookPath(tool); err != nil {
				t.Logf("not run (%s is not installed): %s", tool, line)
				skipped = true
			}
		}
		if skipped {
			continue
		}
		cmdline := line
		for _, p := range []string{"go run ./cmd/sekisho ", "sekisho "} {
			if strings.HasPrefix(cmdline, p) {
				cmdline = sekishoBin + " " + strings.TrimPrefix(cmdline, p)
			}
		}
		if testAddr != "" {
			cmdline = strings.ReplaceAll(cmdline, readmeAddr, testAddr)
		}
		if strings.HasPrefix(cmdline, sekishoBin+" serve") {
			if server != nil {
				t.Fatalf("two serve lines; stop the first in the README or teach this test: %s", line)
			}
			if m := listenFlag.FindStringSubmatch(cmdline); m != nil {
				readmeAddr = m[1]
			}
			testAddr = freeLoopback(t)
			if listenFlag.MatchString(cmdline) {
				cmdline = listenFlag.ReplaceAllString(cmdline, "--listen "+testAddr)
			} else {
				cmdline += " --listen " + testAddr
			}
			// The quickstart's console, on a free port too.
			if !strings.Contains(cmdline, " -c ") {
				cmdline += " --console " + freeLoopback(t)
			}
			server = exec.Command("bash", "-c", "exec "+cmdline)
			server.Dir, server.Env = work, env
			server.Stdout, server.Stderr = serverOut, serverOut
			if err := server.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor220(t, testAddr, serverOut)
			ran++
			continue
		}
		// Delivery runs after the 250: while the gateway runs, a line
		// that fails (the message not yet in sekisho-quickstart/mail) is
		// tried again for a while, as a person would look again.
		want := 0
		if m := exitsComment.FindStringSubmatch(line); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		var out []byte
		var err error
		for deadline := time.Now().Add(15 * time.Second); ; {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, "bash", "-c", cmdline)
			cmd.Dir, cmd.Env = work, env
			out, err = cmd.CombinedOutput()
			cancel()
			if ee, ok := err.(*exec.ExitError); ok && want != 0 && ee.ExitCode() == want {
				err = nil
			} else if err == nil && want != 0 {
				err = fmt.Errorf("exit status 0, the README says %d", want)
			}
			if err == nil || server == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("README.md: %s\n  ran: %s\n  %v\n%s", line, cmdline, err, out)
		}
		ran++
	}
	if server != nil {
		server.Process.Signal(syscall.SIGTERM)
		err := server.Wait()
		server = nil
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, serverOut.String())
		}
	}
	if ran == 0 {
		t.Fatal("no README command was run")
	}
	t.Logf("ran %d README command lines", ran)
	// The port the README names is the one the quickstart really uses.
	if !strings.Contains(string(mustRead(t, filepath.Join(repo, "configs/quickstart.yaml"))), "address: 127.0.0.1:2525") {
		t.Error("configs/quickstart.yaml no longer listens on 127.0.0.1:2525, which README.md names")
	}
}

// syncBuffer collects a child's output while the test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor220(t *testing.T, addr string, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer 220 on %s:\n%s", addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
