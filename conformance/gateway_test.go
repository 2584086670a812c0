package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// gateway is the sekisho process under test. Its output (stderr and
// stdout) is kept across restarts and printed when the test fails.
type gateway struct {
	w    *world
	cfg  string
	logs *lockedBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// lockedBuffer collects the gateway's output from two pipes at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (w *world) newGateway(cfg string) *gateway {
	g := &gateway{w: w, cfg: cfg, logs: &lockedBuffer{}}
	w.gw = g
	w.t.Cleanup(func() {
		if g.running() {
			if code := g.stop(); code != 0 {
				w.t.Errorf("sekisho serve exited with status %d after SIGTERM, want a clean exit", code)
			}
		}
		if strings.Contains(g.logs.String(), "WARNING: DATA RACE") {
			w.t.Errorf("the gateway reported a data race (see its output)")
		}
		for _, line := range strings.Split(g.logs.String(), "\n") {
			// Every log line has a kind that docs/logging.md lists.
			if strings.HasPrefix(line, "time=") && !documentedKind(line) {
				w.t.Errorf("a log line without a documented kind: %s", line)
			}
		}
		if w.t.Failed() {
			w.t.Logf("configuration %s:\n%s", cfg, readFile(cfg))
			w.t.Logf("gateway output:\n%s", g.logs.String())
		}
	})
	return g
}

// documentedKind reports whether a text log line carries kind=K for a K
// in docs/logging.md's table of kinds.
func documentedKind(line string) bool {
	i := strings.Index(line, " kind=")
	if i < 0 {
		return false
	}
	k, _, _ := strings.Cut(line[i+len(" kind="):], " ")
	return logKinds()[k]
}

