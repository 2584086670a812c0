package queue

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestEnqueueHeld: a message queued held is never claimed, keeps its hold
// across a restart (it is in the message's own record), and is claimed
// once released.
func TestEnqueueHeld(t *testing.T) {
	for _, large := range []bool{false, true} {
		cfg := testConfig(t.TempDir())
		q := openTest(t, cfg)
		size := 100
		if large {
			size = 9000 // over InlineMax: a file of its own
		}
		id, err := q.EnqueueHeld(testEnvelope("a@x.jp"), bytes.NewReader(msgData(1, size)))
		must(t, err)
		if m, _ := q.Get(id); !m.Held {
			t.Fatalf("large=%v: not held after EnqueueHeld", large)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if m, err := q.Claim(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("large=%v: claimed a held message: %v %v", large, m.ID, err)
		}
		cancel()
		must(t, q.Close())

		q = openTest(t, cfg)
		if m, err := q.Get(id); err != nil || !m.Held {
			t.Fatalf("large=%v: after reopening: held=%v err=%v", large, m.Held, err)
		}
		if st := q.Stats(); st.Held != 1 {
			t.Errorf("large=%v: Stats().Held = %d", large, st.Held)
		}
		must(t, q.Release(id))
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		m, err := q.Claim(ctx)
		cancel()
		if err != nil || m.ID != id {
			t.Fatalf("large=%v: after release: %v %v", large, m.ID, err)
		}
		if got := readAll(t, q, id); !bytes.Equal(got, msgData(1, size)) {
			t.Errorf("large=%v: data changed", large)
		}
	}
}
