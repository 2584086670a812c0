package queue

import (
	"github.com/sekisho/sekisho/rewrite"

	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Record types: the first byte of a record body. See doc.go for the layout.
const (
	recMessage  byte = 'M' // a message: envelope, states, data (or a large-file reference)
	recState    byte = 'S' // one recipient's new state
	recSnapshot byte = 'A' // a message's whole state (hold flag and every recipient)
	recHold     byte = 'H' // hold or release
	recRetry    byte = 'T' // every deferred recipient is due at a time
	recDelete   byte = 'D' // the message is gone
)

const (
	msgHeld byte = 1 << iota
	msgBlob
)

const stateDelayNotified byte = 1

// record is the decoded form of one log record. Live operations build one,
// encode it for the log and, once it is durable, apply it to memory with the
// same code recovery uses on the decoded log, so memory is always what a
// replay of the log would give.
type record struct {
	typ  byte
	id   ID
	held bool // recMessage, recSnapshot, recHold

	// recMessage
	env       Envelope
	states    []RcptState // recMessage, recSnapshot
	about     ID          // a message this one reports on (a DSN), or 0
	marks     []rcptUpdate
	blob      bool
	clean     bool // the writer vouched for the data (CleanText); never encoded
	dataLen   int64
	dataStart int // offset of inline data in the body

	// recState
	update rcptUpdate

	// recRetry
	at time.Time
}

// rcptUpdate is one recipient's new absolute state.
type rcptUpdate struct {
	rcpt  int
	state RcptState
}

var errShort = errors.New("record truncated")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Times are Unix nanoseconds; the zero time is 0.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendState(b []byte, st RcptState) []byte {
	var flags byte
	if st.DelayNotified {
		flags |= stateDelayNotified
	}
	b = append(b, byte(st.Status), flags)
	b = appendUvarint(b, uint64(st.Attempts))
	b = appendUvarint(b, uint64(st.Refusals))
	b = appendTime(b, st.NextAttempt)
	b = appendTime(b, st.Updated)
	return appendString(b, st.LastError)
}

func appendEnvelope(b []byte, e *Envelope) []byte {
	b = appendString(b, e.From)
	b = appendTime(b, e.ReceivedAt)
	b = appendString(b, e.Source.String())
	for _, s := range []string{e.ClientIP, e.Helo, e.AuthUser, e.EnvID, e.Ret, e.BodyType} {
		b = appendString(b, s)
	}
	utf8 := byte(0)
	if e.SMTPUTF8 {
		utf8 = 1
	}
	b = append(b, utf8)
	b = appendUvarint(b, uint64(len(e.Rcpts)))
	for _, r := range e.Rcpts {
		for _, s := range []string{r.Addr, r.OrigAddr, r.Notify, r.ORcpt} {
			b = appendString(b, s)
		}
	}
	return b
}

// appendMessageHead encodes a message record up to its data: for an inline
// message the caller appends the bytes after it, for a large one the length.
func appendMessageHead(b []byte, r *record) []byte {
	b = append(b, recMessage)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.id))
	var flags byte
	if r.held {
		flags |= msgHeld
	}
	if r.blob {
		flags |= msgBlob
	}
	b = append(b, flags)
	b = appendEnvelope(b, &r.env)
	for _, st := range r.states {
		b = appendState(b, st)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(r.about))
	b = appendUvarint(b, uint64(len(r.marks)))
	for _, m := range r.marks {
		b = appendUvarint(b, uint64(m.rcpt))
		b = appendState(b, m.state)
	}
	if r.blob {
		b = appendUvarint(b, uint64(r.dataLen))
	}
	return b
}

// appendSmall encodes every record type but recMessage.
func appendSmall(b []byte, r *record) []byte {
	b = append(b, r.typ)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.id))
	switch r.typ {
	case recState:
		b = appendUvarint(b, uint64(r.update.rcpt))
		b = appendState(b, r.update.state)
	case recSnapshot:
		b = append(b, boolByte(r.held))
		b = appendUvarint(b, uint64(len(r.states)))
		for _, st := range r.states {
			b = appendState(b, st)
		}
	case recHold:
		b = append(b, boolByte(r.held))
	case recRetry:
		b = appendTime(b, r.at)
	case recDelete:
	default:
		panic(fmt.Sprintf("queue: appendSmall of record type %q", r.typ))
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads a record body; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail(errShort)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b)-d.off < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return 0
	}
	d.off += n
	return v
}

