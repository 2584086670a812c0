package queue

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// makeUnwritable stops new files in dir: chmod for ordinary users; root
// ignores modes, so the immutable attribute (chattr +i) for root. It
// returns a function that undoes it, or skips the test when neither works.
func makeUnwritable(t *testing.T, dir string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		must(t, os.Chmod(dir, 0o500))
		undo := func() { os.Chmod(dir, 0o750) }
		t.Cleanup(undo)
		return undo
	}
	if err := exec.Command("chattr", "+i", dir).Run(); err != nil {
		t.Skipf("running as root and chattr +i is unavailable (%v): cannot make a directory unwritable", err)
	}
	undo := func() { exec.Command("chattr", "-i", dir).Run() }
	t.Cleanup(undo)
	return undo
}

// TestUnwritableDirectory: when the spool directory stops accepting new
// files, Enqueue fails with a temporary StorageError as soon as it needs a
// new segment; every message accepted before stays; once the directory is
// writable again the spool carries on by itself.
func TestUnwritableDirectory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	var acked []ID
	for i := range 5 {
		acked = append(acked, enqueue(t, q, testEnvelope("a@x.jp"), msgData(i, 2048)))
	}
	undo := makeUnwritable(t, cfg.Dir)
	var failure error
	for i := 0; i < 200 && failure == nil; i++ {
		id, err := q.Enqueue(testEnvelope("a@x.jp"), bytes.NewReader(msgData(100+i, 2048)))
		if err != nil {
			failure = err
			break
		}
		acked = append(acked, id)
	}
	var se *StorageError
	if !errors.As(failure, &se) || !Temporary(failure) {
		t.Fatalf("Enqueue into an unwritable directory: %v, want a *StorageError", failure)
	}
	// It keeps failing fast, without losing anything.
	if _, err := q.Enqueue(testEnvelope("a@x.jp"), strings.NewReader("x")); !errors.As(err, &se) {
		t.Fatalf("second Enqueue: %v", err)
	}
	undo()
	acked = append(acked, enqueue(t, q, testEnvelope("a@x.jp"), msgData(999, 2048)))
	must(t, q.Close())

	q = openTest(t, cfg)
	got := map[ID]bool{}
	for _, m := range q.List() {
		got[m.ID] = true
	}
	for _, id := range acked {
		if !got[id] {
			t.Errorf("acknowledged message %s lost", id)
		}
	}
	if len(got) != len(acked) {
		t.Errorf("%d messages after reopen, %d acknowledged", len(got), len(acked))
	}
}

// TestFullFilesystem fills a small tmpfs. With the reserve (the default)
// new mail is refused with ErrFull before the disk is full, and every
// delivery result can still be recorded afterwards: that is what keeps a
// full disk from turning into a delivery storm. Without a reserve (1 byte)
// the write itself fails with a temporary StorageError (ENOSPC). Either
// way nothing accepted is lost. It needs root to mount, and is skipped
// otherwise.
func TestFullFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	for _, tc := range []struct {
		name     string
		reserve  ByteSize
		reserved bool
	}{
		{"default reserve", 0, true},
		{"no reserve", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", mnt).Run() })
			cfg := testConfig(mnt)
			cfg.Reserve = tc.reserve
			q := openTest(t, cfg)
			var acked []ID
			var failure error
			for i := 0; i < 1000; i++ {
				size := 2048
				if i%10 == 9 {
					size = 9000 // a large message: its own file
				}
				id, err := q.Enqueue(testEnvelope("a@x.jp"), bytes.NewReader(msgData(i, size)))
				if err != nil {
					failure = err
					break
				}
				acked = append(acked, id)
			}
			var se *StorageError
			switch {
			case !Temporary(failure):
				t.Fatalf("Enqueue on a full file system: %v, want a temporary error", failure)
			case tc.reserved && (!errors.Is(failure, ErrFull) || q.Health().Free < 0):
				t.Fatalf("Enqueue with a reserve: %v (health %+v), want ErrFull and a free-space figure", failure, q.Health())
			case !tc.reserved && !errors.As(failure, &se):
				t.Fatalf("Enqueue without a reserve: %v, want a *StorageError", failure)
			}
			if len(acked) < 20 {
				t.Fatalf("only %d messages before the disk was full", len(acked))
			}
			if tc.reserved {
				// Results go into the reserve: every one is recorded.
				for i, id := range acked {
					if i%2 == 0 {
						must(t, q.MarkDeferred(id, 0, time.Now().Add(time.Hour), "451 4.4.1 try later"))
					}
				}
				if h := q.Health(); h.Failing {
					t.Fatalf("recording results into the reserve failed: %+v", h)
				}
			}
			q.Close()
			q = openTest(t, cfg)
			got := map[ID]bool{}
			for _, m := range q.List() {
				got[m.ID] = true
			}
			for _, id := range acked {
				if !got[id] {
					t.Errorf("acknowledged message %s lost", id)
				}
			}
			t.Logf("%d messages accepted before refusal (%v); all present after reopen", len(acked), failure)
		})
	}
}
