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
	{"scripts/bench-vs-postfix.sh", "a benchmark of minutes (scripts/ has its own checks)"},
	{"curl -s 127.0.0.1:9225/", "needs relay.metrics.address, which the quickstart does not set"},
}

// readmeLine is one command line of a README and, for the last line of a
// ```sh block that a plain ``` block follows at once, the output that
// block shows.
type readmeLine struct {
	cmd  string
	want []string
}

// readmeCommands returns the command lines of the ```sh blocks of a
// Markdown file: comments after "  #" removed, "\" continuations joined.
func readmeCommands(t *testing.T, path string) []readmeLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []readmeLine
	in, cont := false, ""
	// shown: reading the output block right after a ```sh block.
	shown, afterSh := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if shown {
			if line == "```" {
				shown = false
			} else {
				out[len(out)-1].want = append(out[len(out)-1].want, line)
			}
			continue
		}
		if afterSh {
			afterSh = false
			if line == "```" && len(out) > 0 {
				shown = true
				out[len(out)-1].want = []string{}
				continue
			}
		}
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			afterSh = in
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
		out = append(out, readmeLine{cmd: cont + line})
		cont = ""
	}
	return out
}

// shownOutput checks that the lines a README shows as a command's output
// appear, in order and each whole, in what it printed ("..." and the
// lines it stands for may be left out).
func shownOutput(want []string, got string) error {
	lines := strings.Split(got, "\n")
	i := 0
	for _, w := range want {
		w = strings.TrimRight(w, " ")
		if w == "" || strings.TrimSpace(w) == "..." {
			continue
		}
		for i < len(lines) && strings.TrimRight(lines[i], " ") != w {
			i++
		}
		if i == len(lines) {
			return fmt.Errorf("the README shows %q, which the command did not print (or not in this order)", w)
		}
		i++
	}
	return nil
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
//
// README.ja.md's lines are run the same way, in a scratch folder of their
// own. Where a ```sh block is followed at once by a plain ``` block, that
// block is the output of the block's last line: every line it shows must
// be in what the command prints.
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
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "sekisho"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range []string{"README.md", "README.ja.md"} {
		t.Run(name, func(t *testing.T) { runReadme(t, repo, bin, name) })
	}
	// The port the README names is the one the quickstart really uses.
	if !strings.Contains(string(mustRead(t, filepath.Join(repo, "configs/quickstart.yaml"))), "address: 127.0.0.1:2525") {
		t.Error("configs/quickstart.yaml no longer listens on 127.0.0.1:2525, which README.md names")
	}
}

// runReadme runs one README's command lines with the binary in bin.
func runReadme(t *testing.T, repo, bin, name string) {
	lines := readmeCommands(t, filepath.Join(repo, name))
	if len(lines) < 5 {
		t.Fatalf("%s has %d command lines; the parser lost them", name, len(lines))
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
	for _, rl := range lines {
		line := rl.cmd
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
		if err == nil && rl.want != nil {
			err = shownOutput(rl.want, string(out))
		}
		if err != nil {
			t.Errorf("%s: %s\n  ran: %s\n  %v\n%s", name, line, cmdline, err, out)
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
		t.Fatalf("no command of %s was run", name)
	}
	t.Logf("ran %d command lines of %s", ran, name)
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

// The Japanese README shows the same measurements as the English one:
// every figure of one's performance section (a number with a decimal
// point, or of 100 or more) is in the other's.
func TestReadmeFiguresAgree(t *testing.T) {
	en := readmeSection(t, "../../README.md", "## Performance")
	ja := readmeSection(t, "../../README.ja.md", "## 性能")
	enFigures, jaFigures := figures(en), figures(ja)
	if len(enFigures) < 50 {
		t.Fatalf("README.md's performance section has %d figures; the section was not found", len(enFigures))
	}
	for f := range jaFigures {
		if !enFigures[f] {
			t.Errorf("README.ja.md shows %s, which README.md's performance section does not", f)
		}
	}
	for f := range enFigures {
		if !jaFigures[f] {
			t.Errorf("README.md shows %s, which README.ja.md's performance section does not", f)
		}
	}
}

// readmeSection is the text from the heading to the next one of its level.
func readmeSection(t *testing.T, path, heading string) string {
	t.Helper()
	s := string(mustRead(t, path))
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s: no %q", path, heading)
	}
	s = s[i+1+len(heading):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

var figure = regexp.MustCompile(`\d[\d,]*(\.\d+)?`)

// figures are the measurements of a text: numbers with a decimal point or
// of 100 or more, thousands separators removed.
func figures(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range figure.FindAllString(s, -1) {
		m = strings.TrimRight(strings.ReplaceAll(m, ",", ""), ".")
		if n, err := strconv.ParseFloat(m, 64); err == nil && (strings.Contains(m, ".") || n >= 100) {
			out[m] = true
		}
	}
	return out
}
