package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// onlySegment returns the path of the spool's single segment.
func onlySegment(t *testing.T, dir string) (string, uint64) {
	t.Helper()
	seqs, err := listSegments(dir)
	must(t, err)
	if len(seqs) != 1 {
		t.Fatalf("%d segments, want 1", len(seqs))
	}
	return segPath(dir, seqs[0]), seqs[0]
}

func recordOffsets(t *testing.T, path string, seq uint64) []int64 {
	t.Helper()
	var offs []int64
	res, err := scanSegment(path, seq, func(_ *record, off, _ int64) { offs = append(offs, off) })
	must(t, err)
	return append(offs, res.end)
}

// TestTruncatedTail cuts the segment at every byte of its last record, as
// a crash in the middle of writing it would, and checks that recovery
// keeps every earlier record and nothing of the torn one.
func TestTruncatedTail(t *testing.T) {
	for _, last := range []string{"message", "state"} {
		t.Run(last, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			q := openTest(t, cfg)
			a := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 400))
			enqueue(t, q, testEnvelope("c@x.jp"), msgData(2, 9000)) // large: file of its own
			must(t, q.MarkDeferred(a, 1, time.Now().Add(time.Hour), "451 later"))
			before := q.List()
			var lastID ID
			if last == "message" {
				lastID = enqueue(t, q, testEnvelope("d@x.jp", "e@x.jp"), msgData(3, 300))
			} else {
				must(t, q.MarkDelivered(a, 0))
			}
			after := q.List()
			must(t, q.Close())

			path, seq := onlySegment(t, cfg.Dir)
			offs := recordOffsets(t, path, seq)
			start, end := offs[len(offs)-2], offs[len(offs)-1]
			if end-start < 20 {
				t.Fatalf("last record only %d bytes", end-start)
			}
			for cut := end; cut >= start; cut-- {
				must(t, os.Truncate(path, cut))
				v := recoverOnly(t, cfg)
				want := before
				if cut == end {
					want = after
				}
				sameMessages(t, v.List(), want)
				if _, err := v.Get(lastID); lastID != 0 && cut < end && err == nil {
					t.Fatalf("cut at %d: torn message %s recovered", cut, lastID)
				}
				probs := v.Recovery().Problems
				if torn := cut > start && cut < end; torn != (len(probs) == 1) {
					t.Fatalf("cut at %d: problems %q", cut, probs)
				}
			}

			// A torn tail does not stop the spool: new records go to a new
			// segment and everything survives the next reopen.
			must(t, os.Truncate(path, start+(end-start)/2))
			q = openTest(t, cfg)
			sameMessages(t, q.List(), before)
			n := enqueue(t, q, testEnvelope("f@x.jp"), msgData(4, 100))
			must(t, q.Close())
			q = openTest(t, cfg)
			if _, err := q.Get(n); err != nil {
				t.Fatalf("message written after a torn tail: %v", err)
			}
			if got := len(q.List()); got != len(before)+1 {
				t.Fatalf("%d messages, want %d", got, len(before)+1)
			}
		})
	}
}

// TestGarbageTail: bytes after the last record that are not a valid frame
// for this segment (random bytes, or a valid frame of another segment that
// surfaced after a crash) are ignored and reported; zeros are the space
// written ahead of the records and are not a problem.
func TestGarbageTail(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 200))
	want := q.List()
	must(t, q.Close())
	path, seq := onlySegment(t, cfg.Dir)
	body := appendSmall(nil, &record{typ: recDelete, id: want[0].ID})
	for name, tail := range map[string][]byte{
		"zeros":         make([]byte, 100),
		"random":        []byte("\x17\x00\x00\x00garbage that is not a record at all"),
		"other segment": appendFrame(nil, seq+1, body),
		"huge length":   {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4},
	} {
		fi, err := os.Stat(path)
		must(t, err)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		f.Write(tail)
		f.Close()
		v := recoverOnly(t, cfg)
		sameMessages(t, v.List(), want)
		want := 1
		if name == "zeros" {
			want = 0
		}
		if len(v.Recovery().Problems) != want {
			t.Errorf("%s: problems %q, want %d", name, v.Recovery().Problems, want)
		}
		must(t, os.Truncate(path, fi.Size()))
	}
}

