package queue

import (
	"os"
	"sync"
	"time"
)

// Storage is the seam under the committer: every append to a segment and
// every fdatasync of one goes through it, so tests can make the disk fail
// in exactly the ways the fault model (see the package documentation)
// describes: ENOSPC or EIO on the Nth write, a short write, a failing
// fsync. The default writes and syncs the file.
type Storage interface {
	// Write writes bufs, in order, at f's file position (the end of the
	// records) and returns how many bytes reached the file. It may
	// consume bufs.
	Write(f *os.File, bufs [][]byte) (int, error)
	// Zero writes n zero bytes at off, beyond the file position: the
	// space the next records will overwrite (see zeroAhead).
	Zero(f *os.File, off, n int64) error
	// Sync makes everything written to f durable.
	Sync(f *os.File) error
}

type osStorage struct{}

func (osStorage) Write(f *os.File, bufs [][]byte) (int, error) { return writeBuffers(f, bufs) }
func (osStorage) Zero(f *os.File, off, n int64) error          { return writeZeros(f, off, n) }
func (osStorage) Sync(f *os.File) error                        { return fdatasync(f) }

// zeros is the source of Zero's writes. Never written to, its pages stay
// the kernel's shared zero page: it costs no memory.
var zeros = make([]byte, zeroChunk)

// writeZeros writes n zero bytes at off.
func writeZeros(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// WithStorage replaces the segment writes and syncs, for fault-injection
// tests.
func WithStorage(s Storage) Option { return func(o *options) { o.storage = s } }

// Health is the spool's view of its disk right now.
type Health struct {
	// Failing is set from the first failed write or fsync until the next
	// one that succeeds.
	Failing bool
	Since   time.Time // when the current run of failures began
	Err     error     // the last storage error
	// LowSpace is set while the free space on the spool's file system is
	// below Config.Reserve: new mail is refused with ErrFull, results and
	// bounces are still written.
	LowSpace bool
	Free     int64 // bytes free on the file system at the last check (-1: unknown)
}

// health tracks the committer's storage errors and logs them at a bounded
// rate: the first of a run at once, then one line a minute with the count,
// and one line when the disk works again.
type health struct {
	mu       sync.Mutex
	failing  bool
	since    time.Time
	err      error
	failures int // in the current run
	logged   time.Time
	quiet    int // failures not logged since the last line
}

// storageLogEvery bounds the spool's storage error lines while a disk stays
// broken.
const storageLogEvery = time.Minute

func (q *Spool) noteStorage(err error) {
	h := &q.health
	now := q.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if h.failing {
			q.log.Warn("queue: storage works again", "failures", h.failures, "after", now.Sub(h.since).Round(time.Millisecond).String())
		}
		h.failing, h.err, h.failures, h.quiet = false, nil, 0, 0
		return
	}
	if !h.failing {
		h.failing, h.since = true, now
	}
	h.err = err
	h.failures++
	if h.failures == 1 || now.Sub(h.logged) >= storageLogEvery {
		q.log.Error("queue: storage error; new mail gets 452 4.3.1 and delivery results wait in memory until it clears",
			"err", err, "failures", h.failures, "not_logged", h.quiet, "since", h.since.Format(time.RFC3339))
		h.logged, h.quiet = now, 0
		return
	}
	h.quiet++
}

// Health reports whether the spool's disk currently fails and whether free
// space is below the reserve.
func (q *Spool) Health() Health {
	q.health.mu.Lock()
	h := Health{Failing: q.health.failing, Since: q.health.since, Err: q.health.err}
	q.health.mu.Unlock()
	q.mu.Lock()
	free, reserve, ok := q.spaceFree(q.now())
	h.Free, h.LowSpace = -1, ok && free < reserve
	if ok {
		h.Free = free
	}
	q.mu.Unlock()
	return h
}
