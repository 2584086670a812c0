package conformance

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// `sekisho serve` runs with at least 2 ms of timer slack, set before
// the Go runtime starts its threads (it executes itself again to get it):
// the process keeps its PID, answers on its listeners (start waits for
// their 220), and the slack is that of the running program. A test run
// that has more slack already (a desktop session, systemd's
// TimerSlackNSec=) passes it on, and serve keeps it.
func TestServe_RunsWithTimerSlack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(""))
	g.mu.Lock()
	pid := g.cmd.Process.Pid
	g.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", pid))
	if err != nil {
		t.Skipf("no timer slack to read here: %v", err)
	}
	got, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || got < 2000000 {
		t.Errorf("timer slack of the gateway: %s ns, want at least 2000000", b)
	}
}
