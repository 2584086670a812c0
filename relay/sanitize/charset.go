package sanitize

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	mimecharset "github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/sekisho/sekisho/accounts/charset"
)

// Output charsets.
const (
	CharsetUTF8     = "utf-8"
	CharsetISO2022J = "iso-2022-jp"
)

// japaneseAliases maps the names Japanese mailers actually put in charset=
// to the encoding that reads them. Windows-31J (CP932) is what "Shift_JIS"
// means in practice: charset.ShiftJIS decodes the NEC and IBM extensions
// (①, ㈱, 髙) and the carriers' pictograms too, so every alias goes to it.
var japaneseAliases = map[string]charset.Encoding{
	"shift_jis": charset.ShiftJIS, "shift-jis": charset.ShiftJIS, "sjis": charset.ShiftJIS,
	"x-sjis": charset.ShiftJIS, "ms_kanji": charset.ShiftJIS, "cp932": charset.ShiftJIS,
	"windows-31j": charset.ShiftJIS, "x-ms-cp932": charset.ShiftJIS, "csshiftjis": charset.ShiftJIS,
	"euc-jp": charset.EUCJP, "x-euc-jp": charset.EUCJP, "eucjp": charset.EUCJP, "cseucpkdfmtjapanese": charset.EUCJP,
	"iso-2022-jp": charset.ISO2022JP, "csiso2022jp": charset.ISO2022JP, "iso-2022-jp-ms": charset.ISO2022JP,
	"iso-2022-jp-1": charset.ISO2022JP, "iso-2022-jp-2": charset.ISO2022JP, "iso-2022-jp-3": charset.ISO2022JP,
	"utf-8": charset.UTF8, "utf8": charset.UTF8,
}

