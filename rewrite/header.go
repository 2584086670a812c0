package rewrite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrHeaderTooLarge is returned by ReadHeader for a header block over the
// limit; the relay answers 552 5.3.4.
var ErrHeaderTooLarge = errors.New("header block too large")

// ReadHeader reads the raw header block of a message, up to and including
// the empty line that ends it (CRLF or LF), or to EOF for a message without
// a body. The reader is left at the first byte of the body, which the caller
// streams on unchanged. A block over max bytes is ErrHeaderTooLarge.
func ReadHeader(r *bufio.Reader, max int) ([]byte, error) {
	// Usually the whole block is in the reader's first fill: it is copied
	// once, into a slice of its size, instead of grown line by line.
	switch _, err := r.Peek(1); err {
	case nil:
		b, _ := r.Peek(r.Buffered())
		if n := blockEnd(b, max); n > 0 {
			buf := make([]byte, n)
			copy(buf, b)
			r.Discard(n)
			return buf, nil
		}
	case io.EOF:
		return nil, nil // an empty message
	default:
		return nil, err // returned once: bufio does not keep it
	}
	var buf []byte
	lineStart := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return nil, fmt.Errorf("%w: more than %d bytes before the empty line", ErrHeaderTooLarge, max)
		}
		buf = append(buf, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue // the same line goes on
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
		if line := buf[lineStart:]; len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// blockEnd returns the length of the header block at the start of b, up
// to and including its empty line, or 0 when b holds no empty line within
// max bytes (the block goes on past b, or is too large).
func blockEnd(b []byte, max int) int {
	for i := 0; i < len(b) && i <= max; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		next := i + j + 1
		if j == 0 || j == 1 && b[i] == '\r' {
			if next > max {
				return 0
			}
			return next
		}
		i = next
	}
	return 0
}

// field is one header field of the block. Offsets are absolute.
type field struct {
	start, end       int // the whole field, including its last line break
	nameEnd          int // the name is s[start:nameEnd]; -1 for a line that is no field
	valStart, valEnd int // the value: after ':' up to its last line break
}

func (f field) name(s string) string {
	if f.nameEnd < 0 {
		return ""
	}
	return s[f.start:f.nameEnd]
}

// eol returns the field's own line ending (or the block's, for a last
// field without one), used when a rewrite must fold.
func (f field) eol(s string) string {
	i := strings.IndexByte(s[f.start:f.end], '\n')
	if i >= 0 {
		i += f.start
	} else if i = strings.IndexByte(s, '\n'); i < 0 {
		return "\r\n"
	}
	if i > 0 && s[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// splitFields cuts a header block into fields: a line and its continuation
// lines (starting with SP or HT), up to the empty line. Lines that are no
// field (no colon, a bad name, a continuation with nothing before it) are
// kept as pseudo-fields with nameEnd -1, so that the block's bytes are all
// accounted for and written back as they were.
func splitFields(s string, out []field) []field {
	if out == nil {
		// At most one field a line: one allocation, not one per doubling.
		out = make([]field, 0, strings.Count(s, "\n")+1)
	}
	i := 0
	for i < len(s) {
		lineEnd := strings.IndexByte(s[i:], '\n')
		next := len(s)
		if lineEnd >= 0 {
			next = i + lineEnd + 1
		}
		line := s[i:next]
		if line == "\n" || line == "\r\n" {
			break // the empty line: the rest is not ours
		}
		if isWSP(s[i]) && len(out) > 0 {
			out[len(out)-1].end = next
			out[len(out)-1].valEnd = valueEnd(s, next)
			i = next
			continue
		}
		f := field{start: i, end: next, nameEnd: -1}
		if colon := strings.IndexByte(line, ':'); colon > 0 && !isWSP(s[i]) {
			n := strings.TrimRight(line[:colon], " \t")
			if validName(n) {
				f.nameEnd = i + len(n)
				f.valStart = i + colon + 1
				f.valEnd = valueEnd(s, next)
			}
		}
		out = append(out, f)
		i = next
	}
	return out
}

// valueEnd is the end of a field's value: before the line break at end.
func valueEnd(s string, end int) int {
	if end > 0 && s[end-1] == '\n' {
		end--
		if end > 0 && s[end-1] == '\r' {
			end--
		}
	}
	return end
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] <= ' ' || n[i] >= 0x7f {
			return false
		}
	}
	return true
}

