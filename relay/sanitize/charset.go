package sanitize

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Output charsets.
const (
	CharsetUTF8     = "utf-8"
	CharsetISO2022J = "iso-2022-jp"
)

// japaneseAliases maps the names Japanese mailers actually put in charset=
// to the decoder that reads them. Windows-31J (CP932) is what "Shift_JIS"
// means in practice: x/text's ShiftJIS decodes the NEC and IBM extensions
// (①, ㈱, 髙) too, so every alias goes to it.
var japaneseAliases = map[string]encoding.Encoding{
	"shift_jis": japanese.ShiftJIS, "shift-jis": japanese.ShiftJIS, "sjis": japanese.ShiftJIS,
	"x-sjis": japanese.ShiftJIS, "ms_kanji": japanese.ShiftJIS, "cp932": japanese.ShiftJIS,
	"windows-31j": japanese.ShiftJIS, "x-ms-cp932": japanese.ShiftJIS, "csshiftjis": japanese.ShiftJIS,
	"euc-jp": japanese.EUCJP, "x-euc-jp": japanese.EUCJP, "eucjp": japanese.EUCJP, "cseucpkdfmtjapanese": japanese.EUCJP,
	"iso-2022-jp": japanese.ISO2022JP, "csiso2022jp": japanese.ISO2022JP, "iso-2022-jp-ms": japanese.ISO2022JP,
	"iso-2022-jp-1": japanese.ISO2022JP, "iso-2022-jp-2": japanese.ISO2022JP, "iso-2022-jp-3": japanese.ISO2022JP,
}

// decodeText turns raw bytes in the declared charset into UTF-8. An empty,
// unknown or wrong declaration falls back to guessing from the bytes, so a
// Shift_JIS body labelled us-ascii (common from old mobile mailers) still
// reads correctly. It never fails: undecodable bytes become U+FFFD.
func decodeText(raw []byte, declared string) string {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(declared), `"'`))
	if cs == "" || cs == "us-ascii" || cs == "ascii" || cs == "unknown-8bit" || cs == "x-unknown" {
		cs = guessCharset(raw)
	}
	out, ok := decodeAs(raw, cs)
	if ok && !strings.ContainsRune(out, utf8.RuneError) {
		return out
	}
	// A wrong label (Shift_JIS sent as ISO-2022-JP or UTF-8 by an old
	// mailer) shows as replacement characters: the bytes' own verdict
	// wins when it reads with fewer of them.
	if g := guessCharset(raw); g != cs {
		if alt, ok2 := decodeAs(raw, g); ok2 && (!ok || strings.Count(alt, "\uFFFD") < strings.Count(out, "\uFFFD")) {
			return alt
		}
	}
	if ok {
		return out
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}

// decodeAs decodes raw in one charset; ok is false for a charset we do
// not know.
func decodeAs(raw []byte, cs string) (string, bool) {
	if cs == "utf-8" || cs == "utf8" {
		return strings.ToValidUTF8(string(raw), "\uFFFD"), true
	}
	if enc, ok := japaneseAliases[cs]; ok {
		if enc == japanese.ShiftJIS {
			return decodeShiftJIS(raw), true
		}
		out, _, err := transform.Bytes(enc.NewDecoder(), raw)
		return string(out), err == nil
	}
	r, err := charset.Reader(cs, bytes.NewReader(raw))
	if err != nil {
		return "", false
	}
	out, err := io.ReadAll(r)
	return string(out), err == nil
}

// decodeShiftJIS is x/text's Shift_JIS (Windows-31J) plus the
// user-defined area, lead bytes F0-F9, which mobile carriers fill with
// pictograms (docomo's sun is F89F): x/text turns those into U+FFFD, the
// WHATWG mapping into the Private Use Area (F89F -> U+E63E, the code the
// carriers' own Unicode mappings use), which keeps them distinct.
func decodeShiftJIS(raw []byte) string {
	var b strings.Builder
	start := 0
	flush := func(end int) {
		if end > start {
			out, _, _ := transform.Bytes(japanese.ShiftJIS.NewDecoder(), raw[start:end])
			b.Write(out)
		}
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c >= 0xF0 && c <= 0xF9 && i+1 < len(raw) && sjisTrail(raw[i+1]):
			flush(i)
			t := raw[i+1]
			off := 0x40
			if t >= 0x80 {
				off = 0x41
			}
			pointer := int(c-0xC1)*188 + int(t) - off
			b.WriteRune(rune(0xE000 - 8836 + pointer))
			i += 2
			start = i
		case (c >= 0x81 && c <= 0x9F || c >= 0xE0 && c <= 0xFC) && i+1 < len(raw):
			i += 2
		default:
			i++
		}
	}
	flush(len(raw))
	return b.String()
}

func sjisTrail(t byte) bool { return t >= 0x40 && t <= 0x7E || t >= 0x80 && t <= 0xFC }

