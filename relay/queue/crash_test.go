package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes the test binary run crashChild instead of the tests.
const crashChildEnv = "SEKISHO_QUEUE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.CompactAfter = 50 * time.Millisecond
	return cfg
}

// crashChild enqueues from several goroutines until it is killed. It
// prints "ok ID" once Enqueue returned (the 250 moment), "finishing ID"
// before marking a message delivered and "done ID" once that returned.
// Each line is one write(2), so a kill never splits a line that the parent
// then misreads.
func crashChild(dir string) {
	q, err := Open(crashConfig(dir), WithLockWait(5*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		os.Stdout.WriteString(fmt.Sprintf(format, a...) + "\n")
		mu.Unlock()
	}
	say("ready")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				size := 2048
				if i%25 == 0 {
					size = 6000 // over InlineMax: a file of its own
				}
				id, err := q.Enqueue(testEnvelope("a@x.jp", "b@x.jp"), bytes.NewReader(msgData(w*1_000_000+i, size)))
				if err != nil {
					say("error %v", err)
					continue
				}
				say("ok %s", id)
				if i%3 == 0 {
					say("finishing %s", id)
					if q.MarkDelivered(id, 0) == nil && q.MarkFailed(id, 1, "550 no") == nil {
						say("done %s", id)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrashKill9 kills a process with SIGKILL at random moments while it
// accepts messages, and checks after each crash that every message it
// acknowledged is still queued and that no finished message came back.
// The moments are counted, not timed: one round is killed as it starts
// (in its recovery), the others after a random number of
// acknowledgements, so a slow machine exercises as much as a fast one.
func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	acked, finishing, done := map[ID]bool{}, map[ID]bool{}, map[ID]bool{}
	unacked, redeliver := map[ID]bool{}, map[ID]bool{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	const rounds = 6
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill at a random moment: once as the child starts (during its
		// recovery of the previous round's spool), otherwise after 20 to
		// 80 acknowledgements while messages stream in.
		killAfter := 20 + rng.IntN(61)
		killed := false
		kill := func() {
			if !killed {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		if round == rounds/2 {
			kill()
		}
		acks := 0
		// A child that stops acknowledging (a hang) is killed after a
		// generous wait and fails the test.
		stuck := time.NewTimer(2 * time.Minute)
		for !killed || lines != nil {
			select {
			case <-stuck.C:
				kill()
				t.Errorf("round %d: %d acknowledgements in 2 minutes, want %d", round, acks, killAfter)
			case line, ok := <-lines:
				if !ok {
					lines = nil
					if !killed {
						t.Fatalf("round %d: child exited by itself: %s", round, stderr.String())
					}
					continue
				}
				kind, arg, _ := strings.Cut(line, " ")
				id, perr := ParseID(arg)
				switch {
				case kind == "ready" || kind == "error":
				case perr != nil:
					t.Fatalf("round %d: bad line %q", round, line)
				case kind == "ok":
					acked[id] = true
					if acks++; acks >= killAfter {
						kill()
					}
				case kind == "finishing":
					finishing[id] = true
				case kind == "done":
					done[id] = true
				}
			}
		}
		cmd.Wait()
		if strings.Contains(stderr.String(), "child open") {
			t.Fatalf("round %d: %s", round, stderr.String())
		}
		for id, present := range checkCrashSurvivors(t, dir, round, acked, finishing, done) {
			if present && !acked[id] {
				unacked[id] = true
			}
			if present && finishing[id] && !done[id] {
				redeliver[id] = true
			}
		}
	}
	// Duplicates the crashes cause: a message committed but killed before
	// its 250 (the client sends it again), and a recipient delivered but
	// killed before its state was recorded (delivered again).
	t.Logf("%d rounds: %d messages acknowledged, %d finished; around the crashes %d committed without acknowledgement, %d finishing without a durable outcome",
		rounds, len(acked), len(done), len(unacked), len(redeliver))
	if len(acked) < 100 {
		t.Errorf("only %d messages acknowledged: the test did not exercise much", len(acked))
	}
}

func checkCrashSurvivors(t *testing.T, dir string, round int, acked, finishing, done map[ID]bool) map[ID]bool {
	t.Helper()
	q, err := Open(crashConfig(dir), WithLockWait(5*time.Second))
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	defer q.Close()
	present := map[ID]bool{}
	// Messages committed by a child killed before it could say so may
	// also be present: that is allowed.
	for _, m := range q.List() {
		present[m.ID] = true
	}
	missing, back := 0, 0
	for id := range acked {
		if !finishing[id] && !present[id] {
			missing++
			t.Errorf("round %d: acknowledged message %s lost", round, id)
		}
	}
	for id := range done {
		if present[id] {
			back++
			t.Errorf("round %d: finished message %s came back", round, id)
		}
	}
	if missing+back > 0 {
		t.Fatalf("round %d: %d lost, %d resurrected; recovery: %+v", round, missing, back, q.Recovery())
	}
	return present
}
