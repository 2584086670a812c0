package msgauth

import (
	"bytes"
	"strings"
)

// AddHeader returns header with every Authentication-Results field that
// claims our authserv-id removed (RFC 8601 section 5: they can only be
// forgeries from outside, or our own from an earlier pass) and res.Header
// put on top. Fields of other authserv-ids are kept.
func (v *Verifier) AddHeader(header []byte, res Result) []byte {
	out := make([]byte, 0, len(header)+len(res.Header))
	out = append(out, res.Header...)
	return append(out, StripAuthResults(header, v.cfg.AuthservID)...)
}

// StripOurs removes the Authentication-Results fields that claim our
// authserv-id from header.
func (v *Verifier) StripOurs(header []byte) []byte {
	return StripAuthResults(header, v.cfg.AuthservID)
}

// StripAuthResults removes the Authentication-Results fields whose
// authserv-id is id (compared without case); header is a CRLF header
// block.
func StripAuthResults(header []byte, id string) []byte {
	var out []byte
	for len(header) > 0 {
		end := fieldEnd(header)
		f := header[:end]
		if !ours(f, id) {
			out = append(out, f...)
		}
		header = header[end:]
	}
	return out
}

// fieldEnd is the length of the first field of h with its continuation
// lines.
func fieldEnd(h []byte) int {
	end := 0
	for {
		i := bytes.IndexByte(h[end:], '\n')
		if i < 0 {
			return len(h)
		}
		end += i + 1
		if end >= len(h) || (h[end] != ' ' && h[end] != '\t') {
			return end
		}
	}
}

// ours reports whether field f is an Authentication-Results field for id.
// The authserv-id is the first token of the value, after any comments.
func ours(f []byte, id string) bool {
	name, value, ok := bytes.Cut(f, []byte(":"))
	if !ok || !strings.EqualFold(string(bytes.TrimSpace(name)), "Authentication-Results") {
		return false
	}
	v := skipCFWS(string(value))
	end := strings.IndexAny(v, "; \t\r\n(")
	if end < 0 {
		end = len(v)
	}
	return strings.EqualFold(strings.Trim(v[:end], `"`), id)
}

// skipCFWS drops leading white space and (nested) comments.
func skipCFWS(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if !strings.HasPrefix(s, "(") {
			return s
		}
		depth := 0
		i := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(s) {
			return ""
		}
		s = s[i+1:]
	}
}
