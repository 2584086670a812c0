package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestControlRunningGateway: with the spool held by a running queue, a
// command goes through the control directory and the gateway applies it.
func TestControlRunningGateway(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	a := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 100))
	b := enqueue(t, q, testEnvelope("b@x.jp"), msgData(2, 100))
	must(t, q.MarkDeferred(b, 0, time.Now().Add(time.Hour), "451 later"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := Control(ctx, cfg, Command{Op: OpHold, IDs: []ID{a, a + 77}})
	must(t, err)
	if len(res.Done) != 1 || res.Done[0] != a || len(res.Missing) != 1 || res.Missing[0] != a+77 {
		t.Fatalf("hold result = %+v", res)
	}
	if m, _ := q.Get(a); !m.Held {
		t.Fatalf("hold not applied by the gateway")
	}
	res, err = Control(ctx, cfg, Command{Op: OpRetry, All: true})
	must(t, err)
	if len(res.Done) != 1 || res.Done[0] != b {
		t.Fatalf("retry --all result = %+v", res)
	}
	if m, _ := q.Get(b); m.Rcpts[0].NextAttempt.After(time.Now()) {
		t.Fatalf("retry not applied: next attempt %v", m.Rcpts[0].NextAttempt)
	}
	_, err = Control(ctx, cfg, Command{Op: OpDelete, IDs: []ID{a}})
	must(t, err)
	if _, err := q.Get(a); err == nil {
		t.Fatalf("delete not applied")
	}
	if left, _ := os.ReadDir(filepath.Join(cfg.Dir, ctlDir)); len(left) != 0 {
		t.Errorf("control directory not cleaned: %v", left)
	}
}

// TestControlStoppedGateway: with no gateway, the command opens the spool
// itself, and the change is durable.
func TestControlStoppedGateway(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	a := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 100))
	must(t, q.Close())
	res, err := Control(context.Background(), cfg, Command{Op: OpHold, IDs: []ID{a}})
	if err != nil || len(res.Done) != 1 {
		t.Fatalf("Control = %+v, %v", res, err)
	}
	if m, _ := openTest(t, cfg).Get(a); !m.Held {
		t.Fatalf("hold not durable")
	}
}

// TestControlWithdrawn: a gateway that holds the lock but never answers
// leaves the command unapplied and withdrawn.
func TestControlWithdrawn(t *testing.T) {
	cfg := testConfig(t.TempDir())
	must(t, prepareDir(cfg.Dir))
	lock, err := tryLockSpool(cfg.Dir)
	must(t, err)
	defer unlockSpool(lock)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Control(ctx, cfg, Command{Op: OpDelete, IDs: []ID{12345}})
	if err == nil || !strings.Contains(err.Error(), "withdrawn") {
		t.Fatalf("Control against a silent gateway: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(cfg.Dir, ctlDir)); len(left) != 0 {
		t.Errorf("command left behind: %v", left)
	}
}

func TestCommandValidate(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{Command{Op: "bounce", IDs: []ID{1}}, "unknown queue operation"},
		{Command{Op: OpHold, All: true}, "--all is only for retry"},
		{Command{Op: OpRetry}, "not both or neither"},
		{Command{Op: OpRetry, All: true, IDs: []ID{1}}, "not both or neither"},
		{Command{Op: OpDelete, IDs: []ID{0}}, "ID 0"},
	} {
		if err := tc.cmd.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cmd, err, tc.want)
		}
	}
	if err := (Command{Op: OpRetry, All: true}).Validate(); err != nil {
		t.Errorf("retry --all: %v", err)
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"op":"hold","ids":["0C9N2ZAJ00000"]}`))
	f.Add([]byte(`{"op":"retry","all":true}`))
	f.Add([]byte(`{"op":"delete","ids":["x"],"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCommand(data)
		if err != nil {
			return
		}
		if c.Validate() != nil {
			t.Fatalf("parsed an invalid command: %+v", c)
		}
	})
}
