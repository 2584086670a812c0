package charset

import (
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
)

// The double-byte encodings are read one character at a time, through
// tables filled once from x/text's decoders, so that every character's
// bytes and validity are known: strict decoding names the bad byte, and
// detection scores what each candidate would make of the same bytes.
//
// x/text's decoders themselves cannot say where input is bad: they put
// U+FFFD in its place and never return an error.

// sjisTable maps a Shift_JIS pointer (lead and trail byte, as the WHATWG
// encoding standard numbers them) to its character; 0xFFFD is unassigned.
var sjisTable = sync.OnceValue(func() []uint16 {
	var raw []byte
	for lead := 0x81; lead <= 0xFC; lead++ {
		if lead == 0xA0 {
			lead = 0xE0
		}
		for trail := 0x40; trail <= 0xFC; trail++ {
			if trail != 0x7F {
				raw = append(raw, byte(lead), byte(trail))
			}
		}
	}
	t := table(japanese.ShiftJIS.NewDecoder().Bytes(raw))
	// The user-defined area (lead bytes F0-F9), which mobile carriers fill
	// with pictograms (docomo's sun is F89F): x/text leaves it unassigned,
	// Windows and the WHATWG standard map it to the Private Use Area
	// (F89F -> U+E63E, the code the carriers' own mappings use), which
	// keeps the characters distinct.
	for p := 8836; p < 10716; p++ {
		t[p] = uint16(0xE000 + p - 8836)
	}
	return t
})

// eucTables map JIS X 0208 and JIS X 0212 row and cell (each 0-93) to
// characters, read through EUC-JP; ISO-2022-JP uses them too.
var eucTables = sync.OnceValues(func() (jis0208, jis0212 []uint16) {
	var two, three []byte
	for c0 := 0xA1; c0 <= 0xFE; c0++ {
		for c1 := 0xA1; c1 <= 0xFE; c1++ {
			two = append(two, byte(c0), byte(c1))
			three = append(three, 0x8F, byte(c0), byte(c1))
		}
	}
	return table(japanese.EUCJP.NewDecoder().Bytes(two)), table(japanese.EUCJP.NewDecoder().Bytes(three))
})

// table turns decoded text, one character per entry, into a table. Every
// character of the JIS sets is in the Basic Multilingual Plane.
func table(text []byte, err error) []uint16 {
	if err != nil {
		panic("charset: building a table: " + err.Error())
	}
	t := make([]uint16, 0, utf8.RuneCount(text))
	for _, r := range string(text) {
		t = append(t, uint16(r))
	}
	return t
}

func isSJISLead(c byte) bool  { return c >= 0x81 && c <= 0x9F || c >= 0xE0 && c <= 0xFC }
func isSJISTrail(c byte) bool { return c >= 0x40 && c <= 0x7E || c >= 0x80 && c <= 0xFC }

// sjisPointer is the table index of a lead and trail byte.
func sjisPointer(lead, trail byte) int {
	p := int(lead) - 0x81
	if lead >= 0xE0 {
		p = int(lead) - 0xC1
	}
	t := int(trail) - 0x40
	if trail >= 0x80 {
		t = int(trail) - 0x41
	}
	return p*188 + t
}

// noRune is what an escape sequence decodes to: a change of state, no
// character.
const noRune = -1

// decoder reads one character at a time. A bad sequence has ok false and,
// outside ISO-2022-JP's double-byte runs, a length that never covers an
// ASCII byte (which starts the next character), so a stray lead byte
// cannot swallow a line break or a delimiter.
type decoder struct {
	enc   Encoding
	state byte // ISO-2022-JP: 0 ASCII, 'K' half-width katakana, 'B' JIS X 0208, 'D' JIS X 0212
}

func (d *decoder) next(b []byte) (r rune, n int, ok bool) {
	c := b[0]
	switch d.enc {
	case UTF8:
		r, n = utf8.DecodeRune(b)
		return r, n, r != utf8.RuneError || n > 1
	case Latin1:
		return rune(c), 1, true
	case ShiftJIS:
		return d.sjis(b)
	case EUCJP:
		return d.euc(b)
	case ISO2022JP:
		return d.iso2022(b)
	case UTF16LE, UTF16BE:
		return d.utf16(b)
	}
	return utf8.RuneError, 1, false
}

func (d *decoder) sjis(b []byte) (rune, int, bool) {
	c := b[0]
	switch {
	case c < 0x80:
		return rune(c), 1, true
	case c >= 0xA1 && c <= 0xDF:
		return rune(c) + 0xFF61 - 0xA1, 1, true // half-width katakana
	case c == 0x80:
		return 0x80, 1, true // as x/text and the WHATWG standard read it
	case !isSJISLead(c) || len(b) < 2 || !isSJISTrail(b[1]):
		return utf8.RuneError, 1, false
	}
	r := rune(sjisTable()[sjisPointer(c, b[1])])
	if r == utf8.RuneError && b[1] < 0x80 {
		return r, 1, false // an unassigned code: its ASCII trail byte is read again
	}
	return r, 2, r != utf8.RuneError
}

