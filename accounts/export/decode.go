package export

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/charset"
)

// Encoding names, as accepted in Options.Encoding and reported in
// Result.Encoding (the charset.Encoding names). UTF-16 is never asked
// for; it is recognized by its byte order mark (Excel's "Unicode text").
const (
	EncodingAuto     = "auto"
	EncodingUTF8     = "utf-8"
	EncodingShiftJIS = "shift_jis"
	EncodingUTF16LE  = "utf-16le"
	EncodingUTF16BE  = "utf-16be"
)

func parseEncoding(s string) (charset.Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return charset.Auto, nil
	case "utf-8", "utf8":
		return charset.UTF8, nil
	case "shift_jis", "shift-jis", "sjis", "cp932", "windows-31j", "ms932":
		return charset.ShiftJIS, nil
	}
	return charset.Auto, fmt.Errorf("encoding %q: want auto, utf-8 or shift_jis", s)
}

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
func decode(name string, raw []byte, want charset.Encoding) (decoded, error) {
	bom, n := charset.SniffBOM(raw)
	utf16 := bom == charset.UTF16LE || bom == charset.UTF16BE
	switch {
	case bom == charset.UTF8 && want == charset.ShiftJIS:
		return decoded{}, fmt.Errorf("%s: starts with a UTF-8 byte order mark, but the encoding shift_jis was asked for", name)
	case utf16 && want != charset.Auto:
		return decoded{}, fmt.Errorf("%s: is UTF-16 (it starts with a UTF-16 byte order mark), but the encoding %s was asked for; save it as UTF-8 or Shift_JIS, or use the encoding auto", name, want)
	case utf16 && len(raw)%2 != 0:
		return decoded{}, fmt.Errorf("%s: UTF-16 file with an odd number of bytes (truncated?)", name)
	case bom == charset.UTF8:
		want = charset.UTF8 // a UTF-8 byte order mark means UTF-8: refuse what is not
	}
	text, enc, err := charset.DecodeStrict(raw, want)
	var bad *charset.InvalidError
	switch {
	case errors.As(err, &bad) && bad.NotUTF8 != nil:
		return decoded{}, fmt.Errorf("%s:%d: not valid %s, and not UTF-8 either (line %d); if it is in another encoding, convert it to UTF-8",
			name, bad.Line, bad.Encoding.Name(), bad.NotUTF8.Line)
	case errors.As(err, &bad):
		return decoded{}, fmt.Errorf("%s:%d: %s", name, bad.Line, bad.Reason())
	case err != nil:
		return decoded{}, fmt.Errorf("%s: %w", name, err)
	}
	return decoded{text: text, encoding: enc.String(), bom: n > 0}, nil
}
