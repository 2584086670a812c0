package sanitize

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// The reader of a message's MIME structure. It reads as mail clients do,
// not as RFC 2046 would have senders write: a multipart whose closing
// delimiter never comes ends where an enclosing multipart's delimiter or
// the message ends; a part's header ends at a blank line or at the first
// line that is no header field (which then starts the body); boundaries
// may be as long as the read buffer. Everything is streamed a line at a
// time through one bufio.Reader: memory is the buffer, whatever the size
// of the message or of a line.

// source is the stream of lines of one message (or of an embedded message
// whose transfer encoding had to be undone). The multiparts being walked
// push their delimiters; a part ends at a delimiter of any of them.
type source struct {
	br     *bufio.Reader
	bounds [][]byte // "--boundary" of each multipart being walked, outermost first

	// Why the current part ended: stop is the level (index into bounds)
	// of the delimiter seen, -1 while the part goes on; closing says it
	// was the closing delimiter ("--boundary--"). eof: the input ended.
	stop    int
	closing bool
	eof     bool
	err     error // a read failure (not EOF): the input ends there too

	partial bool // the last line filled the buffer: the next read continues it, and is no delimiter

	unread    []byte // a line handed back (a header's first body line), returned before the input's next
	unreadNL  []byte
	hasUnread bool

	// Read's state: the line break of the last line is held back until
	// the next line shows it is no delimiter (RFC 2046: the break before a
	// delimiter belongs to it).
	held  []byte
	outNL []byte
	out   []byte
}

const readBuffer = 32 << 10

func newSource(r io.Reader) *source {
	return &source{br: bufio.NewReaderSize(r, readBuffer), stop: -1}
}

// next returns the next line of the current part without its line break,
// and the break ("" for a line cut by the buffer or the input's last
// line). ok is false when the part has ended: at a delimiter of any
// multipart being walked, or at the end of the input. text is valid until
// the next call.
func (s *source) next() (text, nl []byte, ok bool) {
	if s.stop >= 0 || s.eof {
		return nil, nil, false
	}
	if s.hasUnread {
		s.hasUnread = false
		return s.unread, s.unreadNL, true
	}
	raw, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.partial = true
		return raw, nil, true
	}
	if err != nil && err != io.EOF {
		s.err, s.eof = err, true
		return nil, nil, false
	}
	if len(raw) == 0 {
		s.eof = true
		return nil, nil, false
	}
	continued := s.partial
	s.partial = false
	text = raw
	if n := len(raw); raw[n-1] == '\n' {
		if n > 1 && raw[n-2] == '\r' {
			text, nl = raw[:n-2], raw[n-2:]
		} else {
			text, nl = raw[:n-1], raw[n-1:]
		}
	}
	if !continued && len(s.bounds) > 0 && len(text) >= 2 && text[0] == '-' && text[1] == '-' {
		if level, closing, ok := s.delimiter(text); ok {
			s.stop, s.closing = level, closing
			return nil, nil, false
		}
	}
	return text, nl, true
}

// delimiter reports whether a line is the delimiter of a multipart being
// walked, the innermost first: "--boundary", then "--" for the closing
// one, then only white space (transport padding).
func (s *source) delimiter(line []byte) (level int, closing, ok bool) {
	t := bytes.TrimRight(line, " \t\r")
	for i := len(s.bounds) - 1; i >= 0; i-- {
		b := s.bounds[i]
		if !bytes.HasPrefix(t, b) {
			continue
		}
		switch rest := t[len(b):]; {
		case len(rest) == 0:
			return i, false, true
		case len(rest) == 2 && rest[0] == '-' && rest[1] == '-':
			return i, true, true
		}
	}
	return 0, false, false
}

// pushBack hands a line back: the next call of next returns it.
func (s *source) pushBack(text, nl []byte) {
	s.unread = append(s.unread[:0], text...)
	s.unreadNL = append(s.unreadNL[:0], nl...)
	s.hasUnread = true
}

// push starts a multipart: its delimiter now ends parts.
func (s *source) push(boundary string) int {
	s.bounds = append(s.bounds, []byte("--"+boundary))
	return len(s.bounds) - 1
}

// pop ends the innermost multipart. A delimiter of its own that ended
// the last part is consumed; one of an enclosing multipart stays for it.
func (s *source) pop() {
	level := len(s.bounds) - 1
	s.bounds = s.bounds[:level]
	if s.stop == level {
		s.stop = -1
	}
}

// drain skips the rest of the current part.
func (s *source) drain() {
	s.out, s.outNL, s.held = nil, nil, nil
	for {
		if _, _, ok := s.next(); !ok {
			return
		}
	}
}

// startPart clears the body reader's state for the next part.
func (s *source) startPart() {
	s.out, s.outNL, s.held = nil, nil, nil
}

// Read reads the body of the current part, line breaks restored except
// the one before the delimiter that ends it.
func (s *source) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.outNL) > 0 {
			c := copy(p[n:], s.outNL)
			s.outNL = s.outNL[c:]
			n += c
			continue
		}
		if len(s.out) > 0 {
			c := copy(p[n:], s.out)
			s.out = s.out[c:]
			n += c
			continue
		}
		text, nl, ok := s.next()
		if !ok {
			break
		}
		// The line break is held past the next read, which reuses the
		// buffer it sits in: a constant stands for it.
		s.outNL, s.out, s.held = s.held, text, lineBreak(nl)
	}
	if n == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if len(p) > 0 {
			return 0, io.EOF
		}
	}
	return n, nil
}

var crlfBytes, lfBytes = []byte("\r\n"), []byte("\n")

func lineBreak(nl []byte) []byte {
	switch len(nl) {
	case 2:
		return crlfBytes
	case 1:
		return lfBytes
	}
	return nil
}