// count reads a uvarint that counts items of at least min bytes each, so
// a corrupt count cannot make us allocate more than the record holds.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64((len(d.b)-d.off)/min) {
		d.fail(fmt.Errorf("count %d exceeds the record", v))
		return 0
	}
	return int(v)
}

func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail(fmt.Errorf("number %d out of range", v))
		return 0
	}
	return int(v)
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return time.Time{}
	}
	d.off += n
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(errShort)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) flag() bool {
	switch c := d.byte(); c {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("bad flag %d", c))
		return false
	}
}

func (d *decoder) state() RcptState {
	var st RcptState
	st.Status = Status(d.byte())
	if st.Status > Failed {
		d.fail(fmt.Errorf("bad recipient status %d", st.Status))
	}
	flags := d.byte()
	if flags&^stateDelayNotified != 0 {
		d.fail(fmt.Errorf("bad state flags %#x", flags))
	}
	st.DelayNotified = flags&stateDelayNotified != 0
	st.Attempts = d.int()
	st.Refusals = d.int()
	st.NextAttempt = d.time()
	st.Updated = d.time()
	st.LastError = d.string()
	return st
}

// minState is the smallest encoded state: status, flags, four one-byte
// varints and an empty string.
const minState = 7

func (d *decoder) envelope() Envelope {
	var e Envelope
	e.From = d.string()
	e.ReceivedAt = d.time()
	// A name this build does not know decodes to the zero Source; the
	// runner treats that as mail from the inner networks, as before.
	e.Source, _ = rewrite.ParseSource(d.string())
	for _, p := range []*string{&e.ClientIP, &e.Helo, &e.AuthUser, &e.EnvID, &e.Ret, &e.BodyType} {
		*p = d.string()
	}
	e.SMTPUTF8 = d.flag()
	n := d.count(4)
	if d.err != nil {
		return e
	}
	e.Rcpts = make([]Recipient, n)
	for i := range e.Rcpts {
		r := &e.Rcpts[i]
		for _, p := range []*string{&r.Addr, &r.OrigAddr, &r.Notify, &r.ORcpt} {
			*p = d.string()
		}
	}
	return e
}

// decodeRecord parses a record body. For an inline message, the data is
// body[r.dataStart:] and is not copied.
func decodeRecord(body []byte) (*record, error) {
	d := &decoder{b: body}
	r := &record{typ: d.byte(), id: ID(d.u64())}
	if d.err == nil && r.id == 0 {
		return nil, errors.New("record for message ID 0")
	}
	switch r.typ {
	case recMessage:
		flags := d.byte()
		if flags&^(msgHeld|msgBlob) != 0 {
			d.fail(fmt.Errorf("bad message flags %#x", flags))
		}
		r.held, r.blob = flags&msgHeld != 0, flags&msgBlob != 0
		r.env = d.envelope()
		if d.err == nil && len(r.env.Rcpts)*minState > len(body)-d.off {
			d.fail(errShort)
		}
		if d.err == nil {
			r.states = make([]RcptState, len(r.env.Rcpts))
			for i := range r.states {
				r.states[i] = d.state()
			}
		}
		r.about = ID(d.u64())
		n := d.count(1 + minState)
		for i := 0; i < n && d.err == nil; i++ {
			r.marks = append(r.marks, rcptUpdate{rcpt: d.int(), state: d.state()})
		}
		if r.blob {
			r.dataLen = int64(d.uvarint())
			if d.err == nil && (r.dataLen < 0 || d.off != len(body)) {
				d.fail(errors.New("trailing bytes after a large-message reference"))
			}
		} else {
			r.dataStart, r.dataLen = d.off, int64(len(body)-d.off)
		}
		r.env.Size = r.dataLen
	case recState:
		r.update = rcptUpdate{rcpt: d.int(), state: d.state()}
	case recSnapshot:
		r.held = d.flag()
		n := d.count(minState)
		for i := 0; i < n && d.err == nil; i++ {
			r.states = append(r.states, d.state())
		}
	case recHold:
		r.held = d.flag()
	case recRetry:
		r.at = d.time()
	case recDelete:
	default:
		if d.err == nil {
			d.fail(fmt.Errorf("unknown record type %#x", r.typ))
		}
	}
	if d.err == nil && r.typ != recMessage && d.off != len(body) {
		d.fail(fmt.Errorf("%d trailing bytes", len(body)-d.off))
	}
	if d.err != nil {
		return nil, fmt.Errorf("record at byte %d: %w", d.off, d.err)
	}
	return r, nil
}
