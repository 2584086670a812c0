package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// LinePolicy says what the message readers do with a bare CR, a bare LF
// or a NUL. Nothing we forward holds one: a next hop with a laxer parser
// could see a second message in them (CVE-2023-51764 and friends), and a
// next hop that drops NULs could see <CRLF>.<CRLF> where we saw text.
type LinePolicy uint8

const (
	// LineReject reads to the real end of data, then refuses the message.
	LineReject LinePolicy = iota
	// LineNormalize turns every bare CR or LF into CRLF and drops NULs.
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
)

// MessageReader is what a Handler reads a message from: the text after
// dot-unstuffing (DATA) or the chunks (BDAT), with every line ending a
// CRLF and no NUL. It is valid only during Handler.Data.
type MessageReader struct {
	src    *bufio.Reader
	dotted bool // DATA: dot-stuffing and the <CRLF>.<CRLF> end
	policy LinePolicy
	max    int64 // 0: no limit

	n          int64 // bytes read from src
	out        []byte
	outOff     int
	err        error // returned to the handler after out is drained
	srcErr     error // the connection's error: the session cannot go on
	done       bool  // the end of data has been read
	discarding bool  // after an error: parse to the end, keep nothing

	// The line machine; see step.
	lineStart bool // the next byte starts a line
	afterCRLF bool // the last line ending was a real CRLF (or none yet)
	dotOnly   bool // the line so far is one '.'
	pendingCR bool // a CR whose next byte is not seen yet

	// Normalized counts the bare CRs, bare LFs and NULs changed.
	Normalized int
}

func (m *MessageReader) reset(src *bufio.Reader, dotted bool, p LinePolicy, max int64) {
	*m = MessageReader{src: src, dotted: dotted, policy: p, max: max, out: m.out[:0],
		lineStart: true, afterCRLF: true}
}

// Read returns the message text.
func (m *MessageReader) Read(p []byte) (int, error) {
	for m.outOff == len(m.out) {
		if m.err != nil {
			return 0, m.err
		}
		if m.done {
			return 0, io.EOF
		}
		m.out, m.outOff = m.out[:0], 0
		m.fill()
	}
	n := copy(p, m.out[m.outOff:])
	m.outOff += n
	return n, nil
}

// drain reads what is left of the message and throws it away, so the
// next command is read where the client sent it.
func (m *MessageReader) drain() {
	m.discarding = true
	for !m.done && m.srcErr == nil {
		m.out, m.outOff = m.out[:0], 0
		m.fill()
	}
}

// fill consumes one slice of the source, up to a LF.
func (m *MessageReader) fill() {
	if m.srcErr != nil {
		m.fail(m.srcErr)
		m.done = true
		return
	}
	chunk, err := m.src.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		if err == io.EOF && !m.dotted {
			// BDAT: the source is the chunks, and this is their end.
			m.finishBDAT(chunk)
			return
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		m.srcErr = err
	}
	m.n += int64(len(chunk))
	if m.max > 0 && m.n > m.max && !m.discarding {
		m.fail(ErrTooLarge)
	}
	m.consume(chunk)
	if m.srcErr != nil {
		m.fail(m.srcErr)
		m.done = true
	}
}

func (m *MessageReader) finishBDAT(chunk []byte) {
	m.n += int64(len(chunk))
	if m.max > 0 && m.n > m.max && !m.discarding {
		m.fail(ErrTooLarge)
	}
	m.consume(chunk)
	// A message that ends without a line ending is completed with CRLF,
	// as its last line could not otherwise be forwarded.
	if m.pendingCR {
		m.pendingCR = false
		m.emit('\r', '\n')
	} else if m.dotOnly {
		m.dotOnly = false
		m.emit('.', '\r', '\n')
	} else if !m.lineStart {
		m.emit('\r', '\n')
	}
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

func (m *MessageReader) emit(b ...byte) {
	if !m.discarding {
		m.out = append(m.out, b...)
	}
}

// bad records a bare CR, bare LF or NUL; false means it is dropped
// (reject: the message is refused anyway).
func (m *MessageReader) bad() {
	if m.policy == LineReject {
		m.fail(ErrBareLineEnding)
		return
	}
	m.Normalized++
}

// consume runs the line machine over chunk. Most lines are whole, end in
// CRLF and hold no CR or NUL inside: they take the fast path.
func (m *MessageReader) consume(c []byte) {
	if m.lineStart && !m.pendingCR && !m.dotOnly && len(c) >= 2 && c[len(c)-1] == '\n' && c[len(c)-2] == '\r' &&
		bytes.IndexByte(c[:len(c)-2], '\r') < 0 && bytes.IndexByte(c, 0) < 0 {
		if m.dotted && c[0] == '.' {
			if len(c) == 3 {
				if m.afterCRLF {
					m.done = true
					return
				}
			} else {
				c = c[1:] // a stuffed dot, removed once
			}
		}
		m.emit(c...)
		m.afterCRLF = true
		return
	}
	for i, b := range c {
		if m.step(b) {
			if i != len(c)-1 {
				// Cannot happen: the chunk ends at the LF that ended data.
				m.fail(io.ErrUnexpectedEOF)
			}
			m.done = true
			return
		}
	}
}

// step feeds one byte to the line machine; true at the end of data.
// A line is ended by CRLF, a bare CR or a bare LF. A line that begins
// with '.' and holds more has its dot removed (RFC 5321 §4.5.2); a line
// of only '.' ends the data when it and the line before it end in CRLF.
func (m *MessageReader) step(b byte) bool {
	if m.pendingCR {
		m.pendingCR = false
		if b == '\n' {
			if m.dotOnly {
				m.dotOnly = false
				if m.afterCRLF && m.dotted {
					return true
				}
				m.emit('.')
			}
			m.emit('\r', '\n')
			m.afterCRLF, m.lineStart = true, true
			return false
		}
		if m.dotOnly {
			m.dotOnly = false
			m.emit('.')
		}
		m.bad()
		m.emit('\r', '\n')
		m.afterCRLF, m.lineStart = false, true
	}
	if m.dotOnly {
		switch b {
		case '\r':
			m.pendingCR = true
			return false
		case '\n':
			m.dotOnly = false
			m.emit('.')
			m.bad()
			m.emit('\r', '\n')
			m.afterCRLF, m.lineStart = false, true
			return false
		}
		m.dotOnly = false // the dot was stuffing
	} else if m.lineStart {
		m.lineStart = false
		if b == '.' && m.dotted {
			m.dotOnly = true
			return false
		}
	}
	switch b {
	case '\r':
		m.pendingCR = true
	case '\n':
		m.bad()
		m.emit('\r', '\n')
		m.afterCRLF, m.lineStart = false, true
	case 0:
		m.bad()
	default:
		m.emit(b)
	}
	return false
}
