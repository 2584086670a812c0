package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// Enqueue stores a new message and returns once it is durable: its record
// (and its own file, for a large message) is written and fsynced, and so
// are the directory entries that lead to it. Concurrent callers share one
// fsync (group commit). env.Size is set from the data; a zero ReceivedAt
// becomes now. On ErrFull or a *StorageError (see Temporary) nothing was
// queued and the client should be told to try again later (452 4.3.1);
// any other error comes from reading data or from a bad envelope.
func (q *Spool) Enqueue(env Envelope, data io.Reader) (ID, error) {
	return q.enqueue(env, data, 0, nil, false)
}

// EnqueueHeld stores a new message as Enqueue does, held in the same
// record: it is never claimed for delivery until Release (`sekisho queue
// release`), and a crash cannot leave it queued without its hold. The
// SMTP side queues a message a content filter quarantined this way.
func (q *Spool) EnqueueHeld(env Envelope, data io.Reader) (ID, error) {
	return q.enqueue(env, data, 0, nil, true)
}

// EnqueueDSN queues a delivery status notification and, in the same
// record, applies the outcomes it reports to the recipients of message
// about: a crash keeps both or neither, so a recipient is never bounced
// twice, nor marked failed without its bounce. Use it instead of MarkFailed
// followed by Enqueue whenever a DSN is sent.
func (q *Spool) EnqueueDSN(env Envelope, data io.Reader, about ID, marks []Mark) (ID, error) {
	if about == 0 || len(marks) == 0 {
		return 0, errors.New("queue: EnqueueDSN needs the reported message and at least one mark")
	}
	return q.enqueue(env, data, about, marks, false)
}

func (q *Spool) enqueue(env Envelope, data io.Reader, about ID, marks []Mark, held bool) (id ID, err error) {
	if q.readOnly {
		return 0, ErrReadOnly
	}
	if len(env.Rcpts) == 0 {
		return 0, errors.New("queue: a message needs at least one recipient")
	}
	now := q.now()
	r := &record{typ: recMessage, env: env.clone(), about: about, held: held, states: make([]RcptState, len(env.Rcpts))}
	if r.env.ReceivedAt.IsZero() {
		r.env.ReceivedAt = now
	}

	// Take a message slot and an ID, and turn the marks into states, before
	// reading the data: a full queue refuses without reading.
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if len(q.msgs)+q.resMsgs >= q.cfg.MaxMessages {
		q.mu.Unlock()
		return 0, ErrFull
	}
	// New mail stays out of the reserve (see spaceFree); a bounce records
	// a result and may use it. Checked again below with the size known.
	if free, reserve, ok := q.spaceFree(now); ok && about == 0 && free < reserve {
		q.mu.Unlock()
		return 0, errLowSpace(free, reserve)
	}
	if about != 0 {
		if r.marks, err = q.markStates(about, marks, now); err != nil {
			q.mu.Unlock()
			return 0, err
		}
	}
	q.resMsgs++
	q.lastID = nextID(q.lastID, now)
	r.id = q.lastID
	q.mu.Unlock()
	reserved := true
	defer func() {
		if reserved {
			q.mu.Lock()
			q.resMsgs--
			q.mu.Unlock()
		}
	}()

	// The message is read straight into pooled chunks, up to InlineMax+1
	// bytes: an inline one is written from them after its record's head,
	// a large one goes to its own file and the chunks back to the pool
	// before the rest streams after them. Memory per message is bounded
	// by InlineMax and never garbage.
	if c, ok := data.(CleanText); ok {
		r.clean = c.CleanText()
	}
	chunks, n, err := readChunks(data, int64(q.cfg.InlineMax)+1)
	defer func() { putChunks(chunks) }()
	if err != nil {
		return 0, fmt.Errorf("queue: reading the message: %w", err)
	}
	var blobPath string
	var head []byte
	if n > int64(q.cfg.InlineMax) {
		blobPath = filepath.Join(q.cfg.Dir, blobDir, blobName(r.id))
		release := func() {
			putChunks(chunks)
			chunks = nil
		}
		if r.dataLen, err = writeBlob(blobPath, chunks, data, release); err != nil {
			return 0, err
		}
		defer func() {
			if err != nil {
				os.Remove(blobPath)
			}
		}()
		r.blob = true
		head = appendMessageHead(nil, r)
	} else {
		head = appendMessageHead(nil, r)
		r.dataStart, r.dataLen = len(head), n
	}
	r.env.Size = r.dataLen

	req := &commitReq{rec: r, body: head, blobPath: blobPath, done: make(chan error, 1)}
	req.resBytes = frameSize + int64(len(req.body)) + r.dataLen
	if !r.blob {
		req.data = chunks
	}
	if about != 0 {
		req.touch = []ID{about}
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if q.diskBytes+q.resBytes+req.resBytes > int64(q.cfg.MaxBytes) {
		q.mu.Unlock()
		q.kickMaint() // dead space may be reclaimable
		return 0, ErrFull
	}
	// New mail stays out of the reserve; a bounce (about != 0) records a
	// result and may use it.
	if free, reserve, ok := q.spaceFree(q.now()); ok && about == 0 && free-req.resBytes < reserve {
		q.mu.Unlock()
		q.kickMaint()
		return 0, errLowSpace(free, reserve)
	}
	// The reservation passes to the request: the committer releases it.
	reserved = false
	req.resMsgs = 1
	q.resBytes += req.resBytes
	q.submitLocked(req)
	q.mu.Unlock()
	if err = <-req.done; err != nil {
		return 0, err
	}
	return r.id, nil
}

// markStates turns DSN marks into the recipients' new states. Called with
// q.mu held.
func (q *Spool) markStates(about ID, marks []Mark, now time.Time) ([]rcptUpdate, error) {
	t := q.msgs[about]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, about)
	}
	out := make([]rcptUpdate, 0, len(marks))
	for _, m := range marks {
		if m.Rcpt < 0 || m.Rcpt >= len(t.rcpts) {
			return nil, fmt.Errorf("queue: message %s has no recipient #%d", about, m.Rcpt)
		}
		st := t.rcpts[m.Rcpt]
		if st.Status.Final() {
			return nil, fmt.Errorf("%w: %s recipient #%d", ErrFinal, about, m.Rcpt)
		}
		switch m.Status {
		case Failed, Delivered:
			st = outcome(st, m.Status, time.Time{}, m.Reason, now)
		case Deferred:
			st.DelayNotified = true
			st.Updated = now
		default:
			return nil, fmt.Errorf("queue: a DSN mark cannot set status %s", m.Status)
		}
		out = append(out, rcptUpdate{rcpt: m.Rcpt, state: st})
	}
	return out, nil
}