// addressFields maps lower-case field names to their class.
var addressFields = map[string]Class{
	"from":                        HeaderSender,
	"sender":                      HeaderSender,
	"reply-to":                    HeaderSender,
	"resent-from":                 HeaderSender,
	"resent-sender":               HeaderSender,
	"disposition-notification-to": HeaderSender,
	"return-receipt-to":           HeaderSender,
	"to":                          HeaderRecipient,
	"cc":                          HeaderRecipient,
	"bcc":                         HeaderRecipient,
	"resent-to":                   HeaderRecipient,
	"resent-cc":                   HeaderRecipient,
	"resent-bcc":                  HeaderRecipient,
}

// fieldClass returns the class of an address field, 0 for other fields.
func fieldClass(name string) Class {
	var buf [32]byte
	if len(name) > len(buf) {
		return 0
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return addressFields[string(buf[:len(name)])]
}

// RFC 5322 §2.1.1 line limits.
const (
	maxLine  = 998
	foldLine = 78
)

// longestLine returns the length of the longest line of f, line breaks excluded.
func longestLine[T string | []byte](f T) int {
	longest, start := 0, 0
	for i := 0; i < len(f); i++ {
		if f[i] != '\n' {
			continue
		}
		n := i - start
		if n > 0 && f[i-1] == '\r' {
			n--
		}
		longest, start = max(longest, n), i+1
	}
	n := len(f) - start
	if n > 0 && f[len(f)-1] == '\r' {
		n--
	}
	return max(longest, n)
}

// refold breaks the lines of a whole field (name included) that are longer
// than 998 octets. It folds at white space outside quoted strings, comments
// and literals, preferring the space after a comma and aiming at 78 octets;
// only when that is impossible inside a quoted string or comment (where
// folding white space is allowed too). Lines within the limit are not
// touched. ok is false when a line could not be brought under the limit (a
// single word longer than 998 octets).
func refold(f, eol string) (string, bool) {
	if longestLine(f) <= maxLine {
		return f, true
	}
	points := foldPoints(f)
	var b strings.Builder
	b.Grow(len(f) + len(f)/foldLine*len(eol))
	lineStart := 0
	for lineStart < len(f) {
		lineEnd := len(f)
		if i := strings.IndexByte(f[lineStart:], '\n'); i >= 0 {
			lineEnd = lineStart + i + 1
		}
		content := valueEnd(f, lineEnd)
		cur := lineStart
		if content-cur > maxLine {
			for content-cur > foldLine {
				p := pickBreak(f, points, cur, content)
				if p < 0 {
					break
				}
				b.WriteString(f[cur:p])
				b.WriteString(eol)
				cur = p
			}
		}
		b.WriteString(f[cur:lineEnd])
		lineStart = lineEnd
	}
	out := b.String()
	return out, longestLine(out) <= maxLine
}

// foldPoint is a white space byte where a field may be folded; top is true
// outside quoted strings, comments and literals.
type foldPoint struct {
	at  int
	top bool
}

// pickBreak chooses where to fold the piece of line starting at cur:
// within 78 octets the last top-level point after a comma, else the last
// top-level point; past 78 the first top-level point that keeps the piece
// within 998; failing those, any point (inside quotes or comments), the
// last within 78 or else the first. -1 when there is none.
func pickBreak(f string, points []foldPoint, cur, end int) int {
	comma, top, firstTop, any, firstAny := -1, -1, -1, -1, -1
	for _, p := range points {
		if p.at <= cur || p.at >= end {
			continue
		}
		near := p.at-cur <= foldLine
		if firstAny < 0 {
			firstAny = p.at
		}
		if near {
			any = p.at
		}
		if p.top {
			if firstTop < 0 {
				firstTop = p.at
			}
			if near {
				top = p.at
				if f[p.at-1] == ',' {
					comma = p.at
				}
			}
		}
		if !near && firstTop >= 0 {
			break
		}
	}
	switch {
	case comma > 0:
		return comma
	case top > 0:
		return top
	case firstTop > 0 && firstTop-cur <= maxLine:
		return firstTop
	case any > 0:
		return any
	}
	return firstAny
}

// foldPoints lists the white space where a field may be folded: the first
// byte of each run of white space after the colon, but not the one right
// after it.
func foldPoints(f string) []foldPoint {
	var out []foldPoint
	colon := strings.IndexByte(f, ':')
	quoted, depth, literal := false, 0, false
	for i := colon + 1; i < len(f); i++ {
		c := f[i]
		if isWSP(c) && i > colon+1 && !isWSP(f[i-1]) && f[i-1] != '\n' {
			out = append(out, foldPoint{i, !quoted && depth == 0 && !literal})
			continue
		}
		switch {
		case c == '\\' && (quoted || depth > 0 || literal):
			i++
		case quoted:
			quoted = c != '"'
		case depth > 0:
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case literal:
			literal = c != ']'
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == '[':
			literal = true
		}
	}
	return out
}
