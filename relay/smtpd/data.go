package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// LinePolicy says what the message readers do with a bare CR, a bare LF
// or a NUL; the rule itself is TextEncoder's (lines.go).
type LinePolicy uint8

const (
	// LineReject reads to the real end of data, then refuses the message.
	LineReject LinePolicy = iota
	// LineNormalize applies the rule: a bare LF becomes CRLF, a bare CR
	// and a NUL are dropped.
	LineNormalize
)

func (p LinePolicy) String() string {
	if p == LineNormalize {
		return "normalize"
	}
	return "reject"
}

// ParseLinePolicy reads "reject" or "normalize".
func ParseLinePolicy(s string) (LinePolicy, error) {
	switch s {
	case "reject":
		return LineReject, nil
	case "normalize":
		return LineNormalize, nil
	}
	return 0, fmt.Errorf("%q is not a line-ending policy (reject, normalize)", s)
}

var (
	// ErrBareLineEnding is what a LineReject reader returns on a bare CR,
	// bare LF or NUL; the rest of the message is still read by the server.
	ErrBareLineEnding = errors.New("message contains a bare CR, a bare LF or a NUL")
	// ErrTooLarge is returned once the message passes the size limit.
	ErrTooLarge = errors.New("message too large")
	// ErrAborted is returned when the client ends a BDAT transaction
	// before its last chunk (RSET, QUIT, HELO or EHLO between chunks).
	ErrAborted = errors.New("the client abandoned the message between BDAT chunks")
)

// MessageReader is what a Handler reads a message from: the text after
// dot-unstuffing (DATA) or the chunks (BDAT), under the line-ending rule
// (every line ending a CRLF, no NUL). It is valid only during Handler.Data.
// What it returns before io.EOF is therefore clean text (IsCleanText),
// ending with a CRLF; a reader that refuses a line returns an error
// instead of the line.
//
// It works on the connection's read buffer: whole clean lines, the bulk
// of a usual message, are copied out (Read) or handed on (WriteTo) in
// spans found with vectorized scans; only a line that starts with a dot
// or breaks the rule goes through the encoder one line at a time. BDAT
// chunks are read from the connection as the handler asks for them, so
// a message never sits whole in memory.
type MessageReader struct {
	src    *bufio.Reader
	dotted bool // DATA: dot-stuffing and the <CRLF>.<CRLF> end
	policy LinePolicy
	max    int64 // 0: no limit

	// BDAT: what is left of the current chunk, whether it is the last,
	// and how the next is read from the connection.
	bdat  bool
	chunk int64
	last  bool
	next  func() (size int64, last bool, err error)

	n          int64 // bytes taken from the source
	enc        TextEncoder
	out        []byte // text of the line the slow path took
	outOff     int
	err        error // returned to the handler after out is drained
	srcErr     error // the connection's error: the session cannot go on
	availErr   error // the source's error, kept until the slow path sees it
	done       bool  // the end of data has been read
	discarding bool  // after an error: parse to the end, keep nothing

	lineStart bool // the next byte starts a line
	afterCRLF bool // the last line ended with a real CRLF (or none yet)
	lastCR    bool // the last byte taken was a CR

}

func (m *MessageReader) reset(src *bufio.Reader, dotted bool, p LinePolicy, max int64) {
	out := m.out[:0]
	if cap(out) > 4<<10 {
		out = nil // a long line that broke the rule does not stay with the connection
	}
	*m = MessageReader{src: src, dotted: dotted, policy: p, max: max, out: out,
		lineStart: true, afterCRLF: true}
}

// resetBDAT starts a message whose first chunk has size bytes; next reads
// the command that announces the following chunk.
func (m *MessageReader) resetBDAT(src *bufio.Reader, p LinePolicy, max, size int64, last bool, next func() (int64, bool, error)) {
	m.reset(src, false, p, max)
	m.bdat, m.chunk, m.last, m.next = true, size, last, next
}

// Read returns the message text.
func (m *MessageReader) Read(p []byte) (int, error) {
	for {
		if m.outOff < len(m.out) {
			n := copy(p, m.out[m.outOff:])
			m.outOff += n
			return n, nil
		}
		if m.err != nil {
			return 0, m.err
		}
		if m.done {
			return 0, io.EOF
		}
		m.out, m.outOff = m.out[:0], 0
		if span := m.cleanSpan(len(p)); len(span) > 0 {
			n := copy(p, span)
			m.take(n)
			return n, nil
		}
		m.step()
	}
}

// WriteTo hands the message text to w straight from the read buffer.
func (m *MessageReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if m.outOff < len(m.out) {
			n, err := w.Write(m.out[m.outOff:])
			total += int64(n)
			m.outOff += n
			if err != nil {
				return total, err
			}
			continue
		}
		if m.err != nil {
			return total, m.err
		}
		if m.done {
			return total, nil
		}
		m.out, m.outOff = m.out[:0], 0
		if span := m.cleanSpan(math.MaxInt); len(span) > 0 {
			n, err := w.Write(span)
			total += int64(n)
			m.take(len(span))
			if err != nil {
				return total, err
			}
			continue
		}
		m.step()
	}
}

// drain reads what is left of the message and throws it away, so the
// next command is read where the client sent it.
func (m *MessageReader) drain() {
	m.discarding = true
	for !m.done && m.srcErr == nil {
		if span := m.cleanSpan(math.MaxInt); len(span) > 0 {
			m.take(len(span))
			continue
		}
		m.out, m.outOff = m.out[:0], 0
		m.step()
	}
}

