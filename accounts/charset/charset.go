// Package charset turns raw bytes whose encoding is unknown, or known only
// by name, into UTF-8: the one place that decides "UTF-8, else Shift_JIS
// (CP932)" for files, and for mail also tells EUC-JP, ISO-2022-JP and
// Latin-1 apart, reporting when it had to guess.
//
// It lives in accounts, the innermost package, because every layer reads
// such bytes: the inner server's exports (accounts/export), E-Post's
// gateway.dat (routing) and effect.dat (relay/guard), and mail headers and
// bodies (relay/sanitize). Reading them one way means one Shift_JIS: CP932
// with the NEC and IBM extensions (①, ㈱, 髙) and the user-defined area
// that mobile carriers fill with pictograms.
//
// The entry points, by how much the caller knows:
//   - Decode guesses and never fails: mail, where a wrong byte must not
//     lose a message.
//   - DecodeAs reads a named encoding and never fails: a MIME charset label.
//   - DecodeStrict reads a named encoding, or with Auto "UTF-8, else
//     Shift_JIS", and refuses the first byte that does not belong: files,
//     where a wrong guess would corrupt every name in them.
//   - DecodeLines reads like DecodeStrict but refuses line by line: tables
//     whose other lines still convert.
package charset

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Encoding is one of the encodings this package reads.
type Encoding uint8

// The encodings. Auto, the zero value, asks DecodeStrict to choose.
const (
	Auto Encoding = iota
	UTF8
	// ShiftJIS is Windows-31J (CP932): what "Shift_JIS" means in practice.
	ShiftJIS
	EUCJP
	ISO2022JP
	// Latin1 is ISO-8859-1: bytes 0x80-0x9F are C1 controls.
	Latin1
	// UTF16LE and UTF16BE are recognized by their byte order mark only
	// (Excel's "Unicode text").
	UTF16LE
	UTF16BE
)

