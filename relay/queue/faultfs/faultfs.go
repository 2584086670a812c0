// Package faultfs is a queue.Storage that fails on command: ENOSPC or EIO
// on the Nth write, short writes, failing fsyncs, or a disk that stays
// broken until healed. It drives the spool and the delivery runner through
// the failures of the spool's fault model in tests.
package faultfs

import (
	"bytes"
	"os"
	"sync"
)

// Disk writes and syncs real files until told to fail. The zero value
// passes everything through. It is safe for concurrent use.
type Disk struct {
	mu     sync.Mutex
	writes int // writes seen
	syncs  int // syncs seen
	failed int // calls made to fail

	// One-shot faults: the Nth call from when they were set.
	writeAt, syncAt   int
	writeErr, syncErr error
	writeShort        bool
	// A lasting fault: every write and sync fails until Heal.
	down      error
	downShort bool
}

// FailWrite makes the nth write from now (1 is the next one) fail with
// err. With short, half of the bytes reach the file first, as when a disk
// fills up in the middle of a write.
func (d *Disk) FailWrite(n int, err error, short bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeAt, d.writeErr, d.writeShort = d.writes+n, err, short
}

// FailSync makes the nth fsync from now fail with err (the data written
// before it may or may not be on the disk).
func (d *Disk) FailSync(n int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncAt, d.syncErr = d.syncs+n, err
}

// Break makes every write and fsync fail with err until Heal: a full or
// dead disk. With short, each write puts half its bytes into the file.
func (d *Disk) Break(err error, short bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down, d.downShort = err, short
}

// Heal ends Break and cancels the one-shot faults not yet fired.
func (d *Disk) Heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down, d.writeErr, d.syncErr = nil, nil, nil
}

// Counts returns the writes and syncs seen and how many of all those
// calls were made to fail.
func (d *Disk) Counts() (writes, syncs, failed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes, d.syncs, d.failed
}

// Write implements queue.Storage: the buffers are written as one.
func (d *Disk) Write(f *os.File, bufs [][]byte) (int, error) {
	b := bytes.Join(bufs, nil)
	d.mu.Lock()
	d.writes++
	var err error
	short := false
	switch {
	case d.down != nil:
		err, short = d.down, d.downShort
	case d.writeErr != nil && d.writes == d.writeAt:
		err, short = d.writeErr, d.writeShort
		d.writeErr = nil
	}
	if err != nil {
		d.failed++
	}
	d.mu.Unlock()
	if err == nil {
		return f.Write(b)
	}
	if short && len(b) > 1 {
		n, werr := f.Write(b[:len(b)/2])
		if werr != nil {
			return n, werr
		}
		return n, err
	}
	return 0, err
}

// Zero implements queue.Storage. It is not counted among the writes (the
// spool zeroes ahead of its records when it likes, which would shift the
// Nth write of a test); only a broken disk fails it.
func (d *Disk) Zero(f *os.File, off, n int64) error {
	d.mu.Lock()
	err := d.down
	if err != nil {
		d.failed++
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// Sync implements queue.Storage.
func (d *Disk) Sync(f *os.File) error {
	d.mu.Lock()
	d.syncs++
	var err error
	switch {
	case d.down != nil:
		err = d.down
	case d.syncErr != nil && d.syncs == d.syncAt:
		err = d.syncErr
		d.syncErr = nil
	}
	if err != nil {
		d.failed++
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Sync()
}
