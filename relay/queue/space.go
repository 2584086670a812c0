package queue

import (
	"fmt"
	"time"
)

// spaceCheckEvery paces statfs: between checks the free space is estimated
// from the spool's own growth, so Enqueue costs no system call.
const spaceCheckEvery = time.Second

// spaceCheck keeps new mail out of the space that state records need: a
// delivery result or a bounce that cannot be written is what starts a
// delivery storm, so results must always find room. Guarded by q.mu.
type spaceCheck struct {
	known   bool      // a statfs has succeeded
	checked time.Time // when
	free    int64     // bytes free then
	disk    int64     // q.diskBytes then
	reserve int64     // the reserve in force
}

// estimate is the free space now: what statfs said, less what the spool
// has written since.
func (s *spaceCheck) estimate(disk int64) int64 {
	if !s.known {
		return -1
	}
	return s.free - max(0, disk-s.disk)
}

// autoReserve is the default reserve: the larger of 64 MiB and 2 % of the
// file system, but never more than a quarter of it (a small test file
// system would otherwise refuse everything).
func autoReserve(total int64) int64 {
	r := max(int64(64<<20), total/50)
	return min(r, total/4)
}

// spaceFree returns the free space and the reserve, refreshing the
// statfs figure when it is old or when the estimate is near the reserve
// (so a freed disk is noticed within a tenth of spaceCheckEvery). ok is
// false when the file system cannot tell. Called with q.mu held.
func (q *Spool) spaceFree(now time.Time) (free, reserve int64, ok bool) {
	s := &q.space
	age := now.Sub(s.checked)
	if age >= spaceCheckEvery || (s.known && s.estimate(q.diskBytes) < 2*s.reserve && age >= spaceCheckEvery/10) {
		s.checked = now
		free, total, err := fsSpace(q.cfg.Dir)
		if err != nil {
			// No figure: the reserve cannot be enforced, and the write
			// itself reports a full disk.
			s.known = false
			return 0, 0, false
		}
		s.known, s.free, s.disk = true, free, q.diskBytes
		s.reserve = int64(q.cfg.Reserve)
		if s.reserve == 0 {
			s.reserve = autoReserve(total)
		}
	}
	if !s.known {
		return 0, 0, false
	}
	return s.estimate(q.diskBytes), s.reserve, true
}

// errLowSpace is the ErrFull of a file system below the reserve.
func errLowSpace(free, reserve int64) error {
	return fmt.Errorf("%w: %s free on the spool's file system, below the %s kept for delivery results",
		ErrFull, ByteSize(max(free, 0)), ByteSize(reserve))
}