// TestDamagedSegments: damage inside a segment loses only the damaged
// record (a flipped byte in its body, or in its length field, after which
// recovery resynchronizes on the next valid frame); a damaged header does
// not hide checksummed records; a header torn while the newest segment
// was being created is removed quietly; a file with no valid record is set
// aside and reported.
func TestDamagedSegments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, offs []int64) // of the first segment
		lost   []int                                         // indexes of messages lost
		report string
	}{
		{"flipped body byte", func(t *testing.T, path string, offs []int64) { flip(t, path, offs[3]+20) },
			[]int{3}, "checksum mismatch at byte"},
		{"flipped length byte", func(t *testing.T, path string, offs []int64) { flip(t, path, offs[3]+2) },
			[]int{3}, "records resume at byte"},
		{"two damaged records", func(t *testing.T, path string, offs []int64) {
			flip(t, path, offs[2]+30)
			flip(t, path, offs[7]+1)
		}, []int{2, 7}, "the records after them were read"},
		{"damaged header", func(t *testing.T, path string, _ []int64) { flip(t, path, 10) },
			nil, "damaged header (header checksum mismatch)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			q := openTest(t, cfg)
			var ids []ID
			for i := range 80 { // about three segments
				ids = append(ids, enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 2048)))
			}
			must(t, q.Close())
			seqs, err := listSegments(cfg.Dir)
			must(t, err)
			if len(seqs) < 3 {
				t.Fatalf("%d segments, want at least 3", len(seqs))
			}
			first := segPath(cfg.Dir, seqs[0])
			tc.damage(t, first, recordOffsets(t, first, seqs[0]))
			// The newest segment was being created at the crash.
			torn := segPath(cfg.Dir, seqs[len(seqs)-1]+1)
			must(t, os.WriteFile(torn, []byte("SKSQ\x01"), 0o640))

			q = openTest(t, cfg)
			got := map[ID]bool{}
			for _, m := range q.List() {
				got[m.ID] = true
			}
			lost := map[int]bool{}
			for _, i := range tc.lost {
				lost[i] = true
			}
			for i, id := range ids {
				if got[id] == lost[i] {
					t.Errorf("message %d (%s): present %v, want %v", i, id, got[id], !lost[i])
				}
			}
			probs := strings.Join(q.Recovery().Problems, "\n")
			if !strings.Contains(probs, tc.report) || strings.Contains(probs, segName(seqs[len(seqs)-1]+1)) {
				t.Errorf("problems:\n%s\nwant %q", probs, tc.report)
			}
			if _, err := os.Stat(torn); !os.IsNotExist(err) {
				t.Errorf("torn newest segment not removed: %v", err)
			}
			if _, err := os.Stat(first); err != nil {
				t.Errorf("the damaged segment is gone: %v", err)
			}
			must(t, q.Close())
		})
	}

	t.Run("no valid record", func(t *testing.T) {
		cfg := testConfig(t.TempDir())
		q := openTest(t, cfg)
		for i := range 80 {
			enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 2048))
		}
		must(t, q.Close())
		seqs, err := listSegments(cfg.Dir)
		must(t, err)
		mid := segPath(cfg.Dir, seqs[1])
		must(t, os.WriteFile(mid, []byte("not a segment header, but long enough to be more than one"), 0o640))
		q = openTest(t, cfg)
		if probs := strings.Join(q.Recovery().Problems, "\n"); !strings.Contains(probs, "set aside") {
			t.Errorf("problems:\n%s", probs)
		}
		if _, err := os.Stat(mid + ".corrupt"); err != nil {
			t.Errorf("damaged segment not set aside: %v", err)
		}
	})
}

// flip inverts one byte of a file.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// The same torn tail is reported in the same words at every start, though
// the segment is the newest at the first start and not at the next.
func TestTornTailReportedAlike(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 300))
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(2, 300))
	must(t, q.Close())
	path, seq := onlySegment(t, cfg.Dir)
	offs := recordOffsets(t, path, seq)
	must(t, os.Truncate(path, offs[1]+10))
	var reports []string
	for i := range 3 {
		q = openTest(t, cfg)
		reports = append(reports, strings.Join(q.Recovery().Problems, "\n"))
		enqueue(t, q, testEnvelope("a@x.jp"), msgData(10+i, 300)) // a new segment each time
		must(t, q.Close())
	}
	if reports[0] == "" || reports[1] != reports[0] || reports[2] != reports[0] {
		t.Errorf("the same tail reported differently:\n%s", strings.Join(reports, "\n---\n"))
	}
}

func TestOrphanLargeFilesRemoved(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	id := enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 9000))
	must(t, q.Close())
	orphan := filepath.Join(cfg.Dir, blobDir, blobName(id+5))
	must(t, os.WriteFile(orphan, []byte("never committed"), 0o640))
	q = openTest(t, cfg)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan large file kept: %v", err)
	}
	if got := readAll(t, q, id); len(got) != 9000 {
		t.Errorf("live large message: %d bytes", len(got))
	}
	must(t, q.Close())
	must(t, os.Remove(filepath.Join(cfg.Dir, blobDir, blobName(id))))
	q = openTest(t, cfg)
	if probs := strings.Join(q.Recovery().Problems, "\n"); !strings.Contains(probs, "missing") {
		t.Errorf("missing large file not reported: %q", probs)
	}
}