// dataChunk is the size of the pooled pieces a new message is read into.
const dataChunk = 32 << 10

var dataChunks = sync.Pool{New: func() any { return new([dataChunk]byte) }}

// readChunks reads r into pooled chunks until EOF or limit bytes.
func readChunks(r io.Reader, limit int64) (chunks [][]byte, n int64, err error) {
	var c *[dataChunk]byte
	k := 0 // bytes in c
	for n < limit {
		if c == nil {
			c, k = dataChunks.Get().(*[dataChunk]byte), 0
		}
		m, rerr := r.Read(c[k:min(dataChunk, k+int(min(limit-n, dataChunk)))])
		k, n = k+m, n+int64(m)
		if k == dataChunk || n == limit || rerr != nil {
			if k > 0 {
				chunks = append(chunks, c[:k])
			} else {
				dataChunks.Put(c)
			}
			c = nil
		}
		if rerr == io.EOF {
			return chunks, n, nil
		}
		if rerr != nil {
			return chunks, n, rerr
		}
	}
	return chunks, n, nil
}

// putChunks gives chunks back to the pool.
func putChunks(chunks [][]byte) {
	for i, c := range chunks {
		dataChunks.Put((*[dataChunk]byte)(c[:dataChunk]))
		chunks[i] = nil
	}
}

