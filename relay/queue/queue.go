package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// Option is a run-time setting that does not belong in the configuration.
type Option func(*options)

type options struct {
	log      *slog.Logger
	now      func() time.Time
	lockWait time.Duration
	storage  Storage
	lazySync time.Duration // lazySyncDelay, shorter in tests
}

// WithLogger sends the spool's log lines (recovery, storage errors,
// compaction, control commands) to l. The default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLockWait sets how long Open waits for another process (a `sekisho
// queue` command working on a stopped gateway's spool) to release the
// spool; the default is 10 s, and zero or less does not wait.
func WithLockWait(d time.Duration) Option { return func(o *options) { o.lockWait = d } }

func buildOptions(opts []Option) options {
	o := options{lockWait: 10 * time.Second, lazySync: lazySyncDelay}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.storage == nil {
		o.storage = osStorage{}
	}
	return o
}

// Spool is an open spool. All methods are safe for concurrent use.
type Spool struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	readOnly bool
	lock     *os.File
	recovery Recovery
	storage  Storage
	health   health

	mu        sync.Mutex
	msgs      map[ID]*entry
	sched     schedHeap
	waiters   []chan struct{} // Claim callers waiting, newest last (see notify)
	lastID    ID
	segs      map[uint64]*segInfo
	activeSeq uint64 // the segment being appended to, 0 if none yet
	nextSeq   uint64
	diskBytes int64 // segment files and large-message files
	space     spaceCheck
	resMsgs   int // reserved by enqueues in progress
	resBytes  int64
	trash     []trashBlob // large files of finished messages
	spare     bool        // a finished segment is kept for reuse (spare.go)
	replaying bool
	closed    bool

	// The committer's side: requests waiting for the next group commit.
	cmu     sync.Mutex
	pending []*commitReq
	kick    chan struct{}
	active  *activeSeg // owned by the committer goroutine
	// unsynced: lazy records were written to active after its last fsync
	// (owned by the committer goroutine); lazySync bounds how long.
	unsynced bool
	lazySync time.Duration
	wbuf     []byte   // the committer's write buffer
	iov      [][]byte // the committer's list of buffers for one writev
	// testFault, set by tests, makes a write or fsync that succeeded
	// report an error: the worst case, data on disk but not acknowledged.
	testFault atomic.Pointer[func(op string) error]

	removeMu sync.Mutex // serializes removeSegments

	stopCommit, stopMaint chan struct{}
	commitDone, maintDone chan struct{}
	maintKick             chan struct{}
}

// entry is a live message in memory. Finished messages are dropped.
type entry struct {
	id      ID
	env     Envelope
	rcpts   []RcptState
	held    bool
	seg     uint64 // segment holding the message record now in force
	recLen  int64  // its framed length
	dataOff int64  // inline data: absolute offset in the segment
	blob    bool   // data in its own file under large/
	// clean: the data's writer vouched that it is clean text (see
	// CleanText). Memory only: after a restart the data is not vouched
	// for, and delivery reads it through its line checks again.
	clean    bool
	claimed  bool
	inflight int // records about it submitted and not yet committed
	heapIdx  int
	due      time.Time
	// notBefore keeps the message out of Claim until then (memory only):
	// set by UnclaimAfter when its last result could not be recorded.
	notBefore time.Time
}

type segInfo struct {
	size      int64
	live      int   // live messages whose record in force is here
	liveBytes int64 // their records' bytes
	sealedAt  time.Time
	rd        *segReader // opened by the first Open of a message in it
}

// segReader is a segment opened for reading, shared by every reader of a
// message in it: opening a file costs more system calls (openat, four
// fcntl, a failed epoll_ctl, close) than reading the message with one
// pread. It is closed when the segment is gone and its last reader is.
type segReader struct {
	f    *os.File
	refs int // open readers, plus one while the segment is in q.segs
}

// releaseLocked drops one reference. Called with q.mu held.
func (r *segReader) releaseLocked() {
	if r.refs--; r.refs == 0 {
		r.f.Close()
	}
}

type trashBlob struct {
	id   ID
	size int64
}

