package queue

import (
	"bytes"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue/faultfs"
)

// TestStorageFaults drives concurrent writers through the faults of the
// fault model at the storage seam: ENOSPC or EIO on the Nth write, a short
// write, a failing fsync. Every acknowledged message survives a reopen,
// every acknowledged state change stays, and nothing that failed comes
// back.
func TestStorageFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(d *faultfs.Disk)
	}{
		{"ENOSPC on the 3rd write", func(d *faultfs.Disk) { d.FailWrite(3, syscall.ENOSPC, false) }},
		{"short write, then ENOSPC", func(d *faultfs.Disk) { d.FailWrite(4, syscall.ENOSPC, true) }},
		{"EIO on the 6th write", func(d *faultfs.Disk) { d.FailWrite(6, syscall.EIO, true) }},
		{"fsync EIO", func(d *faultfs.Disk) { d.FailSync(3, syscall.EIO) }},
		{"two faults", func(d *faultfs.Disk) { d.FailSync(2, syscall.EIO); d.FailWrite(7, syscall.ENOSPC, true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			d := &faultfs.Disk{}
			q := openTest(t, cfg, WithStorage(d))
			tc.fault(d)
			var mu sync.Mutex
			acked := map[ID]Status{}
			failures := 0
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 15 {
						id, err := q.Enqueue(testEnvelope("a@x.jp"), bytes.NewReader(msgData(w*100+i, 1500)))
						mu.Lock()
						if err != nil {
							if !Temporary(err) {
								t.Errorf("Enqueue: %v, want a temporary error", err)
							}
							failures++
							mu.Unlock()
							continue
						}
						acked[id] = Pending
						mu.Unlock()
						if i%3 == 0 {
							err := q.MarkDeferred(id, 0, time.Now().Add(time.Hour), "451 4.4.1 later")
							mu.Lock()
							if err == nil {
								acked[id] = Deferred
							}
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			// One more commit after the faults: the repairs go first.
			enqueue(t, q, testEnvelope("a@x.jp"), msgData(999, 100))
			must(t, q.Close())
			if _, _, failed := d.Counts(); failed == 0 {
				t.Fatal("the fault never fired")
			}

			q = openTest(t, cfg)
			got := map[ID]Message{}
			for _, m := range q.List() {
				got[m.ID] = m
			}
			for id, st := range acked {
				m, ok := got[id]
				switch {
				case !ok:
					t.Errorf("acknowledged message %s lost", id)
				case m.Rcpts[0].Status != st:
					t.Errorf("message %s: status %s, want %s", id, m.Rcpts[0].Status, st)
				}
			}
			if len(got) != len(acked)+1 {
				t.Errorf("%d messages after reopen, %d acknowledged (+1): a failed one came back", len(got), len(acked))
			}
			t.Logf("%d acknowledged, %d refused", len(acked), failures)
		})
	}
}

// The metrics gauge reads Stats every few seconds: it must not copy every
// message under the spool lock (List did), so its cost in allocations does
// not grow with the queue.
func TestStatsDoesNotCopyMessages(t *testing.T) {
	q := openTest(t, testConfig(t.TempDir()))
	var oldest time.Time
	for i := range 200 {
		env := testEnvelope("a@x.jp", "b@x.jp")
		env.ReceivedAt = time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(200-i) * time.Minute)
		oldest = env.ReceivedAt
		enqueue(t, q, env, msgData(i, 100))
	}
	st := q.Stats()
	if !st.Oldest.Equal(oldest) {
		t.Errorf("Stats().Oldest = %v, want %v", st.Oldest, oldest)
	}
	if allocs := testing.AllocsPerRun(20, func() { q.Stats() }); allocs > 2 {
		t.Errorf("Stats allocates %.0f times with 200 messages queued, want none per message", allocs)
	}
}
