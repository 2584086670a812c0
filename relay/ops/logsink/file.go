package logsink

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// file is a log file that Reopen replaces under the writers' feet. A write
// that fails (ENOSPC, EIO) loses those records, never the mail: the first
// failure of a run is reported on standard error, and the next success
// reports the recovery.
//
// A record is written at once when the file is quiet. While records keep
// coming (the last write was under busyGap ago) they are collected for up
// to flushDelay, or flushBytes, and written together: a busy gateway logs
// four lines a message, and one write(2) then carries dozens of them.
// Records arriving during a write are written by the writer in flight. So
// a line waits at most about a millisecond, and a kill -9 can lose at most
// the last millisecond of lines; Close writes everything. The buffer is
// bounded (maxPending): past it, writers wait for the disk instead of
// growing memory.
type file struct {
	mu        sync.Mutex
	idle      sync.Cond // signalled when a write finishes
	path      string
	f         *os.File
	report    io.Writer
	failed    atomic.Bool
	writing   bool // a goroutine is writing; others only append
	scheduled bool // a delayed write is due (timer)
	timer     *time.Timer
	lastWrite time.Time // when the last write ended
	pending   []byte    // records waiting for the writer
	spare     []byte    // the writer's previous buffer, reused
	writes    int       // write(2) calls made, for tests
}

const (
	busyGap    = time.Millisecond
	flushDelay = time.Millisecond
	flushBytes = 64 << 10
	// maxPending bounds the records waiting behind a slow write.
	maxPending = 1 << 20
)

func newFile(path string, report io.Writer) *file {
	f := &file{path: path, report: report}
	f.idle.L = &f.mu
	return f
}

func (f *file) Write(p []byte) (int, error) {
	f.mu.Lock()
	for (f.writing || f.scheduled) && len(f.pending)+len(p) > maxPending {
		f.idle.Wait()
	}
	if f.f == nil {
		f.mu.Unlock()
		return 0, os.ErrClosed
	}
	f.pending = append(f.pending, p...)
	switch {
	case f.writing:
		f.mu.Unlock()
		return len(p), nil
	case len(f.pending) < flushBytes && (f.scheduled || time.Since(f.lastWrite) < busyGap):
		if !f.scheduled {
			f.scheduled = true
			if f.timer == nil {
				f.timer = time.AfterFunc(flushDelay, f.flushDue)
			} else {
				f.timer.Reset(flushDelay)
			}
		}
		f.mu.Unlock()
		return len(p), nil
	}
	if err := f.writeLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushDue is the delayed write.
func (f *file) flushDue() {
	f.mu.Lock()
	f.scheduled = false
	if f.writing || len(f.pending) == 0 || f.f == nil {
		f.idle.Broadcast()
		f.mu.Unlock()
		return
	}
	f.writeLocked()
}

// writeLocked writes what is pending, and what arrives meanwhile, then
// unlocks f.mu. Called with f.mu held and no write in flight.
func (f *file) writeLocked() error {
	f.writing = true
	var err error
	for len(f.pending) > 0 && f.f != nil {
		buf, out := f.pending, f.f
		f.pending = f.spare[:0]
		f.mu.Unlock()
		_, werr := out.Write(buf)
		f.writes++ // only the writer (writing set) touches it
		f.noteResult(werr)
		if werr != nil {
			err = werr
		}
		f.mu.Lock()
		if cap(buf) <= flushBytes*2 {
			f.spare = buf[:0]
		} else {
			f.spare = nil // a burst behind a slow disk: give its memory back
		}
		f.idle.Broadcast()
	}
	f.writing = false
	f.lastWrite = time.Now()
	f.idle.Broadcast()
	f.mu.Unlock()
	return err
}

// noteResult reports the first failure of a run and the recovery.
func (f *file) noteResult(err error) {
	if err != nil {
		if !f.failed.Swap(true) {
			fmt.Fprintf(f.report, "log file %s: %v; records are lost until writes succeed again\n", f.path, err)
		}
	} else if f.failed.Swap(false) {
		fmt.Fprintf(f.report, "log file %s: writing again\n", f.path)
	}
}

func (f *file) Reopen() error {
	nf, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	// Records logged before the rotation belong in the old file: write
	// them there first.
	f.mu.Lock()
	for f.writing {
		f.idle.Wait()
	}
	if len(f.pending) > 0 && f.f != nil {
		f.writeLocked() // unlocks
		f.mu.Lock()
	}
	old := f.f
	f.f = nf
	f.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close writes the records still waiting and closes the file.
func (f *file) Close() error {
	f.mu.Lock()
	for f.writing {
		f.idle.Wait()
	}
	if f.timer != nil {
		f.timer.Stop()
	}
	f.scheduled = false
	if f.f == nil {
		f.mu.Unlock()
		return nil
	}
	if len(f.pending) > 0 {
		f.writeLocked() // unlocks
		f.mu.Lock()
	}
	err := f.f.Close()
	f.f = nil
	f.mu.Unlock()
	return err
}