func (d *decoder) euc(b []byte) (rune, int, bool) {
	c := b[0]
	isByte := func(i int) bool { return i < len(b) && b[i] >= 0xA1 && b[i] <= 0xFE }
	jis0208, jis0212 := eucTables()
	switch {
	case c < 0x80:
		return rune(c), 1, true
	case c == 0x8E:
		if len(b) < 2 || b[1] < 0xA1 || b[1] > 0xDF {
			return utf8.RuneError, 1, false
		}
		return rune(b[1]) + 0xFF61 - 0xA1, 2, true
	case c == 0x8F:
		if !isByte(1) || !isByte(2) {
			return utf8.RuneError, 1, false
		}
		r := rune(jis0212[int(b[1]-0xA1)*94+int(b[2]-0xA1)])
		return r, 3, r != utf8.RuneError
	case isByte(0) && isByte(1):
		r := rune(jis0208[int(c-0xA1)*94+int(b[1]-0xA1)])
		return r, 2, r != utf8.RuneError
	}
	return utf8.RuneError, 1, false
}

// iso2022 reads RFC 1468 ISO-2022-JP, with the JIS X 0212 and half-width
// katakana escapes that x/text also accepts. A line break ends a
// double-byte run even without its escape back to ASCII, as the RFC
// requires of the writer.
func (d *decoder) iso2022(b []byte) (rune, int, bool) {
	c := b[0]
	switch {
	case c >= 0x80:
		return utf8.RuneError, 1, false
	case c == 0x1B:
		s := string(b[:min(len(b), 4)])
		switch {
		case strings.HasPrefix(s, "\x1b$B"), strings.HasPrefix(s, "\x1b$@"):
			d.state = 'B'
		case strings.HasPrefix(s, "\x1b$(D"):
			d.state = 'D'
			return noRune, 4, true
		case strings.HasPrefix(s, "\x1b(B"), strings.HasPrefix(s, "\x1b(J"):
			d.state = 0
		case strings.HasPrefix(s, "\x1b(I"):
			d.state = 'K'
		default:
			return utf8.RuneError, 1, false
		}
		return noRune, 3, true
	case c == '\r' || c == '\n':
		d.state = 0
		return rune(c), 1, true
	case d.state == 0:
		return rune(c), 1, true
	case d.state == 'K':
		if c < 0x21 || c > 0x5F {
			return utf8.RuneError, 1, false
		}
		return rune(c) + 0xFF61 - 0x21, 1, true
	}
	if c < 0x21 || c > 0x7E || len(b) < 2 || b[1] < 0x21 || b[1] > 0x7E {
		return utf8.RuneError, 1, false
	}
	jis0208, jis0212 := eucTables()
	t := jis0208
	if d.state == 'D' {
		t = jis0212
	}
	r := rune(t[int(c-0x21)*94+int(b[1]-0x21)])
	return r, 2, r != utf8.RuneError
}

func (d *decoder) utf16(b []byte) (rune, int, bool) {
	unit := func(i int) rune {
		if d.enc == UTF16LE {
			return rune(b[i]) | rune(b[i+1])<<8
		}
		return rune(b[i])<<8 | rune(b[i+1])
	}
	if len(b) < 2 {
		return utf8.RuneError, 1, false
	}
	r := unit(0)
	if !utf16.IsSurrogate(r) {
		return r, 2, true
	}
	if len(b) >= 4 {
		if p := utf16.DecodeRune(r, unit(2)); p != utf8.RuneError {
			return p, 4, true
		}
	}
	return utf8.RuneError, 2, false
}

// scan decodes raw[off:] as enc and calls emit with each character; a
// bad sequence comes as U+FFFD with bad describing it (valid only during
// the call). emit returns false to stop.
func scan(raw []byte, enc Encoding, off int, emit func(r rune, bad *InvalidError) bool) {
	d := decoder{enc: enc}
	// ASCII is itself in every encoding but these.
	asciiSafe := enc != ISO2022JP && enc != UTF16LE && enc != UTF16BE
	line, lineStart := 1, off
	var e InvalidError
	for off < len(raw) {
		r, n, ok := rune(raw[off]), 1, true
		if r >= utf8.RuneSelf || !asciiSafe {
			r, n, ok = d.next(raw[off:])
		}
		var bad *InvalidError
		if !ok {
			e = InvalidError{Encoding: enc, Offset: off, Line: line, Column: off - lineStart + 1, Byte: raw[off]}
			r, bad = utf8.RuneError, &e
		}
		if r != noRune && !emit(r, bad) {
			return
		}
		if r == '\n' {
			line, lineStart = line+1, off+n
		}
		off += n
	}
}

// walk decodes raw[off:] as enc. Lenient, every bad sequence becomes
// U+FFFD; strict, the first one is returned (and the text is "").
func walk(raw []byte, enc Encoding, off int, strict bool) (string, *InvalidError) {
	var b strings.Builder
	b.Grow(len(raw) - off + (len(raw)-off)/2)
	var first *InvalidError
	scan(raw, enc, off, func(r rune, bad *InvalidError) bool {
		if bad != nil && strict {
			c := *bad
			first = &c
			return false
		}
		b.WriteRune(r)
		return true
	})
	if first != nil {
		return "", first
	}
	return b.String(), nil
}