// guessCharset picks among the Japanese encodings by their bytes: an
// escape sequence means ISO-2022-JP; valid UTF-8 with 8-bit bytes means
// UTF-8; otherwise whichever of Shift_JIS and EUC-JP reads with fewer
// errors and more kana/kanji wins.
func guessCharset(b []byte) string {
	if bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")) || bytes.Contains(b, []byte("\x1b(J")) {
		return "iso-2022-jp"
	}
	high := false
	for _, c := range b {
		if c >= 0x80 {
			high = true
			break
		}
	}
	if !high || utf8.Valid(b) {
		return "utf-8"
	}
	if scoreJapanese(b, japanese.EUCJP) > scoreJapanese(b, japanese.ShiftJIS) {
		return "euc-jp"
	}
	return "shift_jis"
}

// scoreJapanese decodes a sample and counts Japanese letters against
// replacement characters and half-width kana (which a wrong guess between
// EUC-JP and Shift_JIS produces in bulk).
func scoreJapanese(b []byte, enc encoding.Encoding) int {
	if len(b) > 8192 {
		b = b[:8192]
	}
	out, _, _ := transform.Bytes(enc.NewDecoder(), b)
	score := 0
	for _, r := range string(out) {
		switch {
		case r == utf8.RuneError:
			score -= 8
		case r >= 0xFF61 && r <= 0xFF9F:
			score -= 2
		case unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han):
			score += 2
		case r >= 0x3000 && r <= 0x303F, r >= 0xFF01 && r <= 0xFF5E:
			score++
		}
	}
	return score
}

// wordDecoder decodes RFC 2047 encoded words in any charset we read.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, in io.Reader) (io.Reader, error) {
	raw, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeText(raw, cs)), nil
}}

// decodeHeader returns a header value as UTF-8: encoded words decoded, and
// raw 8-bit bytes (which some Japanese mailers send against RFC 5322)
// guessed like a body.
func decodeHeader(v string) string {
	if !utf8.ValidString(v) || hasHigh(v) {
		v = decodeText([]byte(v), "")
	}
	if !strings.Contains(v, "=?") {
		return v
	}
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

func hasHigh(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// encoder converts UTF-8 text to the output charset.
type encoder struct {
	iso      bool
	replaced int // runes that the output charset cannot hold
}

// geta (〓) is the customary Japanese mark for a character that could not
// be represented; it cannot be mistaken for text.
const geta = '〓'

// text encodes s for the body; for ISO-2022-JP each line is encoded on its
// own, so every line ends back in ASCII as RFC 1468 requires.
func (e *encoder) text(s string) []byte {
	if !e.iso {
		return []byte(s)
	}
	var out []byte
	for line := range strings.SplitAfterSeq(s, "\n") {
		out = append(out, e.iso2022(line)...)
	}
	return out
}

// iso2022 encodes one line as Windows mailers write ISO-2022-JP (CP50220:
// JIS X 0208 plus the NEC special characters such as ① and ㈱, which every
// Japanese mail client reads), replacing what it lacks: the JIS variant
// of a character, its compatibility decomposition, or else 〓.
func (e *encoder) iso2022(s string) []byte {
	if out, _, err := transform.Bytes(japanese.ISO2022JP.NewEncoder(), []byte(s)); err == nil {
		return out
	}
	var b strings.Builder
	for _, r := range s {
		if representable(string(r)) {
			b.WriteRune(r)
			continue
		}
		if alt, ok := jisVariants[r]; ok {
			b.WriteRune(alt)
			continue
		}
		if alt := norm.NFKC.String(string(r)); alt != string(r) && representable(alt) {
			b.WriteString(alt)
			continue
		}
		e.replaced++
		b.WriteRune(geta)
	}
	out, _, err := transform.Bytes(japanese.ISO2022JP.NewEncoder(), []byte(b.String()))
	if err != nil {
		return []byte(strings.Repeat("?", utf8.RuneCountInString(s)))
	}
	return out
}

// jisVariants are the characters that decoders disagree on between JIS
// and Windows mappings (the "wave dash problem"): text decoded elsewhere
// holds the JIS form, which the Windows-compatible encoder lacks.
var jisVariants = map[rune]rune{
	'\u301C': '\uFF5E', // WAVE DASH -> FULLWIDTH TILDE
	'\u2016': '\u2225', // DOUBLE VERTICAL LINE -> PARALLEL TO
	'\u2212': '\uFF0D', // MINUS SIGN -> FULLWIDTH HYPHEN-MINUS
	'\u00A2': '\uFFE0', '\u00A3': '\uFFE1', '\u00AC': '\uFFE2',
	'\u2014': '\u2015', // EM DASH -> HORIZONTAL BAR
}

func representable(s string) bool {
	_, _, err := transform.Bytes(japanese.ISO2022JP.NewEncoder(), []byte(s))
	return err == nil
}

// header encodes a header value as RFC 2047 encoded words when it is not
// plain ASCII.
func (e *encoder) header(v string) string {
	if !hasHigh(v) {
		return v
	}
	if !e.iso {
		return mime.BEncoding.Encode("UTF-8", v)
	}
	// Each encoded word must hold whole characters and end in ASCII mode
	// (RFC 1468), so the value is cut into short runs encoded on their own.
	var words []string
	runes := []rune(v)
	for len(runes) > 0 {
		n := min(len(runes), 15)
		words = append(words, "=?ISO-2022-JP?B?"+base64.StdEncoding.EncodeToString(e.iso2022(string(runes[:n])))+"?=")
		runes = runes[n:]
	}
	return strings.Join(words, " ")
}
