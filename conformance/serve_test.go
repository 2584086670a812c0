package conformance

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A SIGHUP as soon as the gateway answers is a reload, not the end of the
// process (the signal's default action): the handlers are in place before
// the first connection is accepted.
func TestServe_SignalRightAfterStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(""))
	g.signal(t, syscall.SIGHUP)
	waitCount(t, g, 1, "configuration reloaded")
	if !g.running() {
		t.Fatalf("sekisho serve ended after SIGHUP:\n%s", g.logs.String())
	}
	if code := g.stop(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// A configuration serve cannot run is refused before anything is created:
// no queue folder is left behind.
func TestServe_RefusedConfigurationCreatesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	full := configC("")
	noListener := strings.Replace(full, `  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
`, "", 1)
	if noListener == full {
		t.Fatal("configC has no listeners section to take out")
	}
	cmd := sekisho(context.Background(), "serve", "-c", w.configure(noListener))
	cmd.Dir = w.dir
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(out, "relay.listeners: at least one listener is needed to serve") {
		t.Errorf("%v:\n%s", err, out)
	}
	if _, err := os.Stat(w.path("queue")); !os.IsNotExist(err) {
		t.Errorf("the queue folder was created (%v):\n%s", err, out)
	}
}
