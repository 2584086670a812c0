package sanitize

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// parseMediaType reads a Content-Type or Content-Disposition value as
// mail clients do, where mime.ParseMediaType refuses what real mailers
// send: an unquoted value holding "=" (boundary=----=_NextPart_000_0001),
// a parameter without a value (charset=shift_jis; format), empty ones
// (";;"), a repeated parameter (the first counts), an unclosed quote,
// comments. RFC 2231 parameters (name*=, name*0*=, name*1=…) are joined
// and decoded in their charset; the result has the plain names. The value
// is lower case; "" when there is none.
func parseMediaType(v string) (string, map[string]string) {
	value, rest, _ := strings.Cut(v, ";")
	value = strings.ToLower(strings.TrimSpace(stripComment(value)))
	params := map[string]string{}
	type segment struct {
		n        int
		text     string
		extended bool
	}
	var split map[string][]segment
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			// A parameter with no value.
			if eq < 0 {
				break
			}
			rest = rest[eq+1:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			val, rest = quoted(rest[1:])
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			val = strings.TrimSpace(stripComment(rest[:end]))
			rest = rest[end:]
		}
		if name == "" {
			continue
		}
		base, sect, isSplit := strings.Cut(name, "*")
		if !isSplit {
			if _, seen := params[name]; !seen {
				params[name] = val
			}
			continue
		}
		// RFC 2231: name*=ext, name*N=plain, name*N*=ext.
		ext := strings.HasSuffix(sect, "*") || sect == ""
		n := 0
		if num := strings.TrimSuffix(sect, "*"); num != "" {
			var err error
			if n, err = strconv.Atoi(num); err != nil || n < 0 || n > 999 {
				continue
			}
		}
		if split == nil {
			split = map[string][]segment{}
		}
		if slices.ContainsFunc(split[base], func(s segment) bool { return s.n == n }) {
			continue
		}
		split[base] = append(split[base], segment{n, val, ext})
	}
	for base, segs := range split {
		slices.SortFunc(segs, func(a, b segment) int { return a.n - b.n })
		var raw []byte
		cs := ""
		for i, s := range segs {
			text := s.text
			if s.extended {
				if i == 0 {
					// charset'language'value; a missing charset is
					// guessed from the bytes.
					if c, r, ok := strings.Cut(text, "'"); ok {
						if _, r2, ok := strings.Cut(r, "'"); ok {
							cs, text = c, r2
						}
					}
				}
				raw = append(raw, percentDecode(text)...)
			} else {
				raw = append(raw, text...)
			}
		}
		// The RFC 2231 form wins over a plain one of the same name: it is
		// what the sender meant where both are given.
		params[base] = decodeText(raw, cs)
	}
	return value, params
}

// quoted reads a quoted string whose opening quote is consumed: the value
// with backslash escapes undone, and what follows the closing quote. An
// unclosed string runs to the end.
func quoted(s string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// stripComment removes a trailing RFC 822 comment from an unquoted value
// ("us-ascii (Plain text)"); a parenthesis inside a token stays.
func stripComment(v string) string {
	if i := strings.Index(v, " ("); i >= 0 && strings.HasSuffix(strings.TrimSpace(v), ")") {
		return v[:i]
	}
	if strings.HasPrefix(strings.TrimSpace(v), "(") {
		if i := strings.IndexByte(v, ')'); i >= 0 {
			return v[i+1:]
		}
	}
	return v
}

// percentDecode undoes RFC 2231's %XX.
func percentDecode(s string) []byte { return appendUnescaped(make([]byte, 0, len(s)), s, '%') }

// appendUnescaped appends s to dst with every esc followed by two hex
// digits decoded (RFC 2231's %XX, quoted-printable's =XX, a PDF name's
// #XX); an esc that starts no such escape stays as it is.
func appendUnescaped[T string | []byte](dst []byte, s T, esc byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == esc && i+2 < len(s) {
			if h, ok := unhex(s[i+1]); ok {
				if l, ok := unhex(s[i+2]); ok {
					dst = append(dst, h<<4|l)
					i += 2
					continue
				}
			}
		}
		dst = append(dst, s[i])
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeWords decodes RFC 2047 encoded words in any charset decodeText
// reads. Adjacent words in the same charset are joined before decoding,
// so a character split between two words (as some mailers split UTF-8
// and Shift_JIS) reads whole; white space between encoded words goes, as
// RFC 2047 says. A word that does not parse stays as it is. Words inside
// quoted strings and parameter values are decoded too: mailers put them
// there and every mail client reads them. raw, when not nil, decodes the
// text outside the words (which then holds raw 8-bit bytes).
func decodeWords(s string, raw func(string) string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if raw == nil {
		raw = func(s string) string { return s }
	}
	var b strings.Builder
	var pend []byte // the bytes of a run of words in pendCS
	pendCS, hasPend := "", false
	flush := func() {
		if hasPend {
			b.WriteString(decodeText(pend, pendCS))
			pend, hasPend = pend[:0], false
		}
	}
	afterWord := false
	for s != "" {
		i := strings.Index(s, "=?")
		if i < 0 {
			flush()
			b.WriteString(raw(s))
			break
		}
		cs, data, n, ok := encodedWord(s[i:])
		if !ok {
			flush()
			b.WriteString(raw(s[:i+2]))
			s = s[i+2:]
			afterWord = false
			continue
		}
		between := s[:i]
		s = s[i+n:]
		if afterWord && strings.Trim(between, " \t\r\n") == "" {
			if strings.EqualFold(cs, pendCS) {
				pend = append(pend, data...)
				continue
			}
			between = ""
		}
		flush()
		b.WriteString(raw(between))
		pend, pendCS, hasPend, afterWord = append(pend[:0], data...), cs, true, true
	}
	flush()
	return b.String()
}

// encodedWord parses "=?charset?B|Q?text?=" at the start of s: the
// charset (without an RFC 2231 language), the decoded bytes and the
// length consumed.
func encodedWord(s string) (cs string, data []byte, n int, ok bool) {
	rest := s[2:]
	q1 := strings.IndexByte(rest, '?')
	if q1 <= 0 || q1+2 >= len(rest) || rest[q1+2] != '?' {
		return "", nil, 0, false
	}
	cs = rest[:q1]
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	enc := rest[q1+1] | 0x20
	text := rest[q1+3:]
	end := strings.Index(text, "?=")
	if end < 0 || strings.ContainsAny(text[:end], " \t\r\n") {
		return "", nil, 0, false
	}
	text = text[:end]
	n = 2 + q1 + 3 + end + 2
	switch enc {
	case 'b':
		// Padding is optional in practice; a last lone character
		// carries no whole byte.
		t := strings.TrimRight(text, "=")
		if len(t)%4 == 1 {
			t = t[:len(t)-1]
		}
		d, err := base64.RawStdEncoding.DecodeString(t)
		if err != nil {
			return "", nil, 0, false
		}
		return cs, d, n, true
	case 'q':
		return cs, appendUnescaped(nil, strings.ReplaceAll(text, "_", " "), '='), n, true
	}
	return "", nil, 0, false
}
