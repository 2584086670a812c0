package export

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/unicode"
)

// Encoding names, as accepted in Options.Encoding and reported in
// Result.Encoding. UTF-16 is never asked for; it is recognized by its byte
// order mark (Excel's "Unicode text" export).
const (
	EncodingAuto     = "auto"
	EncodingUTF8     = "utf-8"
	EncodingShiftJIS = "shift_jis"
	EncodingUTF16LE  = "utf-16le"
	EncodingUTF16BE  = "utf-16be"
)

func parseEncoding(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return EncodingAuto, nil
	case "utf-8", "utf8":
		return EncodingUTF8, nil
	case "shift_jis", "shift-jis", "sjis", "cp932", "windows-31j", "ms932":
		return EncodingShiftJIS, nil
	}
	return "", fmt.Errorf("encoding %q: want auto, utf-8 or shift_jis", s)
}

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
)

// decoded is the export as UTF-8 text. Decoding keeps every '\n' where it
// was, so line numbers in the text are line numbers in the file.
type decoded struct {
	text     string
	encoding string
	bom      bool
}

// decode turns the raw export into UTF-8. want is a parseEncoding result.
// A file that does not decode cleanly is refused as a whole, naming the
// first bad line: a wrong guess would corrupt every name in it.
func decode(name string, raw []byte, want string) (decoded, error) {
	switch {
	case bytes.HasPrefix(raw, bomUTF8):
		if want == EncodingShiftJIS {
			return decoded{}, fmt.Errorf("%s: starts with a UTF-8 byte order mark, but the encoding shift_jis was asked for", name)
		}
		body := raw[len(bomUTF8):]
		if err := checkUTF8(name, body); err != nil {
			return decoded{}, err
		}
		return decoded{text: string(body), encoding: EncodingUTF8, bom: true}, nil
	case bytes.HasPrefix(raw, bomUTF16LE), bytes.HasPrefix(raw, bomUTF16BE):
		if want != EncodingAuto {
			return decoded{}, fmt.Errorf("%s: is UTF-16 (it starts with a UTF-16 byte order mark), but the encoding %s was asked for; save it as UTF-8 or Shift_JIS, or use the encoding auto", name, want)
		}
		enc, label := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM), EncodingUTF16LE
		if raw[0] == 0xfe {
			enc, label = unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM), EncodingUTF16BE
		}
		if len(raw)%2 != 0 {
			return decoded{}, fmt.Errorf("%s: UTF-16 file with an odd number of bytes (truncated?)", name)
		}
		return transcode(name, raw, enc, label, true)
	case want == EncodingUTF8:
		if err := checkUTF8(name, raw); err != nil {
			return decoded{}, err
		}
		return decoded{text: string(raw), encoding: EncodingUTF8}, nil
	case want == EncodingShiftJIS:
		return transcode(name, raw, japanese.ShiftJIS, EncodingShiftJIS, false)
	case utf8.Valid(raw):
		return decoded{text: string(raw), encoding: EncodingUTF8}, nil
	}
	d, err := transcode(name, raw, japanese.ShiftJIS, EncodingShiftJIS, false)
	if err != nil {
		line, _, _, _ := firstBadUTF8(raw)
		return decoded{}, fmt.Errorf("%w, and not UTF-8 either (line %d); if it is in another encoding, convert it to UTF-8", err, line)
	}
	return d, nil
}

// checkUTF8 names the first line that is not valid UTF-8.
func checkUTF8(name string, b []byte) error {
	if line, col, c, bad := firstBadUTF8(b); bad {
		return fmt.Errorf("%s:%d: not valid UTF-8 (byte 0x%02x at byte %d of the line)", name, line, c, col)
	}
	return nil
}

// firstBadUTF8 finds the first invalid byte: its line, its 1-based offset in
// the line, and its value. '\n' never occurs inside a UTF-8 sequence, so
// lines can be checked one by one.
func firstBadUTF8(b []byte) (line, col int, c byte, bad bool) {
	if utf8.Valid(b) {
		return 0, 0, 0, false
	}
	for line = 1; len(b) > 0; line++ {
		cur := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			cur, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		for off := 0; off < len(cur); {
			r, size := utf8.DecodeRune(cur[off:])
			if r == utf8.RuneError && size == 1 {
				return line, off + 1, cur[off], true
			}
			off += size
		}
	}
	return 0, 0, 0, false
}

// transcode decodes with enc. Both decoders used here turn a bad sequence
// into U+FFFD without an error, and neither encoding can produce U+FFFD
// from valid input, so its presence marks the first bad line.
func transcode(name string, raw []byte, enc encoding.Encoding, label string, bom bool) (decoded, error) {
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		return decoded{}, fmt.Errorf("%s: decoding %s: %v", name, label, err)
	}
	if i := bytes.IndexRune(out, utf8.RuneError); i >= 0 {
		line := 1 + bytes.Count(out[:i], []byte{'\n'})
		return decoded{}, fmt.Errorf("%s:%d: not valid %s", name, line, displayEncoding(label))
	}
	return decoded{text: string(out), encoding: label, bom: bom}, nil
}

func displayEncoding(label string) string {
	switch label {
	case EncodingShiftJIS:
		return "Shift_JIS (CP932)"
	case EncodingUTF16LE, EncodingUTF16BE:
		return "UTF-16"
	}
	return label
}
