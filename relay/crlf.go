package relay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// LinePolicy says what to do with a bare LF or bare CR inside DATA.
// go-smtp ends DATA only at <CRLF>.<CRLF>, so nothing is smuggled into this
// gateway; but the bytes would be stored and relayed, and a next hop with a
// laxer parser could see a second message in them (CVE-2023-51764 and
// friends). So bare line endings are refused or made into CRLF here,
// before the message is stored.
type LinePolicy uint8

const (
	// LineReject refuses a message with a bare CR or LF.
	LineReject LinePolicy = iota
	// LineNormalize turns every bare CR or LF into CRLF (Postfix >= 3.9's
	// smtpd_forbid_bare_newline = normalize).
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

// errBareLineEnding is returned by a LineReject reader.
var errBareLineEnding = errors.New("message contains a bare CR or LF; lines must end with CRLF")

// crlfReader applies a LinePolicy to a stream.
type crlfReader struct {
	src       io.Reader
	policy    LinePolicy
	in        []byte
	buf       []byte
	out       []byte // bytes produced but not yet returned
	pendingCR bool
	srcErr    error // the source's error, returned once out is drained
	err       error
	// normalized counts the bare line endings fixed.
	normalized int
}

func newCRLFReader(r io.Reader, p LinePolicy) *crlfReader {
	c := &crlfReader{in: make([]byte, 16<<10), buf: make([]byte, 0, 32<<10)}
	c.reset(r, p)
	return c
}

// reset makes c read r afresh, keeping its buffers.
func (c *crlfReader) reset(r io.Reader, p LinePolicy) {
	*c = crlfReader{src: r, policy: p, in: c.in, buf: c.buf[:0]}
}

// dataReaders pools the per-message buffers of DATA (a crlfReader and the
// bufio.Reader over it): at thousands of messages a second, allocating
// them anew is a measurable share of the garbage collector's work.
var dataReaders = sync.Pool{New: func() any {
	cr := newCRLFReader(nil, LineReject)
	return &dataReader{cr: cr, br: bufio.NewReaderSize(cr, 16<<10)}
}}

type dataReader struct {
	cr *crlfReader
	br *bufio.Reader
}

// getDataReader returns pooled readers over r; give them back with
// putDataReader once r is consumed.
func getDataReader(r io.Reader, p LinePolicy) *dataReader {
	d := dataReaders.Get().(*dataReader)
	d.cr.reset(r, p)
	d.br.Reset(d.cr)
	return d
}

func putDataReader(d *dataReader) {
	d.cr.reset(nil, LineReject)
	d.br.Reset(nil)
	dataReaders.Put(d)
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 && c.err == nil {
		c.fill()
	}
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		return n, nil
	}
	return 0, c.err
}

func (c *crlfReader) fill() {
	if c.srcErr != nil {
		if c.pendingCR {
			c.pendingCR = false
			if c.bare() {
				c.out = append(c.buf[:0], '\r', '\n')
			}
			return
		}
		c.err = c.srcErr
		return
	}
	n, err := c.src.Read(c.in)
	c.srcErr = err
	buf := c.buf[:0]
	for _, b := range c.in[:n] {
		if c.pendingCR {
			c.pendingCR = false
			if b == '\n' {
				buf = append(buf, '\r', '\n')
				continue
			}
			if !c.bare() {
				return
			}
			buf = append(buf, '\r', '\n')
		}
		switch b {
		case '\r':
			c.pendingCR = true
		case '\n':
			if !c.bare() {
				return
			}
			buf = append(buf, '\r', '\n')
		default:
			buf = append(buf, b)
		}
	}
	c.buf = buf
	c.out = buf
}

// bare records a bare line ending; false means the reader failed (reject).
func (c *crlfReader) bare() bool {
	if c.policy == LineReject {
		c.err = errBareLineEnding
		c.out = nil
		return false
	}
	c.normalized++
	return true
}
