package queue

import (
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// commitReq is one record waiting for the next group commit.
type commitReq struct {
	rec  *record
	body []byte
	// data follows body in the record: a new message's bytes as they
	// were read, written without being copied into the batch.
	data     [][]byte
	touch    []ID   // existing messages it is about: their inflight counts
	blobPath string // a new message's own file, to remove if the commit fails
	dropPath string // a file to remove once this record is durable
	resMsgs  int    // reservation released when the request is done
	resBytes int64
	done     chan error // nil for background records (copies, repairs)
	// lazy: the record may be answered once written, before an fsync
	// covers it (see lazySyncDelay).
	lazy bool
}

// lazySyncDelay bounds how long a lazy record (a recipient delivered) can
// stay written but not synced: the next batch that needs an fsync covers
// it, and an idle committer syncs after this long. A power loss in that
// window can only make the gateway deliver the message again (kill -9
// loses nothing: the page cache survives the process). Postfix, likewise,
// does not sync its "done" marks.
const lazySyncDelay = time.Second

// activeSeg is the segment being appended to.
type activeSeg struct {
	seq  uint64
	f    *os.File
	size int64 // the end of the records: the file position
	// zeroed is the end of the zero bytes written ahead of the records
	// (the file's length while it is past size); noZero stops zeroAhead
	// for this segment after a failure.
	zeroed int64
	noZero bool
}

// zeroChunk is how far ahead of the records zeroAhead writes zeros.
const zeroChunk = 1 << 20

// zeroAhead makes sure the bytes up to end exist on disk as zeros before
// records are written over them. An fdatasync after an append that grows
// the file must also write the inode (its size) and the block bitmaps,
// each its own disk write: on ext4 it costs twice the time and CPU of one
// that overwrites blocks already written, which then need only the data.
// So the segment grows a chunk of zeros at a time, and the fdatasync of
// most batches is the cheap one. Only the batch that grows the file pays
// the chunk, once per megabyte (a few hundred messages). A segment is never
// zeroed past SegmentSize: its last batches may grow it as before.
//
// The zeros are a hint, not state: a failure here (a full disk) leaves
// the batch to its own write, which reports the disk's state, and stops
// zeroing this segment. Zeros are only ever written beyond the records,
// so a failed or partial zeroing cannot touch a record. After a crash, a
// segment ends in zeros instead of at its last record; the scanner takes
// a tail of zeros as unused space (see scanSegment).
func (q *Spool) zeroAhead(a *activeSeg, end int64) {
	limit := int64(q.cfg.SegmentSize)
	if a.noZero || end <= a.zeroed || end > limit {
		return
	}
	from := max(a.zeroed, a.size)
	to := min((end+zeroChunk-1)/zeroChunk*zeroChunk, limit)
	err := q.storage.Zero(a.f, from, to-from)
	if f := q.testFault.Load(); err == nil && f != nil {
		err = (*f)("zero")
	}
	if err != nil {
		a.noZero = true
		q.log.Debug("queue: zeroing ahead of the records failed; the segment grows by appends", "segment", segName(a.seq), "err", err)
		return
	}
	a.zeroed = to
}

// submitLocked queues a request for the committer. Called with q.mu held,
// so the log order of records about one message is the order in which
// their callers decided on them.
func (q *Spool) submitLocked(req *commitReq) {
	for _, id := range req.touch {
		if e := q.msgs[id]; e != nil {
			e.inflight++
		}
	}
	q.cmu.Lock()
	q.pending = append(q.pending, req)
	q.cmu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// commitLoop is the group committer: it takes every request that arrived
// while the previous fsync ran, writes them with one write and makes them
// durable with one fdatasync.
func (q *Spool) commitLoop() {
	defer close(q.commitDone)
	failed := false
	var syncLater *time.Timer
	for {
		var retry, syncDue <-chan time.Time
		if failed {
			// After a storage error, repair records wait a little before
			// the next try, so a dead disk is not hammered; new requests
			// still try at once.
			retry = time.After(time.Second)
		}
		if q.unsynced {
			if syncLater == nil {
				syncLater = time.NewTimer(q.lazySync)
			}
			syncDue = syncLater.C
		} else if syncLater != nil {
			syncLater.Stop()
			syncLater = nil
		}
		select {
		case <-q.kick:
		case <-retry:
		case <-syncDue:
			syncLater = nil
			q.syncLazy()
			continue
		case <-q.stopCommit:
			q.drain()
			q.syncLazy()
			return
		}
		// Yield once before taking the batch: sessions whose data the
		// network has already delivered are runnable and about to submit,
		// and letting them run first puts them under this fsync instead of
		// the next. With nothing else runnable it returns at once. In the
		// load benchmark it cut fsyncs from 0.48 to 0.42 a message.
		runtime.Gosched()
		batch := q.take()
		if len(batch) == 0 {
			failed = false
			continue
		}
		failed = q.commit(batch) != nil
	}
}

func (q *Spool) take() []*commitReq {
	q.cmu.Lock()
	batch := q.pending
	q.pending = nil
	q.cmu.Unlock()
	return batch
}

// drain commits what is left at Close. Repairs that still cannot be
// written are given up: recovery reads the log as it is.
func (q *Spool) drain() {
	for range 2 {
		batch := q.take()
		if len(batch) == 0 {
			return
		}
		q.commit(batch)
	}
	if rest := q.take(); len(rest) > 0 {
		q.log.Error("queue: closing with records that could not be written", "records", len(rest))
		for _, req := range rest {
			if req.done != nil {
				req.done <- ErrClosed
			}
		}
	}
}

// commit writes and syncs a batch, applies it, and answers its callers.
func (q *Spool) commit(batch []*commitReq) error {
	seq, offs, wrote, err := q.writeBatch(batch)
	q.noteStorage(err)
	q.mu.Lock()
	results := make([]error, len(batch))
	for i, req := range batch {
		q.resMsgs -= req.resMsgs
		q.resBytes -= req.resBytes
		for _, id := range req.touch {
			if e := q.msgs[id]; e != nil {
				e.inflight--
			}
		}
		if err == nil {
			results[i] = q.apply(req.rec, seq, offs[i], offs[i+1]-offs[i])
		}
	}
	if err != nil && wrote {
		q.repair(batch)
	}
	q.mu.Unlock()
	for i, req := range batch {
		switch {
		case err != nil && !wrote && req.blobPath != "":
			os.Remove(req.blobPath) // nothing refers to it
		case err == nil && req.dropPath != "":
			os.Remove(req.dropPath) // the delete that disowns it is durable
		}
		if req.done != nil {
			if err != nil {
				req.done <- err
			} else {
				req.done <- results[i]
			}
		}
	}
	return err
}

// writeBatch appends the batch to the active segment (starting one if
// needed) and fdatasyncs it. offs[i] is where record i starts; offs[len]
// is the end. wrote says whether any byte may have reached the segment.
func (q *Spool) writeBatch(batch []*commitReq) (seq uint64, offs []int64, wrote bool, err error) {
	for _, req := range batch {
		if req.blobPath != "" {
			// The large files' names must be durable before the records
			// that refer to them.
			dir := filepath.Join(q.cfg.Dir, blobDir)
			if err := safeio.SyncDir(dir); err != nil {
				return 0, nil, false, q.storageFailure("fsync", dir, err)
			}
			break
		}
	}
	if q.active == nil || q.active.size >= int64(q.cfg.SegmentSize) {
		if err := q.roll(); err != nil {
			return 0, nil, false, err
		}
	}
	a := q.active
	// The frames and record heads go into one buffer (sized first, so
	// the slices taken of it stay valid), the messages' data as it is:
	// one writev for the batch.
	buf := q.batchBuf(batch)
	iov := q.iov[:0]
	offs = make([]int64, 0, len(batch)+1)
	pos := a.size
	for _, req := range batch {
		offs = append(offs, pos)
		start := len(buf)
		buf = appendFrame(buf, a.seq, req.body, req.data...)
		iov = append(iov, buf[start:])
		iov = append(iov, req.data...)
		pos += int64(len(buf)-start) + int64(partsLen(req.data))
	}
	offs = append(offs, pos)
	q.zeroAhead(a, pos)
	n, werr := q.storage.Write(a.f, iov)
	clear(iov) // no reference to the messages' buffers stays
	q.iov = iov[:0]
	if f := q.testFault.Load(); werr == nil && f != nil {
		werr = (*f)("write")
	}
	a.size += int64(n)
	q.mu.Lock()
	q.segs[a.seq].size = a.size
	q.diskBytes += int64(n)
	q.mu.Unlock()
	if werr != nil {
		return 0, nil, n > 0, q.poison("write", werr)
	}
	if allLazy(batch) {
		q.unsynced = true
		return a.seq, offs, true, nil
	}
	serr := q.storage.Sync(a.f)
	if f := q.testFault.Load(); serr == nil && f != nil {
		serr = (*f)("fsync")
	}
	if serr != nil {
		return 0, nil, true, q.poison("fsync", serr)
	}
	q.unsynced = false
	return a.seq, offs, true, nil
}

// allLazy says whether no record of the batch needs an fsync before its
// caller is answered.
func allLazy(batch []*commitReq) bool {
	for _, req := range batch {
		if !req.lazy || req.blobPath != "" || req.dropPath != "" {
			return false
		}
	}
	return true
}

// syncLazy makes the lazy records written since the last fsync durable. A
// failure abandons the segment like a failed batch: what it held that was
// synced stays valid, and the lazy records in doubt can only cost a
// message delivered twice.
func (q *Spool) syncLazy() {
	if !q.unsynced || q.active == nil {
		return
	}
	q.unsynced = false
	err := q.storage.Sync(q.active.f)
	if f := q.testFault.Load(); err == nil && f != nil {
		err = (*f)("fsync")
	}
	if err != nil {
		err = q.poison("fsync", err)
	}
	q.noteStorage(err)
}

// batchBuf returns the committer's write buffer, big enough for the
// frames and bodies of the batch (not their data). It is reused, unless a
// batch of large records made it huge.
func (q *Spool) batchBuf(batch []*commitReq) []byte {
	n := 0
	for _, req := range batch {
		n += frameSize + len(req.body)
	}
	if cap(q.wbuf) < n || cap(q.wbuf) > 8<<20 {
		q.wbuf = make([]byte, 0, max(n, 256<<10))
	}
	return q.wbuf[:0]
}

// roll seals the active segment and starts the next: create, write the
// header, fsync the directory. The header reaches the disk with the first
// batch's fdatasync.
func (q *Spool) roll() error {
	if a := q.active; a != nil {
		q.syncLazy() // a sealed segment is synced whole
		if a = q.active; a == nil {
			return q.roll() // the sync failed and abandoned it
		}
		a.f.Close()
		q.active = nil
		q.mu.Lock()
		q.segs[a.seq].sealedAt = q.now()
		q.activeSeq = 0
		q.mu.Unlock()
		q.kickMaint()
	}
	q.mu.Lock()
	seq := q.nextSeq
	q.nextSeq++
	header := segHeader{seq: seq, idFloor: q.lastID}
	q.mu.Unlock()
	path := segPath(q.cfg.Dir, seq)
	header.recycled = true
	f, zeroed := q.reuseSpare(seq, header.encode())
	if f == nil {
		header.recycled = false
		// Not O_APPEND: the records overwrite the zeros that zeroAhead
		// writes past them.
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
			return q.storageFailure("create", path, err)
		}
		safeio.ChownLikeParent(path)
		if _, err := q.storage.Write(f, [][]byte{header.encode()}); err != nil {
			f.Close()
			os.Remove(path)
			return q.storageFailure("write", path, err)
		}
	}
	if err := safeio.SyncDir(q.cfg.Dir); err != nil {
		f.Close()
		os.Remove(path)
		return q.storageFailure("fsync", q.cfg.Dir, err)
	}
	// A reused file's blocks up to its length exist: zeroAhead starts
	// after them.
	q.active = &activeSeg{seq: seq, f: f, size: segHeaderSize, zeroed: zeroed}
	q.mu.Lock()
	q.segs[seq] = &segInfo{size: segHeaderSize}
	q.diskBytes += segHeaderSize
	q.activeSeq = seq
	q.mu.Unlock()
	return nil
}

// poison abandons the active segment after a failed write or fsync: after
// an fsync error the kernel may have dropped the dirty pages and cleared
// the error, so nothing written since the last good fsync can be trusted.
// The next batch starts a new segment; the records the failed batch may
// have left behind are overridden by repair records.
func (q *Spool) poison(op string, err error) error {
	a := q.active
	q.active = nil
	q.unsynced = false // in doubt: at worst a message delivered twice
	a.f.Close()
	q.mu.Lock()
	q.segs[a.seq].sealedAt = q.now()
	q.activeSeq = 0
	q.mu.Unlock()
	// Logged by noteStorage, at a bounded rate.
	return &StorageError{Op: op, Path: segPath(q.cfg.Dir, a.seq), Err: err}
}

func (q *Spool) storageFailure(op, path string, err error) error {
	return &StorageError{Op: op, Path: path, Err: err}
}

// repair queues, ahead of everything else, records that restore the
// in-memory state of every message a failed batch touched: whatever part
// of that batch reached the disk is then overridden on replay. A message
// that is not in memory (a new one that failed) gets a delete record.
// Called with q.mu held, before anything else is applied.
func (q *Spool) repair(batch []*commitReq) {
	seen := map[ID]bool{}
	var fix []*commitReq
	add := func(id ID, blobPath string) {
		if id == 0 || seen[id] {
			return
		}
		seen[id] = true
		if e := q.msgs[id]; e != nil {
			r := &record{typ: recSnapshot, id: id, held: e.held, states: append([]RcptState(nil), e.rcpts...)}
			e.inflight++
			fix = append(fix, &commitReq{rec: r, body: appendSmall(nil, r), touch: []ID{id}})
			return
		}
		// A new message's large file may be referred to by the record the
		// failed batch left behind: it goes once the delete is durable.
		r := &record{typ: recDelete, id: id}
		fix = append(fix, &commitReq{rec: r, body: appendSmall(nil, r), dropPath: blobPath})
	}
	for _, req := range batch {
		add(req.rec.id, req.blobPath)
		add(req.rec.about, "")
	}
	q.cmu.Lock()
	q.pending = append(fix, q.pending...)
	q.cmu.Unlock()
}
