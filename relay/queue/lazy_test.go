package queue

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// countingStorage counts the fsyncs of segments.
type countingStorage struct {
	osStorage
	syncs atomic.Int64
}

func (c *countingStorage) Sync(f *os.File) error {
	c.syncs.Add(1)
	return c.osStorage.Sync(f)
}

// A recipient delivered is answered once its record is written, without
// an fsync of its own: it is on disk for the next reader (and survives
// kill -9), and an idle committer syncs it shortly after. Every other
// change, and a delivered mark that frees a large file, waits for its
// fsync.
func TestDeliveredMarkIsLazy(t *testing.T) {
	cfg := testConfig(t.TempDir())
	st := &countingStorage{}
	q := openTest(t, cfg, WithStorage(st), func(o *options) { o.lazySync = 50 * time.Millisecond })
	id := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 2048))
	n := st.syncs.Load()
	if n == 0 {
		t.Fatal("Enqueue returned without an fsync")
	}
	must(t, q.MarkDelivered(id, 0))
	if got := st.syncs.Load(); got != n {
		t.Errorf("MarkDelivered waited for %d fsyncs, want none", got-n)
	}
	seen := recoverOnly(t, cfg)
	if m, err := seen.Get(id); err != nil || m.Rcpts[0].Status != Delivered {
		t.Errorf("a reader of the spool does not see the written mark: %+v, %v", m, err)
	}
	waitFor(t, func() bool { return st.syncs.Load() == n+1 })

	must(t, q.MarkDeferred(id, 1, time.Now().Add(time.Hour), "451 4.7.1 later"))
	if got := st.syncs.Load(); got != n+2 {
		t.Errorf("MarkDeferred: %d fsyncs, want 1", got-n-1)
	}
	large := enqueue(t, q, testEnvelope("c@x.jp"), msgData(2, 3*int(cfg.InlineMax)))
	before := st.syncs.Load()
	must(t, q.MarkDelivered(large, 0))
	if got := st.syncs.Load(); got != before+1 {
		t.Errorf("delivered mark freeing a large file: %d fsyncs, want 1", got-before)
	}
}

// Rolling to a new segment syncs the lazy records of the old one first:
// a sealed segment is synced whole.
func TestRollSyncsLazyRecords(t *testing.T) {
	cfg := testConfig(t.TempDir())
	st := &countingStorage{}
	q := openTest(t, cfg, WithStorage(st), func(o *options) { o.lazySync = time.Hour })
	size := func() int64 {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.segs[q.activeSeq].size
	}
	// Measure a mark's and an enqueue's framing, then fill the segment so
	// that the next mark is the record that makes it full.
	a := enqueue(t, q, testEnvelope("a@x.jp"), msgData(0, 2000))
	s0 := size()
	must(t, q.MarkDelivered(a, 0))
	markLen := size() - s0
	s1 := size()
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 2000))
	overhead := size() - s1 - 2000
	for i := 2; int64(cfg.SegmentSize)-size() > 3000+overhead+markLen; i++ {
		enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 3000))
	}
	last := enqueue(t, q, testEnvelope("a@x.jp"), msgData(99, int(int64(cfg.SegmentSize)-size()-overhead-markLen/2)))
	if room := int64(cfg.SegmentSize) - size(); room <= 0 || room > markLen {
		t.Fatalf("room %d after filling, want 1..%d", room, markLen)
	}
	before := st.syncs.Load()
	must(t, q.MarkDelivered(last, 0))
	if st.syncs.Load() != before || size() < int64(cfg.SegmentSize) {
		t.Fatalf("the lazy mark was synced, or did not fill the segment")
	}
	enqueue(t, q, testEnvelope("b@x.jp"), msgData(100, 100))
	if got := st.syncs.Load() - before; got != 2 {
		t.Errorf("rolling after a lazy mark: %d fsyncs, want 2 (the old segment, then the batch)", got)
	}
}

// An idle committer's fdatasync of lazy marks that fails is a storage
// error like any other: Health reports it, the segment is abandoned (the
// marks in doubt could only cause a second delivery), and the next message
// goes into a new segment and clears the failure.
func TestLazySyncFailure(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg, func(o *options) { o.lazySync = 20 * time.Millisecond })
	a := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 500))
	q.mu.Lock()
	first := q.activeSeq
	q.mu.Unlock()
	boom := errors.New("injected fsync error")
	fail := func(op string) error {
		if op == "fsync" {
			return boom
		}
		return nil
	}
	q.testFault.Store(&fail)
	must(t, q.MarkDelivered(a, 0)) // written; its fsync comes later and fails
	waitFor(t, func() bool { return q.Health().Failing })
	if h := q.Health(); !errors.Is(h.Err, boom) {
		t.Errorf("Health after the failed sync: %+v", h)
	}
	q.testFault.Store(nil)
	enqueue(t, q, testEnvelope("c@x.jp"), msgData(2, 100))
	q.mu.Lock()
	next := q.activeSeq
	q.mu.Unlock()
	if next == first {
		t.Errorf("still appending to segment %d after its fdatasync failed", first)
	}
	if h := q.Health(); h.Failing {
		t.Errorf("Health still failing after a good commit: %+v", h)
	}
	if m, err := q.Get(a); err != nil || m.Rcpts[0].Status != Delivered {
		t.Errorf("the delivered mark in memory: %+v, %v", m, err)
	}
}