// TestStorageFaultRepair: a write or fsync that fails after the bytes
// reached the file (the worst case) must not resurrect anything on replay.
func TestStorageFaultRepair(t *testing.T) {
	for _, op := range []string{"write", "fsync"} {
		t.Run(op, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			q := openTest(t, cfg)
			a := enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), msgData(1, 500))
			boom := errors.New("injected I/O error")
			fail := func(o string) error {
				if o == op {
					return boom
				}
				return nil
			}
			q.testFault.Store(&fail)
			_, err := q.Enqueue(testEnvelope("c@x.jp"), strings.NewReader("lost"))
			var se *StorageError
			if !errors.As(err, &se) || !errors.Is(err, boom) || !Temporary(err) {
				t.Fatalf("Enqueue under fault: %v", err)
			}
			if _, err := q.Enqueue(testEnvelope("c@x.jp"), strings.NewReader(string(msgData(7, 9000)))); !errors.As(err, &se) {
				t.Fatalf("large Enqueue under fault: %v", err)
			}
			if err := q.MarkDelivered(a, 0); !errors.As(err, &se) {
				t.Fatalf("MarkDelivered under fault: %v", err)
			}
			if _, err := q.EnqueueDSN(testEnvelope("s@x.jp"), strings.NewReader("bounce"), a,
				[]Mark{{Rcpt: 1, Status: Failed, Reason: "550 no"}}); !errors.As(err, &se) {
				t.Fatalf("EnqueueDSN under fault: %v", err)
			}
			q.testFault.Store(nil)
			b := enqueue(t, q, testEnvelope("d@x.jp"), msgData(2, 100))
			want := q.List()
			if len(want) != 2 || want[0].ID != a || want[1].ID != b || want[0].Rcpts[0].Status != Pending {
				t.Fatalf("memory after the faults: %+v", want)
			}
			must(t, q.Close())
			seqs, _ := listSegments(cfg.Dir)
			if len(seqs) < 2 {
				t.Fatalf("segment not abandoned after the fault: %v", seqs)
			}
			if left, _ := os.ReadDir(filepath.Join(cfg.Dir, blobDir)); len(left) != 0 {
				t.Errorf("large file of the failed message left: %v", left)
			}
			q = openTest(t, cfg)
			sameMessages(t, q.List(), want)
		})
	}
}

// TestSegmentsRemovedAndCompacted: finished segments go; an old segment
// pinned by one waiting message is compacted away, and the message keeps
// its data and state.
func TestSegmentsRemovedAndCompacted(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CompactAfter = time.Millisecond
	q := openTest(t, cfg)
	pinned := enqueue(t, q, testEnvelope("slow@x.jp", "fast@x.jp"), msgData(0, 1500))
	must(t, q.MarkDelivered(pinned, 1))
	must(t, q.MarkDeferred(pinned, 0, time.Now().Add(time.Hour), "451 later"))
	for i := 1; i < 120; i++ {
		id := enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 2048))
		must(t, q.MarkDelivered(id, 0))
	}
	want := q.List()
	waitFor(t, func() bool { return q.Stats().Segments <= 2 })
	if m, _ := q.Get(pinned); m.Rcpts[0].Status != Deferred {
		t.Fatalf("pinned message state after compaction: %+v", m.Rcpts)
	}
	if got := readAll(t, q, pinned); string(got) != string(msgData(0, 1500)) {
		t.Fatalf("pinned message data after compaction differs")
	}
	must(t, q.Close())
	q = openTest(t, cfg)
	sameMessages(t, q.List(), want)
	if got := readAll(t, q, pinned); string(got) != string(msgData(0, 1500)) {
		t.Fatalf("pinned message data after reopen differs")
	}
}

// TestNewerFormatRefused: a segment of another format version stops Open
// instead of being set aside, so a downgrade cannot strand messages.
func TestNewerFormatRefused(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	enqueue(t, q, testEnvelope("a@x.jp"), msgData(1, 100))
	must(t, q.Close())
	path, _ := onlySegment(t, cfg.Dir)
	b, err := os.ReadFile(path)
	must(t, err)
	b[4] = 2 // version 2, with a checksum to match
	copy(b[24:28], frameChecksumHeader(b[:24]))
	must(t, os.WriteFile(path, b, 0o640))
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "format version 2") {
		t.Fatalf("Open of a newer spool: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("segment moved: %v", err)
	}
}

func frameChecksumHeader(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))
}
