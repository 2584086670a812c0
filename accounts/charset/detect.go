package charset

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// sampleSize bounds how much of the input detection reads: a body's
// first lines say as much as all of it.
const sampleSize = 8192

// candidates are the encodings Detect chooses among when the bytes carry
// no mark, in the order that wins a tie: a Japanese gateway sees
// Shift_JIS far more often than EUC-JP, and either more often than
// Latin-1.
var candidates = []Encoding{ShiftJIS, EUCJP, Latin1}

// Detect says what Decode would read raw as, and whether that is a guess
// (see Decode). A guess reads the start of raw in each candidate and
// scores the text: bytes that are not valid cost most; Japanese letters
// earn, as do Latin-1 letters next to ASCII letters ("J\xfcrgen" is
// Jürgen), while what a misread produces (C1 controls, a lone kanji inside
// a Latin word, Latin-1 symbols) costs or earns nothing.
func Detect(raw []byte) (enc Encoding, guessed bool) {
	switch b, n := SniffBOM(raw); b {
	case UTF16LE, UTF16BE:
		return b, false
	case UTF8:
		raw = raw[n:] // dropped: the bytes after it decide
	}
	// ISO-2022-JP is 7-bit: its escapes are the only mark it has.
	if bytes.Contains(raw, []byte("\x1b$B")) || bytes.Contains(raw, []byte("\x1b$@")) ||
		bytes.Contains(raw, []byte("\x1b(J")) || bytes.Contains(raw, []byte("\x1b(I")) {
		return ISO2022JP, !ascii(raw)
	}
	if ascii(raw) || utf8.Valid(raw) {
		return UTF8, false
	}
	best, bestScore := candidates[0], 0
	for i, c := range candidates {
		if s := score(raw, c); i == 0 || s > bestScore {
			best, bestScore = c, s
		}
	}
	return best, true
}

func ascii(raw []byte) bool {
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// score rates the start of raw read as enc: higher is more plausible.
func score(raw []byte, enc Encoding) int {
	// Runes of the sample, noRune for a bad sequence; the sample ends
	// after a whole character, so a cut never counts as bad.
	var rs []rune
	d := decoder{enc: enc}
	for off := 0; off < len(raw) && off < sampleSize; {
		r, n, ok := d.next(raw[off:])
		if !ok {
			r = noRune
		}
		rs = append(rs, r)
		off += n
	}
	letter := func(i int) bool {
		return i >= 0 && i < len(rs) && (rs[i] >= 'a' && rs[i] <= 'z' || rs[i] >= 'A' && rs[i] <= 'Z')
	}
	s := 0
	for i, r := range rs {
		switch {
		case r == noRune:
			s -= 8
		case r < 0x80:
		case r < 0xA0:
			s -= 8 // C1 controls: Latin-1 0x80-0x9F, Shift_JIS 0x80
		case enc == Latin1 && unicode.IsLetter(r):
			if letter(i-1) || letter(i+1) {
				s += 2
			} else {
				s--
			}
		case enc == Latin1:
			s -= 2 // symbols, rare in words
		case r >= 0xFF61 && r <= 0xFF9F:
			// Half-width katakana earn nothing: old systems write names
			// in them, but a misread of EUC-JP or Latin-1 makes them too.
		case unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han):
			// A kanji between two ASCII letters is a Latin-1 word misread
			// ("Fran\xe7ois").
			if !letter(i-1) || !letter(i+1) {
				s += 2
			}
		case r >= 0x3000 && r <= 0x303F, r >= 0xFF01 && r <= 0xFF5E:
			s++ // Japanese punctuation, full-width ASCII
		case r >= 0xE000 && r <= 0xF8FF:
			s-- // the user-defined area: pictograms, but rare
		}
	}
	return s
}