// decodeText turns raw bytes in the declared charset into UTF-8. An empty,
// unknown or wrong declaration falls back to guessing from the bytes, so a
// Shift_JIS body labelled us-ascii (common from old mobile mailers) still
// reads correctly. It never fails: undecodable bytes become U+FFFD.
func decodeText(raw []byte, declared string) string {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(declared), `"'`))
	if cs == "" || cs == "us-ascii" || cs == "ascii" || cs == "unknown-8bit" || cs == "x-unknown" {
		text, _, _ := charset.Decode(raw)
		return text
	}
	out, ok := decodeAs(raw, cs)
	if ok && !strings.ContainsRune(out, utf8.RuneError) {
		return out
	}
	// A wrong label (Shift_JIS sent as ISO-2022-JP or UTF-8 by an old
	// mailer) shows as replacement characters: the bytes' own verdict
	// wins when it reads with fewer of them.
	if g, _ := charset.Detect(raw); japaneseAliases[cs] != g {
		if alt := charset.DecodeAs(raw, g); !ok || strings.Count(alt, "\uFFFD") < strings.Count(out, "\uFFFD") {
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
	if enc, ok := japaneseAliases[cs]; ok {
		return charset.DecodeAs(raw, enc), true
	}
	switch cs {
	case "utf-7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7":
		return decodeUTF7(raw), true
	}
	r, err := mimecharset.Reader(cs, bytes.NewReader(raw))
	if err != nil {
		return "", false
	}
	out, err := io.ReadAll(r)
	return string(out), err == nil
}

// decodeHeader returns a header value as UTF-8: encoded words decoded, and
// raw 8-bit bytes (which some Japanese mailers send against RFC 5322)
// guessed like a body, from all of the value at once. Raw bytes inside an
// encoded word are in the word's charset: Netscape 4 wrote Q words that
// hold raw Latin-1 ("=?iso-8859-1?Q?Fr\xf6sche?="), as clients read them.
// DecodeHeader is a header field's value as a mail client shows it:
// encoded words in every charset mail uses here, raw 8-bit bytes read by
// the same detection as the body. Anything that shows a message's header
// (the console, the approval pages) reads it this way.
func DecodeHeader(v string) string { return decodeHeader(v) }

func decodeHeader(v string) string {
	if !hasHigh(v) {
		return decodeWords(v, nil)
	}
	if !strings.Contains(v, "=?") {
		return decodeText([]byte(v), "")
	}
	enc, _ := charset.Detect([]byte(v))
	return decodeWords(v, func(s string) string { return charset.DecodeAs([]byte(s), enc) })
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
	// The encoder returns to ASCII before every ASCII byte, so before each
	// line break: the whole text at once, when every character has a JIS
	// code; else line by line, each with its replacements.
	s = widenKana(s)
	if out, _, err := transform.Bytes(japanese.ISO2022JP.NewEncoder(), []byte(s)); err == nil {
		return out
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
	s = widenKana(s)
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

// widenKana turns half-width katakana into full width, composing the
// voiced marks (ｶﾞ → ガ): RFC 1468 has no half-width katakana (the
// encoder would write them as JIS X 0201 katakana, ESC ( I, which many
// readers show as garbage), and CP50220 converts them the same way.
func widenKana(s string) string {
	// U+FF61..U+FF9F are EF BD A1..EF BE 9F in UTF-8.
	if !strings.Contains(s, "\xef\xbd") && !strings.Contains(s, "\xef\xbe") {
		return s
	}
	i := strings.IndexFunc(s, isHalfKana)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	s = s[i:]
	for s != "" {
		j := strings.IndexFunc(s, func(r rune) bool { return !isHalfKana(r) })
		if j < 0 {
			j = len(s)
		}
		b.WriteString(norm.NFKC.String(s[:j]))
		s = s[j:]
		k := strings.IndexFunc(s, isHalfKana)
		if k < 0 {
			k = len(s)
		}
		b.WriteString(s[:k])
		s = s[k:]
	}
	return b.String()
}

func isHalfKana(r rune) bool { return r >= '\uFF61' && r <= '\uFF9F' }

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
func (e *encoder) header(v string) string { return e.headerForce(v, false) }

// maxWord is the longest word headerForce leaves as it is: a longer one
// (a URL) could not be folded within a line.
const maxWord = 900

// headerForce encodes a value as encoded words when it is not plain
// ASCII, when force is set, or when it has a word too long to fold; the
// words are short, so writeField can fold between them.
func (e *encoder) headerForce(v string, force bool) string {
	if !force && !hasHigh(v) && !longWord(v) {
		return v
	}
	if !e.iso {
		var words []string
		for len(v) > 0 {
			n := min(len(v), 45)
			for n < len(v) && !utf8.RuneStart(v[n]) {
				n--
			}
			words = append(words, "=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte(v[:n]))+"?=")
			v = v[n:]
		}
		return strings.Join(words, " ")
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

func longWord(v string) bool {
	for w := range strings.FieldsSeq(v) {
		if len(w) > maxWord {
			return true
		}
	}
	return false
}

// decodeUTF7 reads RFC 2152 UTF-7, which Outlook 2000 and Outlook Express
// sent as charset=utf-7 and mail clients still read; neither x/text nor
// go-message has a decoder for it. "+" starts base64 of UTF-16 code units,
// the first byte outside the base64 alphabet ends it ("-" is absorbed),
// "+-" is a plus sign. Bytes that are not 7-bit become U+FFFD.
func decodeUTF7(raw []byte) string {
	var b strings.Builder
	var units []uint16
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '+' {
			if c >= 0x80 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.WriteByte(c)
			}
			continue
		}
		i++
		if i < len(raw) && raw[i] == '-' {
			b.WriteByte('+')
			continue
		}
		var acc uint32
		bits := 0
		units = units[:0]
		for ; i < len(raw); i++ {
			v := base64Value(raw[i])
			if v < 0 {
				break
			}
			acc, bits = acc<<6|uint32(v), bits+6
			if bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>bits))
				acc &= 1<<bits - 1
			}
		}
		b.WriteString(string(utf16.Decode(units)))
		if i < len(raw) && raw[i] != '-' {
			i-- // the byte that ended the base64 is text
		}
	}
	return b.String()
}

// base64Value is the value of a byte of the base64 alphabet, -1 for
// any other byte.
func base64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
