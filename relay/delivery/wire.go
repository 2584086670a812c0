package delivery

import "bytes"

// wireBody turns a message into the bytes we send, whatever the spool or
// a delivery-time stage handed over: every line ends in CRLF (a bare CR
// or a bare LF becomes CRLF), NUL bytes are dropped, the last line is
// ended, and for DATA a line that starts with "." gets another one (RFC
// 5321 §4.5.2). So no receiver, however it reads line ends, can find an
// end of data other than ours (SMTP smuggling), and what we forward is
// decided here, byte by byte.
//
// Lines are copied in bulk: the usual message is already clean, and the
// work is then a few vectorized scans per line.
type wireBody struct {
	dots bool // DATA: stuff leading dots; BDAT sends lines as they are
	cr   bool // the last byte taken was a CR whose LF has not been seen
	mid  bool // inside a line: a "." now is not at a line start
}

// append encodes p onto dst.
func (e *wireBody) append(dst, p []byte) []byte {
	for len(p) > 0 {
		if p[0] == 0 {
			// Dropped before any decision: "\x00." at a line start is
			// stuffed like ".", "\r\x00\n" is one line end.
			p = p[1:]
			continue
		}
		if e.cr {
			e.cr, e.mid = false, false
			dst = append(dst, '\r', '\n')
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		if !e.mid {
			if e.dots && p[0] == '.' {
				dst = append(dst, '.')
			}
			e.mid = true
		}
		i := lineEnd(p)
		if i < 0 {
			return appendNoNUL(dst, p)
		}
		dst = appendNoNUL(dst, p[:i])
		if p[i] == '\n' {
			dst = append(dst, '\r', '\n')
			e.mid = false
		} else {
			e.cr = true
		}
		p = p[i+1:]
	}
	return dst
}

// end completes the last line: a message always ends with CRLF.
func (e *wireBody) end(dst []byte) []byte {
	if e.cr || e.mid {
		dst = append(dst, '\r', '\n')
	}
	e.cr, e.mid = false, false
	return dst
}

// lineEnd returns the index of the first CR or LF in p, or -1.
func lineEnd(p []byte) int {
	i := bytes.IndexByte(p, '\r')
	limit := p
	if i >= 0 {
		limit = p[:i]
	}
	if j := bytes.IndexByte(limit, '\n'); j >= 0 {
		return j
	}
	return i
}

// appendNoNUL appends p without its NUL bytes.
func appendNoNUL(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, 0)
		if i < 0 {
			return append(dst, p...)
		}
		dst = append(dst, p[:i]...)
		p = p[i+1:]
	}
}
