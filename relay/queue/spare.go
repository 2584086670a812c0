package queue

import (
	"io"
	"os"
	"path/filepath"
)

// spareName is a finished segment kept to be the next one (see keepSpare).
// It is not a segment name: recovery does not read it.
const spareName = "spare"

// keepSpare renames a finished segment to the spare instead of removing
// it, when no spare is kept yet and nothing reads the segment any more,
// and reports whether it did. Called by removeSegments, which syncs the
// directory after it.
//
// A new segment grows by writing zeros ahead of its records (see
// zeroAhead): at 100 KiB a message that is as many bytes of zeros copied
// into the page cache and written to disk again as of mail. A finished
// segment's blocks are written already: the next segment made from it is
// overwritten in place, and its fdatasyncs stay the cheap ones without
// any zeros. Its old records stay behind the new ones, and cannot pass for
// them: every record's checksum covers its segment's number.
//
// An open reader (a delivery still sending a message that was copied
// forward, see Open) would read the new records instead of the old, so a
// segment someone reads is removed, as before, and its inode outlives it.
// (A read-only view in another process, `sekisho queue` on a live spool,
// is not counted: a message finished and recycled between its open and
// its read shows the new bytes there. It reads, never delivers.)
func (q *Spool) keepSpare(seq uint64, path string) bool {
	if q.readOnly {
		return false
	}
	q.mu.Lock()
	s := q.segs[seq]
	ok := !q.spare && s != nil && (s.rd == nil || s.rd.refs == 1)
	if ok {
		q.spare = true // taken: a second segment finished now is removed
	}
	q.mu.Unlock()
	if !ok {
		return false
	}
	if st, err := os.Stat(path); err != nil || st.Size() < int64(q.cfg.SegmentSize)/2 {
		// A segment sealed early (a restart, a write error) is small:
		// not worth keeping.
		q.setSpare(false)
		return false
	}
	if err := os.Rename(path, filepath.Join(q.cfg.Dir, spareName)); err != nil {
		q.log.Debug("queue: keeping a finished segment for reuse failed; removing it", "segment", path, "err", err)
		q.setSpare(false)
		return false
	}
	return true
}

func (q *Spool) setSpare(v bool) {
	q.mu.Lock()
	q.spare = v
	q.mu.Unlock()
}

// reuseSpare makes the spare segment seq, with hdr (marked recycled) as
// its header, and returns it open for appending after the header, with the
// length the file has already; nil when there is no spare or it cannot be
// used (it is then removed, and roll creates a file as before). The header
// is written and synced before the rename: a crash never leaves a file
// with a segment's name and another segment's header.
func (q *Spool) reuseSpare(seq uint64, hdr []byte) (*os.File, int64) {
	q.mu.Lock()
	ok := q.spare
	q.spare = false
	q.mu.Unlock()
	if !ok {
		return nil, 0
	}
	sp := filepath.Join(q.cfg.Dir, spareName)
	f, size, err := rewriteSpare(q.storage, sp, hdr)
	if err == nil {
		err = os.Rename(sp, segPath(q.cfg.Dir, seq))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(sp)
		q.log.Debug("queue: reusing a finished segment failed; creating one", "err", err)
		return nil, 0
	}
	return f, size
}

func rewriteSpare(st Storage, path string, hdr []byte) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err == nil {
		_, err = st.Write(f, [][]byte{hdr}) // at the file position: byte 0
	}
	if err == nil {
		err = st.Sync(f)
	}
	if err == nil {
		_, err = f.Seek(int64(len(hdr)), io.SeekStart)
	}
	if err != nil {
		return f, 0, err
	}
	return f, info.Size(), nil
}

// findSpare notes a spare left by an earlier run (recovery).
func (q *Spool) findSpare() {
	if st, err := os.Lstat(filepath.Join(q.cfg.Dir, spareName)); err == nil && st.Mode().IsRegular() {
		q.spare = true
	}
}