// Open opens (creating if needed) the spool in cfg.Dir, recovers it and
// starts the group committer and the maintenance loop. Exactly one process
// may have a spool open; `sekisho queue` commands talk to it through the
// control directory (see Control).
func Open(cfg Config, opts ...Option) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("queue configuration: %w", err)
	}
	if err := prepareDir(cfg.Dir); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	lock, err := lockSpool(cfg.Dir, o.lockWait)
	if err != nil {
		return nil, err
	}
	return openLocked(cfg, o, lock)
}

func openLocked(cfg Config, o options, lock *os.File) (*Spool, error) {
	q := newSpool(cfg, o)
	q.lock = lock
	if err := q.recover(); err != nil {
		unlockSpool(lock)
		return nil, err
	}
	q.start()
	q.logRecovery()
	return q, nil
}

// Inspect opens the spool read-only, without taking it from a running
// gateway: List, Get, Envelope, Open and Recovery work on a snapshot of what
// was committed when it was called; writes return ErrReadOnly.
func Inspect(cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("queue: no spool directory configured")
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("queue: spool directory: %w", err)
	}
	q := newSpool(cfg, buildOptions(nil))
	q.readOnly = true
	// A running gateway may remove a segment while we read; the log stays a
	// suffix of itself, so reading again gives a consistent picture.
	var err error
	for range 3 {
		if err = q.recover(); !errors.Is(err, os.ErrNotExist) {
			break
		}
		q = newSpool(cfg, buildOptions(nil))
		q.readOnly = true
	}
	if err != nil {
		return nil, err
	}
	q.closed = true
	return q, nil
}

func newSpool(cfg Config, o options) *Spool {
	q := &Spool{
		cfg:        cfg,
		log:        o.log,
		now:        o.now,
		storage:    o.storage,
		lazySync:   o.lazySync,
		msgs:       map[ID]*entry{},
		segs:       map[uint64]*segInfo{},
		nextSeq:    1,
		kick:       make(chan struct{}, 1),
		maintKick:  make(chan struct{}, 1),
		stopCommit: make(chan struct{}),
		stopMaint:  make(chan struct{}),
		commitDone: make(chan struct{}),
		maintDone:  make(chan struct{}),
	}
	return q
}

func prepareDir(dir string) error {
	for _, d := range []string{dir, filepath.Join(dir, blobDir), filepath.Join(dir, ctlDir)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return &StorageError{Op: "create directory", Path: d, Err: err}
		}
		safeio.ChownLikeParent(d)
	}
	// Make the subdirectories' entries durable before anything relies on them.
	if err := safeio.SyncDir(dir); err != nil {
		return &StorageError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// Close waits for committed work in progress, stops the background loops
// and releases the spool. Claimed messages simply stay queued.
func (q *Spool) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stopMaint)
	<-q.maintDone
	close(q.stopCommit)
	<-q.commitDone
	q.removeTrash()
	q.mu.Lock()
	for _, s := range q.segs {
		if s.rd != nil {
			s.rd.releaseLocked()
			s.rd = nil
		}
	}
	q.mu.Unlock()
	var err error
	if q.active != nil {
		err = q.active.f.Close()
		q.active = nil
	}
	unlockSpool(q.lock)
	return err
}

// Recovery reports what Open found in the spool.
func (q *Spool) Recovery() Recovery {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.recovery
	r.Problems = append([]string(nil), r.Problems...)
	return r
}

// Stats is the spool's size right now.
type Stats struct {
	Messages  int   // queued messages
	Held      int   // of which on hold
	Bytes     int64 // their sizes
	DiskBytes int64 // segment and large-message files
	Segments  int
	Oldest    time.Time // the earliest ReceivedAt of a queued message (zero when empty)
}

// Stats returns the current figures (for metrics and `queue list`).
func (q *Spool) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Messages: len(q.msgs), DiskBytes: q.diskBytes, Segments: len(q.segs)}
	// Counted in place: nothing is copied, so the metrics cost no
	// allocation per message under the lock.
	for _, e := range q.msgs {
		s.Bytes += e.env.Size
		if e.held {
			s.Held++
		}
		if s.Oldest.IsZero() || e.env.ReceivedAt.Before(s.Oldest) {
			s.Oldest = e.env.ReceivedAt
		}
	}
	return s
}