// writeBlob writes a large message to its own file and fsyncs it. The
// directory entry is made durable by the group commit, before the record
// that refers to it.
func writeBlob(path string, head [][]byte, rest io.Reader, release func()) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return 0, &StorageError{Op: "create", Path: path, Err: err}
	}
	safeio.ChownLikeParent(path)
	fail := func(op string, err error) (int64, error) {
		f.Close()
		os.Remove(path)
		if op == "read" {
			return 0, fmt.Errorf("queue: reading the message: %w", err)
		}
		return 0, &StorageError{Op: op, Path: path, Err: err}
	}
	headLen := int64(partsLen(head))
	if _, err := writeBuffers(f, slices.Clone(head)); err != nil {
		return fail("write", err)
	}
	release() // head is no longer used
	n, err := io.Copy(f, rest)
	if err != nil {
		var werr *os.PathError
		if errors.As(err, &werr) && werr.Path == path {
			return fail("write", err)
		}
		return fail("read", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	return headLen + n, nil
}

// outcome is a recipient's state after an attempt ended with status.
func outcome(st RcptState, status Status, next time.Time, reason string, now time.Time) RcptState {
	st.Status = status
	st.Attempts++
	if isRefusal(reason) {
		st.Refusals++
	}
	st.LastError = reason
	st.NextAttempt = next
	st.Updated = now
	return st
}

// MarkDelivered records that rcpt (an index into Envelope.Rcpts) was
// accepted by the next hop. It returns once the change is durable; the
// message leaves the queue when its last recipient is final.
func (q *Spool) MarkDelivered(id ID, rcpt int) error {
	return q.markRcpt(id, rcpt, Delivered, time.Time{}, "")
}

// MarkDeferred records a temporary failure and when to try again. A reason
// starting with a 5yz reply (a refusal being retried) counts in Refusals.
func (q *Spool) MarkDeferred(id ID, rcpt int, next time.Time, reason string) error {
	return q.markRcpt(id, rcpt, Deferred, next, reason)
}

// MarkFailed records a permanent failure without a DSN (the sender is <>,
// or NOTIFY=NEVER). When a DSN is sent, use EnqueueDSN instead, which
// commits the failure and the bounce together.
func (q *Spool) MarkFailed(id ID, rcpt int, reason string) error {
	return q.markRcpt(id, rcpt, Failed, time.Time{}, reason)
}

func (q *Spool) markRcpt(id ID, rcpt int, status Status, next time.Time, reason string) error {
	return q.change([]ID{id}, func(e *entry, now time.Time) (*record, error) {
		if rcpt < 0 || rcpt >= len(e.rcpts) {
			return nil, fmt.Errorf("queue: message %s has no recipient #%d", id, rcpt)
		}
		if e.rcpts[rcpt].Status.Final() {
			return nil, fmt.Errorf("%w: %s recipient #%d", ErrFinal, id, rcpt)
		}
		st := outcome(e.rcpts[rcpt], status, next, reason, now)
		return &record{typ: recState, id: id, update: rcptUpdate{rcpt: rcpt, state: st}}, nil
	})
}

// Hold keeps a message from delivery until Release.
func (q *Spool) Hold(id ID) error {
	return q.change([]ID{id}, func(e *entry, _ time.Time) (*record, error) {
		return &record{typ: recHold, id: id, held: true}, nil
	})
}

// Release lifts a hold.
func (q *Spool) Release(id ID) error {
	return q.change([]ID{id}, func(e *entry, _ time.Time) (*record, error) {
		return &record{typ: recHold, id: id, held: false}, nil
	})
}

// Retry makes every deferred recipient of the message due at now.
func (q *Spool) Retry(id ID, now time.Time) error {
	return q.change([]ID{id}, func(e *entry, _ time.Time) (*record, error) {
		return &record{typ: recRetry, id: id, at: now}, nil
	})
}

// Delete removes a message without a DSN.
func (q *Spool) Delete(id ID) error {
	return q.change([]ID{id}, func(e *entry, _ time.Time) (*record, error) {
		return &record{typ: recDelete, id: id}, nil
	})
}

// change submits one record per message built from its current state and
// waits until all are durable; it returns every error joined.
func (q *Spool) change(ids []ID, build func(e *entry, now time.Time) (*record, error)) error {
	return errors.Join(q.changeEach(ids, build)...)
}

// changeEach is change with one error per ID. Records are built and
// submitted under the lock, so the log order of records about a message is
// the order of these decisions; a message that is gone gives ErrNotFound.
func (q *Spool) changeEach(ids []ID, build func(e *entry, now time.Time) (*record, error)) []error {
	errs := make([]error, len(ids))
	if q.readOnly {
		for i := range errs {
			errs[i] = ErrReadOnly
		}
		return errs
	}
	now := q.now()
	reqs := make([]*commitReq, len(ids))
	q.mu.Lock()
	for i, id := range ids {
		if q.closed {
			errs[i] = ErrClosed
			continue
		}
		e := q.msgs[id]
		if e == nil {
			errs[i] = fmt.Errorf("%w: %s", ErrNotFound, id)
			continue
		}
		r, err := build(e, now)
		if err != nil {
			errs[i] = err
			continue
		}
		reqs[i] = &commitReq{rec: r, body: appendSmall(nil, r), touch: []ID{id}, done: make(chan error, 1),
			lazy: r.typ == recState && r.update.state.Status == Delivered && !e.blob}
		q.submitLocked(reqs[i])
	}
	q.mu.Unlock()
	for i, req := range reqs {
		if req != nil {
			errs[i] = <-req.done
		}
	}
	return errs
}
