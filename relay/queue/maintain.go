package queue

import (
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// maintInterval paces the maintenance loop: control commands, removal of
// finished segments and large files, compaction.
const maintInterval = 250 * time.Millisecond

// Compaction copies at most this much per pass, so it never competes long
// with new mail for the committer.
const compactBudget = 16 << 20

func (q *Spool) start() {
	go q.commitLoop()
	go q.maintLoop()
}

func (q *Spool) maintLoop() {
	defer close(q.maintDone)
	t := time.NewTicker(maintInterval)
	defer t.Stop()
	for {
		select {
		case <-q.stopMaint:
			return
		case <-t.C:
			q.processControl()
		case <-q.maintKick:
		}
		q.removeTrash()
		q.removeSegments()
		q.compact()
	}
}

// removeTrash removes the large files of finished messages. Their records
// already say they are finished, so a crash before this only leaves files
// that the next Open removes.
func (q *Spool) removeTrash() {
	q.mu.Lock()
	trash := q.trash
	q.trash = nil
	q.mu.Unlock()
	for _, t := range trash {
		path := filepath.Join(q.cfg.Dir, blobDir, blobName(t.id))
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			q.log.Warn("queue: removing a finished message's file", "path", path, "err", err)
			continue
		}
		q.mu.Lock()
		q.diskBytes -= t.size
		q.mu.Unlock()
	}
}

// lowWaterLocked is the oldest segment that must be kept: the oldest one
// holding a live message's record in force, or the active one.
func (q *Spool) lowWaterLocked() uint64 {
	low := q.activeSeq
	if low == 0 {
		low = q.nextSeq
	}
	for seq, s := range q.segs {
		if s.live > 0 && seq < low {
			low = seq
		}
	}
	return low
}

// removeSegments removes the segments older than every live message's
// record, oldest first, making each removal durable before the next. The
// log on disk is thus always a suffix of the log written: a record saying
// a message is finished never disappears while the message's own record
// survives, so nothing finished comes back after a crash.
func (q *Spool) removeSegments() {
	q.removeMu.Lock() // one at a time: each may keep a segment as the spare
	defer q.removeMu.Unlock()
	q.mu.Lock()
	low := q.lowWaterLocked()
	var old []uint64
	for seq := range q.segs {
		if seq < low {
			old = append(old, seq)
		}
	}
	q.mu.Unlock()
	sort.Slice(old, func(i, j int) bool { return old[i] < old[j] })
	for _, seq := range old {
		path := segPath(q.cfg.Dir, seq)
		if q.keepSpare(seq, path) {
			// renamed: the directory sync below makes it so
		} else if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			q.log.Warn("queue: removing a finished segment", "segment", path, "err", err)
			return
		}
		if err := safeio.SyncDir(q.cfg.Dir); err != nil {
			q.log.Warn("queue: fsync after removing a segment", "dir", q.cfg.Dir, "err", err)
			return
		}
		q.mu.Lock()
		if s := q.segs[seq]; s != nil {
			q.diskBytes -= s.size
			if s.rd != nil {
				s.rd.releaseLocked() // its readers keep it open
			}
			delete(q.segs, seq)
		}
		q.mu.Unlock()
	}
}

// compact copies forward the few live messages that pin the oldest
// segment, once it has been sealed for CompactAfter (sooner when the spool
// is three-quarters full) and at least half of it is dead. A mostly live
// segment is left alone: copying it would gain little, and it frees itself
// as its messages are delivered.
func (q *Spool) compact() {
	type job struct {
		id      ID
		seq     uint64
		off, n  int64
		blob    bool
		entry   *entry
		payload []byte
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	oldest := uint64(0)
	for seq := range q.segs {
		if oldest == 0 || seq < oldest {
			oldest = seq
		}
	}
	s := q.segs[oldest]
	now := q.now()
	pressure := q.diskBytes > int64(q.cfg.MaxBytes)/4*3
	if s == nil || oldest == q.activeSeq || s.live == 0 || s.sealedAt.IsZero() ||
		(!pressure && now.Sub(s.sealedAt) < q.cfg.CompactAfter) || s.liveBytes*2 > s.size {
		q.mu.Unlock()
		return
	}
	var jobs []job
	budget := int64(compactBudget)
	for _, e := range q.msgs {
		if e.seg != oldest || e.inflight > 0 {
			continue
		}
		j := job{id: e.id, seq: e.seg, blob: e.blob, entry: e}
		if !e.blob {
			j.off, j.n = e.dataOff, e.env.Size
		}
		jobs = append(jobs, j)
		if budget -= e.recLen; budget <= 0 {
			break
		}
	}
	q.mu.Unlock()

	for i := range jobs {
		j := &jobs[i]
		if j.blob {
			continue
		}
		b, err := q.readInline(j.seq, j.off, j.n)
		if err != nil {
			q.log.Warn("queue: compaction could not read a message", "id", j.id, "err", err)
			jobs[i].entry = nil
			continue
		}
		j.payload = b
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	copied := 0
	for _, j := range jobs {
		e := j.entry
		if e == nil || q.msgs[j.id] != e || e.seg != j.seq || e.inflight > 0 {
			continue // finished, moved or changing meanwhile: next pass
		}
		r := &record{typ: recMessage, id: e.id, held: e.held, env: e.env,
			states: append([]RcptState(nil), e.rcpts...), blob: e.blob, dataLen: e.env.Size}
		body := appendMessageHead(nil, r)
		if !e.blob {
			body = append(body, j.payload...)
			r.dataStart = len(body) - len(j.payload)
		}
		q.submitLocked(&commitReq{rec: r, body: body, touch: []ID{e.id}})
		copied++
	}
	if copied > 0 {
		q.log.Info("queue: compacting", "segment", segName(oldest), "messages", copied)
	}
}