// skipChunk reads the rest of the current BDAT chunk and throws it away.
func (m *MessageReader) skipChunk() {
	m.discarding = true
	for m.chunk > 0 && m.srcErr == nil {
		b, err := m.avail()
		if err != nil {
			m.sourceEnded(err)
			return
		}
		m.take(len(b))
	}
}

// avail returns the bytes of the message the read buffer holds, reading
// more (or the next BDAT chunk) when it holds none.
func (m *MessageReader) avail() ([]byte, error) {
	if m.availErr != nil {
		return nil, m.availErr
	}
	for m.bdat && m.chunk == 0 {
		if m.last {
			return nil, io.EOF
		}
		size, last, err := m.next()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // io.EOF is the end of the last chunk
		}
		if err != nil {
			m.availErr = err
			return nil, err
		}
		m.chunk, m.last = size, last
	}
	if m.src.Buffered() == 0 {
		if _, err := m.src.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // inside DATA or inside a chunk
			}
			m.availErr = err
			return nil, err
		}
	}
	b, _ := m.src.Peek(m.src.Buffered())
	if m.bdat && int64(len(b)) > m.chunk {
		b = b[:m.chunk]
	}
	return b, nil
}

// take consumes n bytes of the source.
func (m *MessageReader) take(n int) {
	m.src.Discard(n)
	m.n += int64(n)
	if m.bdat {
		m.chunk -= int64(n)
	}
}

// cleanSpan returns up to limit bytes of whole clean lines at the start
// of the buffer, which pass as they are; nil when the next line needs
// the slow path.
func (m *MessageReader) cleanSpan(limit int) []byte {
	if !m.lineStart || !m.discarding && !m.enc.AtLineStart() {
		return nil
	}
	b, err := m.avail()
	if err != nil {
		return nil
	}
	if len(b) > limit {
		b = b[:limit]
	}
	if m.dotted && b[0] == '.' {
		return nil
	}
	n := cleanLines(b, m.dotted)
	if n == 0 || m.max > 0 && m.n+int64(n) > m.max && !m.discarding {
		return nil
	}
	m.afterCRLF, m.lastCR = true, false
	return b[:n]
}

// step takes one line, or the part of it the buffer holds, through the
// encoder into out, and sees to the end of data and the errors.
func (m *MessageReader) step() {
	b, err := m.avail()
	if err != nil {
		m.sourceEnded(err)
		return
	}
	if m.dotted && m.lineStart && b[0] == '.' {
		if !m.dotLine() {
			return
		}
		if b, err = m.avail(); err != nil {
			m.sourceEnded(err)
			return
		}
	}
	seg := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		seg = b[:i+1]
	}
	m.account(len(seg))
	if !m.discarding {
		m.out = m.enc.Append(m.out, seg)
	}
	if seg[len(seg)-1] == '\n' {
		m.afterCRLF = len(seg) >= 2 && seg[len(seg)-2] == '\r' || len(seg) == 1 && m.lastCR
		m.lineStart = true
	} else {
		m.lineStart = false
	}
	m.lastCR = seg[len(seg)-1] == '\r'
	m.take(len(seg))
	m.checkLines()
}

// dotLine reads a line that starts with '.': the end of data, a line of
// only a dot, or a stuffed dot to remove (RFC 5321 §4.5.2). It reports
// whether the rest of the line is still to be read.
func (m *MessageReader) dotLine() bool {
	p, err := m.src.Peek(3)
	switch {
	case len(p) == 3 && p[1] == '\r' && p[2] == '\n':
		m.account(3)
		m.take(3)
		if m.afterCRLF {
			m.done = true
			return false
		}
		m.emit(".\r\n")
		m.afterCRLF, m.lastCR = true, false
		return false
	case len(p) >= 2 && p[1] == '\n':
		m.account(2)
		m.take(2)
		m.emit(".\n") // a line of only a dot, ended by a bare LF
		m.afterCRLF, m.lastCR = false, false
		m.checkLines()
		return false
	case len(p) < 2 && err != nil:
		// The input ends after the dot: the slow path sees the error.
		m.account(1)
		m.take(1)
		m.lineStart = false
		return false
	}
	m.account(1)
	m.take(1) // the stuffed dot
	m.lineStart = false
	return true
}

func (m *MessageReader) emit(s string) {
	if !m.discarding {
		m.out = m.enc.Append(m.out, []byte(s))
	}
}

// account counts n bytes taken against the size limit.
func (m *MessageReader) account(n int) {
	if m.max > 0 && m.n+int64(n) > m.max && !m.discarding {
		m.fail(ErrTooLarge)
	}
}

// checkLines refuses the message under LineReject once the rule changed
// something.
func (m *MessageReader) checkLines() {
	if m.enc.Changed > 0 && m.policy == LineReject && !m.discarding {
		m.fail(ErrBareLineEnding)
	}
}

// sourceEnded handles the end of the source: the end of the last BDAT
// chunk, or the connection failing or closing in the middle of DATA.
func (m *MessageReader) sourceEnded(err error) {
	if err == io.EOF { // only avail's end of the last chunk
		if !m.discarding {
			m.out = m.enc.End(m.out)
		}
		m.checkLines()
		m.done = true
		return
	}
	m.srcErr = err
	m.fail(err)
	m.done = true
}

// fail records the first error for the handler and stops keeping text.
func (m *MessageReader) fail(err error) {
	if m.err == nil {
		m.err = err
	}
	m.discarding = true
	m.out, m.outOff = m.out[:0], 0
}

// Normalized counts the bare CRs, bare LFs and NULs the line-ending rule
// changed so far.
func (m *MessageReader) Normalized() int { return m.enc.Changed }
