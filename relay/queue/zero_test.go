package queue

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"testing"
)

// sizeAtSync records the segment's length at every fsync.
type sizeAtSync struct {
	osStorage
	mu    sync.Mutex
	sizes []int64
}

func (s *sizeAtSync) Sync(f *os.File) error {
	if fi, err := f.Stat(); err == nil {
		s.mu.Lock()
		s.sizes = append(s.sizes, fi.Size())
		s.mu.Unlock()
	}
	return s.osStorage.Sync(f)
}

// TestZeroAheadKeepsTheLength: the point of zeroAhead is that most
// fdatasyncs find the file's length unchanged (no inode to write), so the
// length changes once per zeroChunk, not once per batch. The zeros are not
// reported at the next start; a torn record written over them is.
func TestZeroAheadKeepsTheLength(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SegmentSize = 4 << 20
	st := &sizeAtSync{}
	q := openTest(t, cfg, WithStorage(st))
	for i := range 1200 { // one batch each: about 2.5 MiB
		enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 2000))
	}
	want := q.List()
	must(t, q.Close())

	changes := 0
	for i := 1; i < len(st.sizes); i++ {
		if st.sizes[i] != st.sizes[i-1] {
			changes++
		}
	}
	if len(st.sizes) < 1200 || changes > 3 {
		t.Errorf("%d fsyncs, the length changed between %d of them; want at most one change per MiB", len(st.sizes), changes)
	}

	path, seq := onlySegment(t, cfg.Dir)
	res, err := scanSegment(path, seq, func(*record, int64, int64) {})
	must(t, err)
	if !res.zeroTail || res.size%zeroChunk != 0 || res.records != 1200 {
		t.Fatalf("segment: %d records ending at %d of %d bytes, zero tail %v", res.records, res.end, res.size, res.zeroTail)
	}
	v := recoverOnly(t, cfg)
	sameMessages(t, v.List(), want)
	if p := v.Recovery().Problems; len(p) != 0 {
		t.Errorf("zeros after the records reported: %q", p)
	}
	if got, want := v.Stats().DiskBytes, res.end; got != want {
		t.Errorf("DiskBytes %d, want the records' end %d: the zeros are free space", got, want)
	}

	// A batch torn by a crash, over the zeros: reported, nothing lost.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("\x40\x00\x00\x00torn"), res.end)
	must(t, err)
	must(t, f.Close())
	v = recoverOnly(t, cfg)
	sameMessages(t, v.List(), want)
	if p := v.Recovery().Problems; len(p) != 1 {
		t.Errorf("a torn record over the zeros: problems %q", p)
	}
}

// halfZero writes half of what Zero asks for, then fails, as a disk that
// fills up in the middle.
type halfZero struct {
	osStorage
	calls int
}

func (h *halfZero) Zero(f *os.File, off, n int64) error {
	h.calls++
	if err := writeZeros(f, off, n/2); err != nil {
		return err
	}
	return syscall.ENOSPC
}

// TestZeroAheadFailure: zeroing is only a hint. When it fails, even
// halfway, every batch is still written and acknowledged, no zero lands on
// a record, and the segment is not zeroed again.
func TestZeroAheadFailure(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SegmentSize = 4 << 20
	st := &halfZero{}
	q := openTest(t, cfg, WithStorage(st))
	data := map[ID][]byte{}
	for i := range 300 {
		d := msgData(i, 3000)
		data[enqueue(t, q, testEnvelope("a@x.jp"), d)] = d
	}
	for id, d := range data {
		if got := readAll(t, q, id); !bytes.Equal(got, d) {
			t.Fatalf("message %s damaged after a failed zeroing", id)
		}
	}
	if st.calls != 1 {
		t.Errorf("Zero called %d times, want once: a failure stops it for the segment", st.calls)
	}
	want := q.List()
	must(t, q.Close())
	v := recoverOnly(t, cfg)
	sameMessages(t, v.List(), want)
	if p := v.Recovery().Problems; len(p) != 0 {
		t.Errorf("problems %q", p)
	}
}

// TestBlankNewestSegment: a segment created just before a crash can be
// all zeros (header included) when the zeros reached the disk and the
// header did not. It never held a record: removed without a report.
func TestBlankNewestSegment(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 200))
	want := q.List()
	must(t, q.Close())
	_, seq := onlySegment(t, cfg.Dir)
	blank := segPath(cfg.Dir, seq+1)
	must(t, os.WriteFile(blank, make([]byte, 64<<10), 0o640))
	q = openTest(t, cfg)
	sameMessages(t, q.List(), want)
	if p := q.Recovery().Problems; len(p) != 0 {
		t.Errorf("problems %q", p)
	}
	if _, err := os.Stat(blank); !os.IsNotExist(err) {
		t.Errorf("the blank segment is still there: %v", err)
	}
}
