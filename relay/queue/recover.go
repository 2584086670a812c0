package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Recovery is what Open found in the spool.
type Recovery struct {
	Segments int // segment files read
	Records  int // valid records replayed
	Messages int // messages still queued
	// Problems lists what was discarded or is damaged, one line each: the
	// torn tail of the segment being written at a crash (expected, never
	// acknowledged), a segment abandoned after a write error, corruption,
	// a large-message file missing.
	Problems []string
}

// recover replays every segment in order. Only records with a valid frame
// count; a segment's tail after its first invalid frame was never
// acknowledged (see doc.go). In read-only mode nothing on disk changes.
func (q *Spool) recover() error {
	seqs, err := listSegments(q.cfg.Dir)
	if err != nil {
		return &StorageError{Op: "read directory", Path: q.cfg.Dir, Err: err}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.findSpare()
	q.replaying = true
	defer func() { q.replaying = false }()
	rec := &q.recovery
	for i, seq := range seqs {
		path := segPath(q.cfg.Dir, seq)
		last := i == len(seqs)-1
		info := &segInfo{}
		if st, err := os.Stat(path); err == nil {
			info.sealedAt = st.ModTime()
		}
		q.segs[seq] = info
		res, err := scanSegment(path, seq, func(r *record, off, n int64) {
			rec.Records++
			if r.about > q.lastID {
				q.lastID = r.about
			}
			q.apply(r, seq, off, n)
		})
		if errors.Is(err, errSegmentVersion) {
			return fmt.Errorf("%s: %w (was the spool written by a newer sekisho?)", path, err)
		}
		if err != nil {
			return &StorageError{Op: "read", Path: path, Err: err}
		}
		rec.Segments++
		info.size = res.size
		if res.freeTail {
			info.size = res.end // zeros written ahead, or a recycled file's old bytes: free space
		}
		q.diskBytes += info.size
		if res.header.idFloor > q.lastID {
			q.lastID = res.header.idFloor
		}
		for _, s := range res.skips {
			rec.Problems = append(rec.Problems, fmt.Sprintf("%s: skipped an unreadable record at %s", segName(seq), s))
		}
		if res.end == 0 || (res.headerBad != "" && res.records == 0) {
			q.badSegment(seq, path, res, info.size, last)
			continue
		}
		if res.headerBad != "" {
			rec.Problems = append(rec.Problems, fmt.Sprintf("%s: damaged header (%s); %d records read by their own checksums",
				segName(seq), res.headerBad, res.records))
		}
		for _, d := range res.damaged {
			rec.Problems = append(rec.Problems, fmt.Sprintf("%s: damaged records (%s); the records after them were read",
				segName(seq), d))
		}
		// A read-only view of a running spool sees the tail being written.
		// The wording depends only on the file, so the same tail is
		// reported the same way at every start.
		if res.end < res.size && !res.freeTail && !(q.readOnly && last) {
			rec.Problems = append(rec.Problems, fmt.Sprintf("%s: %d bytes from byte %d discarded (%s): written after the last acknowledged record of this segment (a crash or a write error), never acknowledged",
				segName(seq), res.size-res.end, res.end, res.stop))
		}
	}
	if len(seqs) > 0 {
		q.nextSeq = seqs[len(seqs)-1] + 1
	}
	if err := q.sweepBlobs(); err != nil {
		return err
	}
	rec.Messages = len(q.msgs)
	return nil
}

// badSegment deals with a segment whose header cannot be read. One that is
// the newest and no longer than a header, or only zeros, was being created
// at the crash: it never held a record and is removed. Anything else is
// kept aside under a .corrupt name for inspection and reported.
func (q *Spool) badSegment(seq uint64, path string, res scanResult, counted int64, last bool) {
	q.diskBytes -= counted
	delete(q.segs, seq)
	if last && (res.size <= segHeaderSize || res.blank) {
		if !q.readOnly {
			os.Remove(path)
		}
		return
	}
	why := res.stop
	if res.headerBad != "" {
		why = res.headerBad + ", and no valid record"
	}
	q.recovery.Problems = append(q.recovery.Problems,
		fmt.Sprintf("%s: unreadable (%s); %d bytes set aside as %s.corrupt (see sekisho queue salvage)", segName(seq), why, res.size, segName(seq)))
	if !q.readOnly {
		if err := os.Rename(path, path+".corrupt"); err != nil {
			q.recovery.Problems = append(q.recovery.Problems, fmt.Sprintf("%s: %v", segName(seq), err))
		}
	}
}

// sweepBlobs counts the large files of live messages and removes the rest:
// files of finished messages whose removal a crash interrupted, and files
// written for messages never committed.
func (q *Spool) sweepBlobs() error {
	dir := filepath.Join(q.cfg.Dir, blobDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return &StorageError{Op: "read directory", Path: dir, Err: err}
	}
	present := map[ID]bool{}
	for _, de := range ents {
		name := de.Name()
		id, perr := ParseID(strings.TrimSuffix(name, ".msg"))
		if e := q.msgs[id]; perr == nil && strings.HasSuffix(name, ".msg") && e != nil && e.blob {
			present[id] = true
			if fi, err := de.Info(); err == nil {
				q.diskBytes += fi.Size()
			}
			continue
		}
		if !q.readOnly {
			os.Remove(filepath.Join(dir, name))
		}
	}
	// A read-only view may race with the removal of a finished message's
	// file: only the owner reports missing files.
	for id, e := range q.msgs {
		if e.blob && !present[id] && !q.readOnly {
			q.recovery.Problems = append(q.recovery.Problems,
				fmt.Sprintf("message %s: its file %s is missing; it cannot be delivered", id, filepath.Join(blobDir, blobName(id))))
		}
	}
	return nil
}

func (q *Spool) logRecovery() {
	r := q.Recovery()
	q.log.Info("queue: spool recovered", "dir", q.cfg.Dir, "segments", r.Segments,
		"records", r.Records, "messages", r.Messages)
	for _, p := range r.Problems {
		q.log.Warn("queue: recovery", "problem", p)
	}
}