// List returns a snapshot of every queued message, oldest first.
func (q *Spool) List() []Message {
	q.mu.Lock()
	out := make([]Message, 0, len(q.msgs))
	for _, e := range q.msgs {
		out = append(out, e.snapshot())
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns a snapshot of one message.
func (q *Spool) Get(id ID) (Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.msgs[id]
	if e == nil {
		return Message{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e.snapshot(), nil
}

// Envelope returns a copy of a message's envelope.
func (q *Spool) Envelope(id ID) (Envelope, error) {
	m, err := q.Get(id)
	return m.Envelope, err
}

func (e *entry) snapshot() Message {
	return Message{
		ID:       e.id,
		Envelope: e.env.clone(),
		Rcpts:    append([]RcptState(nil), e.rcpts...),
		Held:     e.held,
		Claimed:  e.claimed,
	}
}

// Open returns the message's bytes, streamed from its segment (or its own
// file for a large message). The reader stays valid even if the message is
// finished or moved meanwhile: an open file outlives its removal.
func (q *Spool) Open(id ID) (io.ReadCloser, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.msgs[id]
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if e.blob {
		f, err := os.Open(filepath.Join(q.cfg.Dir, blobDir, blobName(id)))
		if err != nil {
			return nil, &StorageError{Op: "open", Path: blobName(id), Err: err}
		}
		return &blobFile{File: f, size: e.env.Size, clean: e.clean}, nil
	}
	seg := q.segs[e.seg]
	if seg == nil || q.readOnly {
		// A read-only view is never closed: its readers are its own.
		path := segPath(q.cfg.Dir, e.seg)
		f, err := os.Open(path)
		if err != nil {
			return nil, &StorageError{Op: "open", Path: path, Err: err}
		}
		return &sectionFile{SectionReader: io.NewSectionReader(f, e.dataOff, e.env.Size), q: q, rd: &segReader{f: f, refs: 1}, clean: e.clean}, nil
	}
	if seg.rd == nil {
		path := segPath(q.cfg.Dir, e.seg)
		f, err := os.Open(path)
		if err != nil {
			return nil, &StorageError{Op: "open", Path: path, Err: err}
		}
		seg.rd = &segReader{f: f, refs: 1}
	}
	seg.rd.refs++
	return &sectionFile{SectionReader: io.NewSectionReader(seg.rd.f, e.dataOff, e.env.Size), q: q, rd: seg.rd, clean: e.clean}, nil
}

// sectionFile is one message's bytes in a shared segReader.
type sectionFile struct {
	*io.SectionReader
	q      *Spool
	rd     *segReader
	closed bool
	clean  bool
}

// Rest implements Stretch.
func (s *sectionFile) Rest() (*os.File, int64, int64, bool) {
	pos, _ := s.Seek(0, io.SeekCurrent)
	_, base, n := s.Outer()
	return s.rd.f, base + pos, n - pos, s.clean
}

// blobFile is a large message's own file.
type blobFile struct {
	*os.File
	size  int64
	clean bool
}

// Rest implements Stretch.
func (b *blobFile) Rest() (*os.File, int64, int64, bool) {
	pos, err := b.Seek(0, io.SeekCurrent)
	if err != nil {
		return b.File, 0, 0, false
	}
	return b.File, pos, b.size - pos, b.clean
}

// Stretch is implemented by the readers Open returns: where the bytes not
// read yet are, for a caller that sends them with sendfile(2) instead of
// reading them, and whether their writer vouched that they are clean text
// (see CleanText). Reading from the file at those offsets (pread) leaves
// the reader's own position alone.
type Stretch interface {
	Rest() (f *os.File, off, n int64, clean bool)
}

// CleanText is implemented by message data whose writer vouches for its
// bytes: lines ended by CRLF, no other CR or LF, no NUL, and a CRLF at the
// end (what smtpd's readers pass on). The spool remembers it for Stretch;
// data without it, and every message after a restart, is not vouched for.
type CleanText interface {
	CleanText() bool
}

func (s *sectionFile) Close() error {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.rd.releaseLocked()
	}
	return nil
}

// readInline reads an inline message's bytes (for copying it forward).
func (q *Spool) readInline(seq uint64, off, n int64) ([]byte, error) {
	f, err := os.Open(segPath(q.cfg.Dir, seq))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	return b, err
}