var logKinds = sync.OnceValue(func() map[string]bool {
	kinds := map[string]bool{}
	doc := readFile(filepath.Join("..", "docs", "logging.md"))
	_, table, _ := strings.Cut(doc, "## Kinds")
	table, _, _ = strings.Cut(table, "\n## ")
	for _, m := range regexp.MustCompile(`(?m)^\| ([^|]*)\|`).FindAllStringSubmatch(table, -1) {
		for _, k := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[1], -1) {
			kinds[k[1]] = true
		}
	}
	return kinds
})

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// start runs `sekisho serve -c FILE` and waits until every listener
// answers 220. It returns an error with the output if the process exits
// first or never answers.
func (g *gateway) start() error {
	g.mu.Lock()
	if g.cmd != nil && g.exited != nil {
		select {
		case <-g.exited:
		default:
			g.mu.Unlock()
			return errors.New("gateway already running")
		}
	}
	fmt.Fprintf(g.logs, "--- sekisho serve -c %s (%s)\n", g.cfg, time.Now().Format("15:04:05.000"))
	cmd := sekisho(context.Background(), "serve", "-c", g.cfg, "--grace", "5s")
	cmd.Dir = g.w.dir
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		return fmt.Errorf("starting sekisho: %v", err)
	}
	exited := make(chan struct{})
	g.cmd, g.exited = cmd, exited
	g.mu.Unlock()
	go func() {
		err := cmd.Wait()
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for name, addr := range g.w.ports {
		for {
			err := probe220(addr, g.w.tlsPorts[name])
			if err == nil {
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("sekisho serve exited before listener %s (%s) answered (%v); output:\n%s",
					name, addr, g.exitErr(), g.logs.String())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("listener %s (%s) did not answer 220 within %v: %v; output:\n%s",
					name, addr, startTimeout, err, g.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// sekisho prepares a run of the binary under test.
func sekisho(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, sekishoBin, args...)
	cmd.Env = childEnv()
	return cmd
}

// childEnv is the environment of the binary under test: ours, and a
// race-enabled binary should not sleep a second at every exit.
func childEnv() []string {
	if _, set := os.LookupEnv("GORACE"); set {
		return nil
	}
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

// probe220 connects, reads the greeting and leaves politely.
func probe220(addr string, implicitTLS bool) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if implicitTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		c = tc
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("greeting %q", strings.TrimSpace(line))
	}
	io.WriteString(c, "QUIT\r\n")
	return nil
}

func (g *gateway) exitErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// running reports whether the process is alive.
func (g *gateway) running() bool {
	g.mu.Lock()
	ch := g.exited
	g.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// signal sends sig to the running process.
func (g *gateway) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	g.mu.Lock()
	cmd := g.cmd
	g.mu.Unlock()
	if cmd == nil || !g.running() {
		t.Fatalf("gateway not running; cannot send %v; output:\n%s", sig, g.logs.String())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit and returns its exit status.
func (g *gateway) wait(timeout time.Duration) (exitCode int, ok bool) {
	g.mu.Lock()
	ch, cmd := g.exited, g.cmd
	g.mu.Unlock()
	if ch == nil {
		return -1, false
	}
	select {
	case <-ch:
		return cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return -1, false
	}
}

// stop ends the process with SIGTERM (SIGKILL if it does not exit) and
// returns its exit status.
func (g *gateway) stop() int {
	g.mu.Lock()
	cmd := g.cmd
	g.mu.Unlock()
	fmt.Fprintf(g.logs, "--- SIGTERM (%s)\n", time.Now().Format("15:04:05.000"))
	cmd.Process.Signal(syscall.SIGTERM)
	code, ok := g.wait(15 * time.Second)
	fmt.Fprintf(g.logs, "--- exited with status %d (%s)\n", code, time.Now().Format("15:04:05.000"))
	if !ok {
		fmt.Fprintf(g.logs, "--- did not exit 15s after SIGTERM; killed\n")
		cmd.Process.Kill()
		g.wait(5 * time.Second)
	}
	return code
}

// kill ends the process with SIGKILL, as a crash would.
func (g *gateway) kill(t testing.TB) {
	t.Helper()
	g.signal(t, syscall.SIGKILL)
	if _, ok := g.wait(10 * time.Second); !ok {
		t.Fatal("gateway did not die after SIGKILL")
	}
	fmt.Fprintf(g.logs, "--- killed with SIGKILL (%s)\n", time.Now().Format(time.TimeOnly))
}

// countLog counts the lines of output containing every one of parts.
func (g *gateway) countLog(parts ...string) int {
	n := 0
	for _, line := range strings.Split(g.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// queuedMessage is what `sekisho queue list --json` prints per message.
type queuedMessage struct {
	ID       string `json:"id"`
	Held     bool   `json:"held"`
	Envelope struct {
		From  string `json:"from"`
		Rcpts []struct {
			Addr string `json:"addr"`
		} `json:"rcpts"`
	} `json:"envelope"`
	States []struct {
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	} `json:"states"`
}

// queue lists the spool through `sekisho queue list --json`, which is safe
// while the gateway runs.
func (g *gateway) queue(t testing.TB) []queuedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := sekisho(ctx, "queue", "list", "-c", g.cfg, "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sekisho queue list: %v\n%s", err, stderr.String())
	}
	var msgs []queuedMessage
	if err := json.Unmarshal(stdout.Bytes(), &msgs); err != nil {
		t.Fatalf("sekisho queue list --json: %v\n%s", err, stdout.String())
	}
	return msgs
}

// waitQueueEmpty waits until every queued message is delivered or bounced.
func (g *gateway) waitQueueEmpty(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		msgs := g.queue(t)
		if len(msgs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(msgs, "", "  ")
			t.Fatalf("the queue did not drain within %v:\n%s", waitTimeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric reads one counter or gauge from /metrics, summing the series
// whose labels contain every one of labels (`reason="builtin:relay"`).
func (g *gateway) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	if g.w.metrics == "" {
		t.Fatal("the scenario's configuration has no {{runtime}} block, so no metrics endpoint")
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + g.w.metrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if !match {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
