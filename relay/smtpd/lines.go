package smtpd

import "bytes"

// The line-ending rule, in one place for what the server reads and what
// delivery writes, so the two cannot disagree about where a line ends:
//
//   - NUL bytes are dropped, before anything else is decided;
//   - a line ends at CRLF, or at a bare LF, which becomes CRLF;
//   - a bare CR (one not followed by LF) ends nothing and is dropped, so
//     "a\r\r\n" is the one line "a";
//   - the last line is ended with CRLF.
//
// Under LineReject the message readers refuse what the rule would change
// (TextEncoder.Changed); under LineNormalize they pass on what it makes.
// What leaves the gateway never holds a bare CR, a bare LF or a NUL: a
// next hop with a laxer parser could see a second message in them (SMTP
// smuggling, CVE-2023-51764), and one that drops NULs could see
// <CRLF>.<CRLF> where we saw text.

// TextEncoder applies the line-ending rule to a stream cut into pieces
// anywhere, and with Dots stuffs a leading dot (RFC 5321 §4.5.2) for DATA.
// The usual message is already clean: whole clean lines are copied in
// bulk, found with a few vectorized scans per line.
type TextEncoder struct {
	// Dots doubles a "." that starts a line (sending with DATA).
	Dots bool
	// Changed counts the bare CRs, bare LFs and NULs the rule changed.
	Changed int

	cr  bool // the last byte taken was a CR whose next byte is not seen yet
	mid bool // inside a line: a "." now does not start one
	// dirty: the current line failed cleanLines; it is not looked at
	// again before it ends, so that a line of bare CRs, or one longer
	// than the buffer, costs one scan, not one per byte.
	dirty bool
}

// Append encodes p onto dst.
func (e *TextEncoder) Append(dst, p []byte) []byte {
	for len(p) > 0 {
		if p[0] == 0 {
			// Dropped before any decision: "\x00." at a line start is
			// stuffed like ".", "\r\x00\n" is one line end.
			e.Changed++
			p = p[1:]
			continue
		}
		if e.cr {
			e.cr = false
			if p[0] == '\n' {
				dst = append(dst, '\r', '\n')
				e.mid, e.dirty = false, false
				p = p[1:]
				continue
			}
			e.Changed++ // a bare CR: dropped, the line goes on
		}
		if !e.mid && e.Dots && p[0] == '.' {
			dst = append(dst, '.')
			e.mid = true
		}
		if !e.dirty {
			if n := cleanLines(p, e.Dots); n > 0 {
				dst = append(dst, p[:n]...)
				p, e.mid = p[n:], false
				continue
			}
			e.dirty = true
		}
		// The current line needs attention: copy up to its first CR, LF
		// or NUL, and decide on that byte.
		i := lineSpecial(p)
		if i < 0 {
			e.mid = true
			return append(dst, p...)
		}
		if i > 0 {
			dst = append(dst, p[:i]...)
			e.mid = true
		}
		switch p[i] {
		case '\n':
			e.Changed++
			dst = append(dst, '\r', '\n')
			e.mid, e.dirty = false, false
		case '\r':
			e.cr = true
		}
		if p[i] != 0 {
			i++ // a NUL is dropped at the top of the loop
		}
		p = p[i:]
	}
	return dst
}

// End completes the last line: the text always ends with CRLF.
func (e *TextEncoder) End(dst []byte) []byte {
	if e.cr {
		e.Changed++
		e.cr = false
	}
	if e.mid {
		dst = append(dst, '\r', '\n')
		e.mid = false
	}
	e.dirty = false
	return dst
}

// AtLineStart reports whether the next byte starts a line (nothing is
// pending): a caller may then copy what cleanLines finds without the
// encoder.
func (e *TextEncoder) AtLineStart() bool { return !e.cr && !e.mid }

// cleanLines returns the length of the longest prefix of p that is the
// rest of the current line and whole lines after it, each ending in CRLF
// and holding no other CR or LF and no NUL; with dots, no line after the
// first starts with '.' either. Such a prefix is what the rule leaves as
// it is.
//
// It finds the line ends one IndexByte a line, then checks the stray CRs
// and NULs of all those lines at once: two vectorized passes instead of
// two calls a line, which at ordinary line lengths was most of the cost.
// Only when a pass finds one does it go line by line to say where. Its
// cost stays what it returns and one line more, at most three times over.
func cleanLines(p []byte, dots bool) int {
	n, lines := 0, 0
	for n < len(p) {
		if dots && n > 0 && p[n] == '.' {
			break
		}
		i := bytes.IndexByte(p[n:], '\n')
		if i < 1 || p[n+i-1] != '\r' {
			break
		}
		n += i + 1
		lines++
	}
	// Each of those lines ends in CR LF: any other CR is stray.
	if bytes.Count(p[:n], crByte) == lines && bytes.IndexByte(p[:n], 0) < 0 {
		return n
	}
	return cleanLinesEach(p[:n])
}

var crByte = []byte{'\r'}

// cleanLinesEach is cleanLines for p of whole CRLF-ended lines that a dot
// does not stop: it finds the first line holding a CR or a NUL.
func cleanLinesEach(p []byte) int {
	n := 0
	for n < len(p) {
		i := bytes.IndexByte(p[n:], '\n')
		if line := p[n : n+i-1]; bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			break
		}
		n += i + 1
	}
	return n
}

// IsCleanText reports whether p is whole lines, each ended by a CRLF and
// holding no other CR or LF and no NUL: text the line-ending rule leaves
// as it is.
func IsCleanText(p []byte) bool { return cleanLines(p, false) == len(p) }

// lineSpecial returns the index of the first CR, LF or NUL in p, or -1.
func lineSpecial(p []byte) int { return bytes.IndexAny(p, "\r\n\x00") }
