package queue

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rollOnce queues and finishes messages until the active segment changes,
// and returns the segment that was active before.
func rollOnce(t *testing.T, q *Spool, i *int) uint64 {
	t.Helper()
	q.mu.Lock()
	seq := q.activeSeq
	q.mu.Unlock()
	for {
		*i++
		id := enqueue(t, q, testEnvelope("c@x.jp"), msgData(*i, 3000))
		must(t, q.MarkDelivered(id, 0))
		q.mu.Lock()
		rolled := q.activeSeq != seq && seq != 0
		if seq == 0 {
			seq = q.activeSeq
		}
		q.mu.Unlock()
		if rolled {
			return seq
		}
	}
}

// A finished segment becomes the spare and then the next segment, the same
// file overwritten in place; the messages written into it read back, and
// after a crash recovery reads them and takes the old records behind them
// for free space, not damage.
func TestSpareSegmentReused(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	i := 0
	first := rollOnce(t, q, &i)
	q.removeSegments()
	before, err := os.Stat(filepath.Join(cfg.Dir, spareName))
	if err != nil {
		t.Fatalf("the finished segment was not kept as the spare: %v", err)
	}
	if _, err := os.Stat(segPath(cfg.Dir, first)); !os.IsNotExist(err) {
		t.Fatalf("segment %d is still there beside the spare: %v", first, err)
	}
	// The next roll takes the spare: the messages queued after it live in
	// the old file.
	second := rollOnce(t, q, &i)
	q.mu.Lock()
	third := q.activeSeq
	q.mu.Unlock()
	if second == third {
		t.Fatal("no roll")
	}
	reused, err := os.Stat(segPath(cfg.Dir, third))
	must(t, err)
	b, err := os.ReadFile(segPath(cfg.Dir, third))
	must(t, err)
	if h, err := decodeSegHeader(b); !os.SameFile(before, reused) || err != nil || !h.recycled || h.seq != third {
		t.Fatalf("segment %d is a new file, not the spare (header %+v, %v)", third, h, err)
	}
	if now, err := os.Stat(filepath.Join(cfg.Dir, spareName)); err == nil && os.SameFile(before, now) {
		t.Error("the spare is still the spare after its reuse")
	}
	var kept []ID
	for k := range 3 {
		id := enqueue(t, q, testEnvelope("d@x.jp"), msgData(1000+k, 2500))
		kept = append(kept, id)
		if got := readAll(t, q, id); !bytes.Equal(got, msgData(1000+k, 2500)) {
			t.Fatalf("a message in the reused segment reads back wrong")
		}
	}
	q.mu.Lock()
	if s := q.segs[third]; s == nil || s.size >= reused.Size() {
		t.Errorf("the reused segment counts %+v bytes of a %d-byte file: its old bytes are free space", s, reused.Size())
	}
	q.mu.Unlock()

	// A crash now: recovery sees the files as they are.
	r := recoverOnly(t, cfg)
	if len(r.recovery.Problems) > 0 {
		t.Errorf("recovery reports problems: %q", r.recovery.Problems)
	}
	for k, id := range kept {
		if got := readAll(t, r, id); !bytes.Equal(got, msgData(1000+k, 2500)) {
			t.Errorf("after the crash, %s reads back wrong", id)
		}
	}
	if s := r.segs[third]; s == nil || s.size >= reused.Size() {
		t.Errorf("after the crash the reused segment counts %+v bytes of a %d-byte file", s, reused.Size())
	}
}

// A finished segment that someone still reads (a delivery of a message
// copied forward) is removed, not reused: the reader keeps the old bytes
// even after the next segment is written.
func TestSpareNotWhileRead(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	a := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 2000))
	ra, err := q.Open(a)
	must(t, err)
	defer ra.Close()
	must(t, q.MarkDelivered(a, 0))
	i := 0
	rollOnce(t, q, &i)
	q.removeSegments()
	if _, err := os.Stat(filepath.Join(cfg.Dir, spareName)); !os.IsNotExist(err) {
		t.Fatalf("a segment with an open reader became the spare: %v", err)
	}
	rollOnce(t, q, &i)
	rollOnce(t, q, &i)
	got, err := io.ReadAll(ra)
	must(t, err)
	if !bytes.Equal(got, msgData(1, 2000)) {
		t.Errorf("the reader read %d bytes, not its message", len(got))
	}
}

// syncFailsFor fails the fsync of one file.
type syncFailsFor struct {
	osStorage
	name string
}

func (s syncFailsFor) Sync(f *os.File) error {
	if strings.HasSuffix(f.Name(), s.name) {
		return errors.New("injected EIO")
	}
	return s.osStorage.Sync(f)
}

// A spare that cannot be made the next segment (its header cannot be
// synced) is removed, and the segment is created as before: mail goes on.
func TestSpareFailsOver(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg, WithStorage(syncFailsFor{name: "/" + spareName}))
	i := 0
	rollOnce(t, q, &i)
	q.removeSegments()
	if _, err := os.Stat(filepath.Join(cfg.Dir, spareName)); err != nil {
		t.Fatalf("no spare: %v", err)
	}
	rollOnce(t, q, &i)
	q.mu.Lock()
	active := q.activeSeq
	q.mu.Unlock()
	// (A freed inode's number can come back at once: the header, not the
	// inode, tells a new file from the spare.)
	b, err := os.ReadFile(segPath(cfg.Dir, active))
	must(t, err)
	if h, err := decodeSegHeader(b); err != nil || h.recycled || h.seq != active {
		t.Errorf("the new segment's header %+v (%v): want a new file's", h, err)
	}
	id := enqueue(t, q, testEnvelope("d@x.jp"), msgData(77, 2500))
	if got := readAll(t, q, id); !bytes.Equal(got, msgData(77, 2500)) {
		t.Error("a message after the failed reuse reads back wrong")
	}
}