// field is one header field: its name as written and its raw bytes
// (name, colon, value and folding), every line ending in CRLF.
type field struct {
	name string
	raw  []byte
}

// value is the field's value unfolded, trimmed.
func (f field) value() string {
	i := bytes.IndexByte(f.raw, ':')
	v := f.raw[i+1:]
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.TrimSpace(v))
	}
	var b bytes.Buffer
	for line := range bytes.SplitSeq(v, []byte("\r\n")) {
		b.Write(line)
	}
	return string(bytes.TrimSpace(b.Bytes()))
}

// header is the fields of one entity, in order.
type header struct {
	fields []field
	// Dropped says which fields did not fit the caps and were left out.
	dropped []string
}

func (h *header) get(name string) string {
	for _, f := range h.fields {
		if equalFold(f.name, name) {
			return f.value()
		}
	}
	return ""
}

// equalFold is strings.EqualFold for ASCII field names, without its
// Unicode tables.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x|0x20 != y|0x20 || (x|0x20) < 'a' && x != y {
			return false
		}
	}
	return true
}

// Caps on a header: the top-level one is written out again, a part's
// is only read for its Content-* fields.
type headerCaps struct {
	fields    int // fields kept (MIME fields always are)
	bytes     int // bytes of all fields kept
	fieldSize int // bytes of one field
}

var (
	topCaps  = headerCaps{fields: 1000, bytes: 1 << 20, fieldSize: 64 << 10}
	partCaps = headerCaps{fields: 100, bytes: 64 << 10, fieldSize: 16 << 10}
)

// fieldName returns the name of a header field line, accepting the
// obsolete white space before the colon (RFC 5322 §4.5.3); ok is false
// for a line that is no field.
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return string(name), true
}

// readHeader reads an entity's header from s. It ends at a blank line,
// at the end of the part, or at the first line that is neither a field
// nor a continuation: that line is handed back as the first of the body,
// as mail clients read a header that lacks its blank line. top: a
// message's own header, where a byte order mark or an mbox "From " line
// before the first field is skipped.
func readHeader(s *source, caps headerCaps, top bool) *header {
	h := &header{}
	var overCap []string // names of fields over the caps, in order, counted
	overCount := map[string]int{}
	var cur []byte // the field being read
	var curName string
	size, kept, mime := 0, 0, 0
	over := false // the field being read is over its cap: its lines are skipped
	finish := func() {
		if cur == nil {
			return
		}
		switch {
		case over:
			h.dropped = append(h.dropped, fmt.Sprintf("%s: longer than %d bytes", curName, caps.fieldSize))
		case kept < caps.fields && size+len(cur) <= caps.bytes:
			h.fields = append(h.fields, field{name: curName, raw: cur})
			size += len(cur)
			kept++
		case isMIMEField(curName) && mime < maxMIMEFields:
			// The walker needs these whatever came before them.
			h.fields = append(h.fields, field{name: curName, raw: cur})
			mime++
		default:
			if overCount[curName] == 0 {
				overCap = append(overCap, curName)
			}
			overCount[curName]++
		}
		cur, over = nil, false
	}
	first := true
	lineCont := false // the chunk continues a line longer than the buffer
	for {
		text, nl, ok := s.next()
		if !ok {
			break
		}
		long := nl == nil && s.partial // the chunk does not end its line
		if lineCont {
			lineCont = long // the rest of a long line: its field is over the cap
			continue
		}
		lineCont = long
		if first && top {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
			if _, isField := fieldName(text); bytes.HasPrefix(text, []byte("From ")) && !isField {
				// mbox's separator; "From  : a@b" is the obsolete
				// syntax of a From field (RFC 5322 §4.5.3).
				first = false
				continue
			}
		}
		first = false
		if !long && len(bytes.TrimRight(text, " \t")) == 0 {
			// A blank line ends the header; one of white space only
			// inside a fold is obsolete folding (RFC 5322 §4.2), read
			// as clients read it: the field goes on when the next line
			// continues it. The white space line itself is left out.
			if len(text) == 0 || cur == nil {
				break
			}
			next, nextNL, ok := s.next()
			if !ok {
				break
			}
			s.pushBack(next, nextNL)
			if len(next) > 0 && (next[0] == ' ' || next[0] == '\t') {
				continue
			}
			break
		}
		if text[0] == ' ' || text[0] == '\t' {
			if cur == nil {
				continue // a continuation with no field before it
			}
			if long || len(cur)+len(text)+2 > caps.fieldSize {
				over = true
			}
			if !over {
				cur = append(append(cur, text...), '\r', '\n')
			}
			continue
		}
		name, isField := fieldName(text)
		if !isField {
			finish()
			s.pushBack(text, nl)
			break
		}
		finish()
		curName = name
		if long || len(text)+2 > caps.fieldSize {
			cur, over = []byte{}, true
			continue
		}
		// The name is written as RFC 5322 writes it, with no white
		// space before the colon.
		colon := bytes.IndexByte(text, ':')
		cur = append(append(append(make([]byte, 0, len(text)+2), name...), text[colon:]...), '\r', '\n')
	}
	finish()
	for _, name := range overCap {
		h.dropped = append(h.dropped, fmt.Sprintf("%s: %d past the cap of %d fields or %d bytes", name, overCount[name], caps.fields, caps.bytes))
	}
	return h
}

// maxMIMEFields bounds the Content-* fields kept past the caps.
const maxMIMEFields = 16

// isMIMEField: the fields the walker needs, kept whatever the caps.
func isMIMEField(name string) bool {
	return len(name) > 8 && equalFold(name[:8], "content-")
}