// String is the encoding's lower-case IANA name, as configurations and
// reports spell it ("shift_jis"); "auto" for Auto.
func (e Encoding) String() string {
	switch e {
	case Auto:
		return "auto"
	case UTF8:
		return "utf-8"
	case ShiftJIS:
		return "shift_jis"
	case EUCJP:
		return "euc-jp"
	case ISO2022JP:
		return "iso-2022-jp"
	case Latin1:
		return "iso-8859-1"
	case UTF16LE:
		return "utf-16le"
	case UTF16BE:
		return "utf-16be"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// Name is the encoding as messages to people call it ("Shift_JIS (CP932)").
func (e Encoding) Name() string {
	switch e {
	case UTF8:
		return "UTF-8"
	case ShiftJIS:
		return "Shift_JIS (CP932)"
	case EUCJP:
		return "EUC-JP"
	case ISO2022JP:
		return "ISO-2022-JP"
	case Latin1:
		return "ISO-8859-1 (Latin-1)"
	case UTF16LE, UTF16BE:
		return "UTF-16"
	}
	return e.String()
}

var boms = []struct {
	enc Encoding
	bom string
}{
	{UTF8, "\xef\xbb\xbf"},
	{UTF16LE, "\xff\xfe"},
	{UTF16BE, "\xfe\xff"},
}

// SniffBOM reports the byte order mark raw starts with, and its length;
// Auto and 0 when there is none.
func SniffBOM(raw []byte) (Encoding, int) {
	for _, b := range boms {
		if bytes.HasPrefix(raw, []byte(b.bom)) {
			return b.enc, len(b.bom)
		}
	}
	return Auto, 0
}

// bomLen is the length of the byte order mark that reading raw as enc
// drops: enc's own, or a UTF-8 one whatever enc is (it is never text, and
// a Shift_JIS file can gain one in an editor), except for UTF-16, where
// those bytes would be a character.
func bomLen(raw []byte, enc Encoding) int {
	b, n := SniffBOM(raw)
	if b == enc || b == UTF8 && enc != UTF16LE && enc != UTF16BE {
		return n
	}
	return 0
}

// Decode returns raw as UTF-8 and the encoding it was read in. A UTF-16
// byte order mark means UTF-16, a UTF-8 one is dropped; ISO-2022-JP escapes
// mean ISO-2022-JP; bytes that are ASCII or valid UTF-8 are UTF-8. Anything else
// is guessed, and guessed is true: Shift_JIS, EUC-JP or Latin-1, whichever
// reads as the more plausible text (see Detect). Decode never fails:
// bytes that are not valid in the chosen encoding become U+FFFD.
func Decode(raw []byte) (text string, enc Encoding, guessed bool) {
	enc, guessed = Detect(raw)
	return DecodeAs(raw, enc), enc, guessed
}

// DecodeAs returns raw read as enc (Auto reads as Decode does), with
// U+FFFD for every sequence that is not valid in it and a leading byte
// order mark dropped (see DecodeStrict). The result is always valid UTF-8.
func DecodeAs(raw []byte, enc Encoding) string {
	if enc == Auto {
		enc, _ = Detect(raw)
	}
	raw = raw[bomLen(raw, enc):]
	switch enc {
	case UTF8:
		// A run of bad bytes is one U+FFFD, as everywhere in Go.
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	case Latin1:
		return latin1(raw)
	}
	text, _ := walk(raw, enc, 0, false)
	return text
}

// DecodeStrict returns raw read as want, or an *InvalidError naming the
// first byte sequence that is not valid in it. A leading byte order mark
// is dropped: want's own, or a UTF-8 one whatever want is (it is never
// text, and a Shift_JIS file can gain one in an editor). With Auto, a
// UTF-16 byte order mark means UTF-16; otherwise raw is UTF-8 when valid,
// else Shift_JIS (CP932): the two encodings Japanese Windows tools write
// files in. Auto never picks Latin-1, which accepts any bytes and so could
// never refuse a wrong guess. enc is the encoding read (or tried, with an
// error).
func DecodeStrict(raw []byte, want Encoding) (text string, enc Encoding, err error) {
	enc, off := choose(raw, want)
	if enc == UTF8 && utf8.Valid(raw[off:]) {
		return string(raw[off:]), UTF8, nil // the common case, without a copy per character
	}
	if enc == Latin1 {
		return latin1(raw[off:]), Latin1, nil
	}
	text, bad := walk(raw, enc, off, true)
	if bad != nil {
		if want == Auto && enc == ShiftJIS {
			_, bad.NotUTF8 = walk(raw, UTF8, off, true)
		}
		return "", enc, bad
	}
	return text, enc, nil
}

// Line is one line of a file read by DecodeLines.
type Line struct {
	// Text is the line without its '\n'; with U+FFFD for bad bytes.
	Text string
	// Err is the line's first bad byte, nil for a line that is valid.
	Err *InvalidError
}

// DecodeLines reads a text file as DecodeStrict chooses its encoding, but
// line by line: a line that is not valid in that encoding carries an
// *InvalidError instead of failing the file, so that one bad byte costs one
// line of a table. There is one Line more than the text has line breaks
// (as strings.Split gives them); a byte order mark is dropped.
func DecodeLines(raw []byte, want Encoding) (lines []Line, enc Encoding) {
	enc, off := choose(raw, want)
	if enc == UTF8 && utf8.Valid(raw[off:]) {
		for l := range strings.SplitSeq(string(raw[off:]), "\n") {
			lines = append(lines, Line{Text: l})
		}
		return lines, enc
	}
	var b strings.Builder
	var lineErr *InvalidError
	scan(raw, enc, off, func(r rune, bad *InvalidError) bool {
		if r == '\n' {
			lines = append(lines, Line{Text: b.String(), Err: lineErr})
			b.Reset()
			lineErr = nil
			return true
		}
		if bad != nil && lineErr == nil {
			c := *bad
			lineErr = &c
		}
		b.WriteRune(r)
		return true
	})
	return append(lines, Line{Text: b.String(), Err: lineErr}), enc
}

// choose resolves Auto as DecodeStrict says, and returns where the text
// starts: after the byte order mark it drops.
func choose(raw []byte, want Encoding) (enc Encoding, off int) {
	if want != Auto {
		return want, bomLen(raw, want)
	}
	switch bom, n := SniffBOM(raw); {
	case bom == UTF16LE || bom == UTF16BE:
		return bom, n
	case utf8.Valid(raw[n:]):
		return UTF8, n
	default:
		return ShiftJIS, n
	}
}

// InvalidError is the first byte sequence of raw that is not valid in an
// encoding.
type InvalidError struct {
	Encoding Encoding
	Offset   int  // of the bad byte in raw
	Line     int  // 1-based; lines end at '\n'
	Column   int  // 1-based byte offset of the bad byte in its line
	Byte     byte // the bad byte
	// NotUTF8 is set by DecodeStrict with Auto, which read raw as
	// Shift_JIS because it was not UTF-8: where it fails as UTF-8.
	NotUTF8 *InvalidError
}

// Reason is the error without its line: "not valid Shift_JIS (CP932)
// (byte 0x81 at byte 19 of the line)", for callers that prefix FILE:LINE.
func (e *InvalidError) Reason() string {
	return fmt.Sprintf("not valid %s (byte 0x%02x at byte %d of the line)", e.Encoding.Name(), e.Byte, e.Column)
}

// LineLeftOut is what an importer reading line by line says of a line
// that is neither UTF-8 nor Shift_JIS, after its FILE:LINE.
func (e *InvalidError) LineLeftOut() string {
	return fmt.Sprintf("neither UTF-8 nor Shift_JIS (byte 0x%02x at byte %d of the line): the line is left out; correct it, or save the file as UTF-8, and import again",
		e.Byte, e.Column)
}

func (e *InvalidError) Error() string {
	s := fmt.Sprintf("line %d: %s", e.Line, e.Reason())
	if e.NotUTF8 != nil {
		s += fmt.Sprintf(", and not UTF-8 either (line %d)", e.NotUTF8.Line)
	}
	return s
}

// latin1 maps each byte to the code point of the same value.
func latin1(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/4)
	for _, c := range raw {
		if c < utf8.RuneSelf {
			b.WriteByte(c)
		} else {
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}
