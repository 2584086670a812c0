package queue

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// Readers of messages in one segment share one descriptor, and a reader
// opened before its segment is removed still reads the whole message; the
// descriptor is closed when both the segment and its last reader are gone.
func TestSegmentReadersShareOneFile(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	a := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 2000))
	b := enqueue(t, q, testEnvelope("b@x.jp"), msgData(2, 2000))
	ra, err := q.Open(a)
	must(t, err)
	rb, err := q.Open(b)
	must(t, err)
	q.mu.Lock()
	seq := q.msgs[a].seg
	rd := q.segs[seq].rd
	refs := rd.refs
	q.mu.Unlock()
	if rd == nil || refs != 3 || ra.(*sectionFile).rd != rb.(*sectionFile).rd {
		t.Fatalf("segment reader %+v (refs %d): want one shared by both messages plus the segment's", rd, refs)
	}
	must(t, rb.Close())
	must(t, rb.Close()) // a second Close releases nothing
	if q.mu.Lock(); rd.refs != 2 {
		t.Errorf("after closing one reader twice: refs %d, want 2", rd.refs)
	}
	q.mu.Unlock()

	// Finish both and fill segments until the first one can go.
	must(t, q.MarkDelivered(a, 0))
	must(t, q.MarkDelivered(b, 0))
	for i := 0; ; i++ {
		id := enqueue(t, q, testEnvelope("c@x.jp"), msgData(3+i, 3000))
		must(t, q.MarkDelivered(id, 0))
		q.mu.Lock()
		rolled := q.activeSeq != seq
		q.mu.Unlock()
		if rolled {
			break
		}
	}
	q.removeSegments()
	if _, err := os.Stat(segPath(cfg.Dir, seq)); !os.IsNotExist(err) {
		t.Fatalf("finished segment still there: %v", err)
	}
	got, err := io.ReadAll(ra)
	must(t, err)
	if !bytes.Equal(got, msgData(1, 2000)) {
		t.Errorf("a reader opened before the segment was removed read %d bytes, not the message", len(got))
	}
	if q.mu.Lock(); rd.refs != 1 {
		t.Errorf("after the segment went: refs %d, want 1 (the open reader)", rd.refs)
	}
	q.mu.Unlock()
	must(t, ra.Close())
	if err := rd.f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("descriptor after the last reader closed: Close says %v, want it closed already", err)
	}
}
