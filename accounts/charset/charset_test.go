package charset

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/unicode"
)

// The samples are the bytes real mailers and Windows tools write.
func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		enc     Encoding
		guessed bool
	}{
		{"ascii", "Subject: hello", "Subject: hello", UTF8, false},
		{"empty", "", "", UTF8, false},
		{"utf-8", "見積書", "見積書", UTF8, false},
		{"utf-8 bom dropped", "\xef\xbb\xbf見積書", "見積書", UTF8, false},
		{"utf-8 bom, then shift_jis", "\xef\xbb\xbf\x8c\xa9\x90\xcf\x8f\x91", "見積書", ShiftJIS, true},
		{"utf-16 bom decides", "\xff\xfe\x8b\x89\x4d\x7a", "見積", UTF16LE, false},
		{"utf-8 latin", "J\xc3\xbcrgen", "Jürgen", UTF8, false},
		{"shift_jis header value", "\x8c\xa9\x90\xcf\x8f\x91", "見積書", ShiftJIS, true},
		{"shift_jis name", "\x93c\x92\x86 \x91\xbe\x98Y", "田中 太郎", ShiftJIS, true},
		{"shift_jis katakana with ascii trail bytes", "\x83e\x83X\x83g", "テスト", ShiftJIS, true},
		{"shift_jis two kanji", "\x8eR\x93c", "山田", ShiftJIS, true},
		{"shift_jis trail bytes 5c", "\x95\\\x83\\\x94\\", "表ソ能", ShiftJIS, true},
		{"cp932 nec and ibm extensions", "\x87@\x87\x8a\xee\xe0\xed\x95", "①㈱髙﨑", ShiftJIS, true},
		{"cp932 user-defined area: docomo sun", "\x82\xa8\x93V\x8bC\xf8\x9f", "お天気\ue63e", ShiftJIS, true},
		{"shift_jis half-width katakana", "\xb6\xde\xb2\xbc\xde", "ｶﾞｲｼﾞ", ShiftJIS, true},
		{"shift_jis sentence", "\x89\xef\x8bc\x82\xcc\x82\xa8\x92m\x82\xe7\x82\xb9", "会議のお知らせ", ShiftJIS, true},
		{"euc-jp", "\xb2\xf1\xb5\xc4\xa4\xce\xa4\xaa\xc3\xce\xa4\xe9\xa4\xbb", "会議のお知らせ", EUCJP, true},
		{"euc-jp name", "\xc5\xc4\xc3\xe6 \xc2\xc0\xcf\xba", "田中 太郎", EUCJP, true},
		{"euc-jp katakana", "\xa5\xc6\xa5\xb9\xa5\xc8", "テスト", EUCJP, true},
		{"euc-jp half-width katakana", "\xa5\xc6\xa5\xb9\xa5\xc8 \x8e\xb6\x8e\xde", "テスト ｶﾞ", EUCJP, true},
		{"iso-2022-jp", "\x1b$B2q5D$N$*CN$i$;\x1b(B", "会議のお知らせ", ISO2022JP, false},
		{"iso-2022-jp mixed", "Re: \x1b$B8+@Q=q\x1b(B (2)", "Re: 見積書 (2)", ISO2022JP, false},
		{"iso-2022-jp half-width katakana", "\x1b(I6^2<^\x1b(B", "ｶﾞｲｼﾞ", ISO2022JP, false},
		{"iso-2022-jp extensions", "\x1b$B-!-j|byu\x1b(B", "①㈱髙﨑", ISO2022JP, false},
		{"latin-1 umlaut", "J\xfcrgen", "Jürgen", Latin1, true},
		{"latin-1 umlaut 2", "M\xfcller <m@example.de>", "Müller <m@example.de>", Latin1, true},
		{"latin-1 cedilla, a kanji in shift_jis", "Fran\xe7ois", "François", Latin1, true},
		{"latin-1 acute at the end", "Andr\xe9", "André", Latin1, true},
		{"latin-1 capital, half-width kana in shift_jis", "\xc9cole", "École", Latin1, true},
		{"latin-1 sharp s", "Stra\xdfe", "Straße", Latin1, true},
		{"latin-1 twice", "Ren\xe9e C\xf4t\xe9", "Renée Côté", Latin1, true},
		{"nothing reads: shift_jis wins, marked", "\x81\x20", "\ufffd ", ShiftJIS, true},
		{"lead byte before a line break", "\x93c\x82\r\n", "田\ufffd\r\n", ShiftJIS, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, enc, guessed := Decode([]byte(tc.raw))
			if got != tc.want || enc != tc.enc || guessed != tc.guessed {
				t.Errorf("Decode(%+q) = %+q %s %v, want %+q %s %v", tc.raw, got, enc, guessed, tc.want, tc.enc, tc.guessed)
			}
		})
	}
}

func TestDecodeAs(t *testing.T) {
	tests := []struct {
		raw  string
		enc  Encoding
		want string
	}{
		{"\x8c\xa9\x90\xcf\x8f\x91", ShiftJIS, "見積書"},
		{"\x8c\xa9\x90\xcf\x8f\x91", Auto, "見積書"},
		{"J\xfcrgen", ShiftJIS, "J\ufffdrgen"},                     // FC72 is unassigned: r is read again
		{"J\xfcrgen", Latin1, "Jürgen"},                            // as labelled
		{"a\xff\xfeb", UTF8, "a\ufffdb"},                           // one U+FFFD a run, as Go does
		{"\xef\xbb\xbfx", UTF8, "x"},                               // its own BOM dropped
		{"\xef\xbb\xbfx", ShiftJIS, "x"},                           // a UTF-8 BOM is never text
		{"\xef\xbb\xbfx", UTF16LE, "\ubbef\u78bf"},                 // but in UTF-16 those bytes are
		{"\xff\xfe\x30\x75\x2d\x4e", UTF16LE, "田中"},                // Excel's "Unicode text"
		{"\xfe\xff\x75\x30\x4e\x2d\x00\n", UTF16BE, "田中\n"},        // big-endian
		{"\xff\xfe\x3d\xd8\x00\xde", UTF16LE, "\U0001F600"},        // a surrogate pair
		{"\xff\xfe\x3d\xd8x\x00", UTF16LE, "\ufffdx"},              // a lone surrogate
		{"\x1b$B8+@Q\n=q\x1b(B", ISO2022JP, "見積\n=q"},              // a line break ends the JIS run
		{"\xa4\xa2\x8f\xb0\xa1", EUCJP, "あ丂"},                      // JIS X 0212 (three bytes)
		{"\x80\x81", Latin1, "\u0080\u0081"},                       // C1 controls are code points
		{"\x1b$Bx", ISO2022JP, "\ufffd"},                           // half a character
		{"a\x1b$Zb", ISO2022JP, "a\ufffd$Zb"},                      // an unknown escape
		{"\x1b$(D0!\x1b(B", ISO2022JP, "丂"},                        // JIS X 0212 in ISO-2022-JP
		{"\x8e\xe0", EUCJP, "\ufffd\ufffd"},                        // no half-width katakana there
		{"\xfd\xfe\xff\xa0", ShiftJIS, "\ufffd\ufffd\ufffd\ufffd"}, // never lead bytes
	}
	for _, tc := range tests {
		if got := DecodeAs([]byte(tc.raw), tc.enc); got != tc.want {
			t.Errorf("DecodeAs(%+q, %s) = %+q, want %+q", tc.raw, tc.enc, got, tc.want)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Encoding
		text string
		enc  Encoding
		err  string
	}{
		{name: "auto utf-8", raw: "氏名\n", text: "氏名\n", enc: UTF8},
		{name: "auto utf-8 bom", raw: "\xef\xbb\xbf氏名", text: "氏名", enc: UTF8},
		{name: "auto utf-8 bom does not decide", raw: "\xef\xbb\xbf\x93c", text: "田", enc: ShiftJIS},
		{name: "auto shift_jis", raw: "mail\r\n\x93c\x92\x86\r\n", text: "mail\r\n田中\r\n", enc: ShiftJIS},
		{name: "auto utf-16 by its bom", raw: "\xff\xfe\x30\x75\n\x00", text: "田\n", enc: UTF16LE},
		{name: "auto ascii", raw: "a@b\n", text: "a@b\n", enc: UTF8},
		{
			name: "auto neither", raw: "mail\nok\n\x81\x20bad\n", enc: ShiftJIS,
			err: "line 3: not valid Shift_JIS (CP932) (byte 0x81 at byte 1 of the line), and not UTF-8 either (line 3)",
		},
		{
			name: "auto: shift_jis fails later than utf-8", raw: "\x93c\n\x82", enc: ShiftJIS,
			err: "line 2: not valid Shift_JIS (CP932) (byte 0x82 at byte 1 of the line), and not UTF-8 either (line 1)",
		},
		{name: "forced shift_jis on ascii", raw: "a@b\n", want: ShiftJIS, text: "a@b\n", enc: ShiftJIS},
		{name: "forced shift_jis user-defined area", raw: "\xf8\x9f", want: ShiftJIS, text: "\ue63e", enc: ShiftJIS},
		{
			name: "forced shift_jis, lead byte at the end of a line", raw: "mail\r\n\x93c\x82\r\n", want: ShiftJIS, enc: ShiftJIS,
			err: "line 2: not valid Shift_JIS (CP932) (byte 0x82 at byte 3 of the line)",
		},
		{
			name: "forced shift_jis, unassigned code", raw: "J\xfcrgen", want: ShiftJIS, enc: ShiftJIS,
			err: "line 1: not valid Shift_JIS (CP932) (byte 0xfc at byte 2 of the line)",
		},
		{
			name: "forced utf-8 on shift_jis", raw: "mail\tname\r\ntanaka@example.jp\t\x93c\x92\x86\r\n", want: UTF8, enc: UTF8,
			err: "line 2: not valid UTF-8 (byte 0x93 at byte 19 of the line)",
		},
		{name: "forced utf-8 drops its bom", raw: "\xef\xbb\xbfx", want: UTF8, text: "x", enc: UTF8},
		{name: "forced shift_jis drops a utf-8 bom", raw: "\xef\xbb\xbf\x93c", want: ShiftJIS, text: "田", enc: ShiftJIS},
		{name: "euc-jp", raw: "\xc5\xc4\xc3\xe6", want: EUCJP, text: "田中", enc: EUCJP},
		{
			name: "euc-jp truncated", raw: "\xc5\xc4\xc3", want: EUCJP, enc: EUCJP,
			err: "line 1: not valid EUC-JP (byte 0xc3 at byte 3 of the line)",
		},
		{name: "latin-1 is never wrong", raw: "\x80\xff", want: Latin1, text: "\u0080ÿ", enc: Latin1},
		{
			name: "utf-16 odd length", raw: "\xff\xfea\x00\n\x00b", want: UTF16LE, enc: UTF16LE,
			err: "line 2: not valid UTF-16 (byte 0x62 at byte 1 of the line)",
		},
		{name: "iso-2022-jp", raw: "\x1b$B8+@Q=q\x1b(B", want: ISO2022JP, text: "見積書", enc: ISO2022JP},
		{
			name: "iso-2022-jp with 8-bit bytes", raw: "ok\n\x1b$B8+\xc0\x1b(B", want: ISO2022JP, enc: ISO2022JP,
			err: "line 2: not valid ISO-2022-JP (byte 0xc0 at byte 6 of the line)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, enc, err := DecodeStrict([]byte(tc.raw), tc.want)
			if enc != tc.enc {
				t.Errorf("encoding %s, want %s", enc, tc.enc)
			}
			if tc.err != "" {
				var ie *InvalidError
				if !errors.As(err, &ie) || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if int(ie.Byte) != int(tc.raw[ie.Offset]) {
					t.Errorf("Byte 0x%02x is not raw[%d]", ie.Byte, ie.Offset)
				}
				return
			}
			if err != nil || text != tc.text {
				t.Errorf("= %+q %v, want %+q", text, err, tc.text)
			}
		})
	}
}

// One bad byte costs its line, not the table.
func TestDecodeLines(t *testing.T) {
	type line struct {
		text string
		err  string
	}
	tests := []struct {
		name string
		raw  string
		want Encoding
		enc  Encoding
		out  []line
	}{
		{"utf-8", "a\n見\n", Auto, UTF8, []line{{"a", ""}, {"見", ""}, {"", ""}}},
		{"utf-8 bom", "\xef\xbb\xbfa", Auto, UTF8, []line{{"a", ""}}},
		{
			"shift_jis, one bad line", "\x93c\r\nx\x82\xff.jp, h.jp\r\n\x92\x86", Auto, ShiftJIS,
			[]line{{"田\r", ""}, {"x\ufffd\ufffd.jp, h.jp\r", "line 2: not valid Shift_JIS (CP932) (byte 0x82 at byte 2 of the line)"}, {"中", ""}},
		},
		{"utf-8 bom, then shift_jis", "\xef\xbb\xbfok\n\x93c", Auto, ShiftJIS, []line{{"ok", ""}, {"田", ""}}},
		{
			"forced utf-8 on shift_jis", "\xef\xbb\xbfok\n\x93c", UTF8, UTF8,
			[]line{{"ok", ""}, {"\ufffdc", "line 2: not valid UTF-8 (byte 0x93 at byte 1 of the line)"}},
		},
		{"utf-16", "\xff\xfea\x00\n\x00b\x00", Auto, UTF16LE, []line{{"a", ""}, {"b", ""}}},
		{"forced shift_jis", "a\n", ShiftJIS, ShiftJIS, []line{{"a", ""}, {"", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, enc := DecodeLines([]byte(tc.raw), tc.want)
			if enc != tc.enc {
				t.Errorf("encoding %s, want %s", enc, tc.enc)
			}
			var got []line
			for _, l := range lines {
				g := line{text: l.Text}
				if l.Err != nil {
					g.err = l.Err.Error()
				}
				got = append(got, g)
			}
			if !slices.Equal(got, tc.out) {
				t.Errorf("lines %+q, want %+q", got, tc.out)
			}
		})
	}
}

func TestSniffBOM(t *testing.T) {
	for _, tc := range []struct {
		raw string
		enc Encoding
		n   int
	}{
		{"\xef\xbb\xbfa", UTF8, 3}, {"\xff\xfea", UTF16LE, 2}, {"\xfe\xff", UTF16BE, 2}, {"\xef\xbb", Auto, 0}, {"", Auto, 0},
	} {
		if enc, n := SniffBOM([]byte(tc.raw)); enc != tc.enc || n != tc.n {
			t.Errorf("SniffBOM(%+q) = %s %d, want %s %d", tc.raw, enc, n, tc.enc, tc.n)
		}
	}
}

func TestNames(t *testing.T) {
	for e := Auto; e <= UTF16BE; e++ {
		if e.String() == "" || strings.HasPrefix(e.String(), "encoding(") || e.Name() == "" {
			t.Errorf("encoding %d has no name", e)
		}
	}
}

// Sentences as bodies carry them, encoded by x/text.
func TestDetectSentences(t *testing.T) {
	const ja = "日本語のテキストです。カタカナ、ひらがな、漢字。"
	const latin = "Grüße aus München; déjà vu à l'été, señor Ñúñez."
	for _, c := range []struct {
		text string
		enc  encoding.Encoding
		want Encoding
	}{
		{ja, unicode.UTF8, UTF8},
		{ja, japanese.ShiftJIS, ShiftJIS},
		{ja, japanese.EUCJP, EUCJP},
		{ja, japanese.ISO2022JP, ISO2022JP},
		{latin, charmap.ISO8859_1, Latin1},
	} {
		raw, err := c.enc.NewEncoder().String(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := Detect([]byte(raw)); got != c.want {
			t.Errorf("Detect(%+q) = %s, want %s", raw, got, c.want)
		}
		if got := DecodeAs([]byte(raw), c.want); got != c.text {
			t.Errorf("DecodeAs(%+q, %s) = %q", raw, c.want, got)
		}
	}
}

// A long body is judged by its start, cut after a whole character.
func TestDetectSample(t *testing.T) {
	body := strings.Repeat("\x89\xef\x8bc\x82\xcc\x82\xa8\x92m\x82\xe7\x82\xb9\r\n", 1000) // 会議のお知らせ
	if enc, guessed := Detect([]byte(body[1:])); enc != ShiftJIS || !guessed {
		t.Errorf("Detect = %s %v", enc, guessed)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"\x8c\xa9\x90\xcf\x8f\x91", "J\xfcrgen", "\x1b$B8+@Q=q\x1b(B", "\xb2\xf1\xb5\xc4", "\xff\xfe\x30\x75", "\xef\xbb\xbf\xe6\xb0\x8f", "\x8f\xb0\xa1\x8e\xb1"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, e uint8) {
		text, enc, _ := Decode(raw)
		if !utf8.ValidString(text) {
			t.Fatalf("Decode(%+q) = %+q: not UTF-8", raw, text)
		}
		if d, _ := Detect(raw); d != enc {
			t.Fatalf("Detect says %s, Decode read %s", d, enc)
		}
		want := Encoding(e) % (UTF16BE + 1)
		lenient := DecodeAs(raw, want)
		if !utf8.ValidString(lenient) {
			t.Fatalf("DecodeAs(%+q, %s) = %+q: not UTF-8", raw, want, lenient)
		}
		lines, enc := DecodeLines(raw, want)
		clean := true
		for i, l := range lines {
			if !utf8.ValidString(l.Text) || l.Err != nil && (l.Err.Line != i+1 || l.Err.Byte != raw[l.Err.Offset]) {
				t.Fatalf("DecodeLines(%+q, %s): line %d %+q %#v", raw, want, i+1, l.Text, l.Err)
			}
			clean = clean && l.Err == nil
		}
		strict, got, err := DecodeStrict(raw, want)
		if got != enc || clean != (err == nil) {
			t.Fatalf("DecodeLines(%+q, %s) reads %s clean=%v, DecodeStrict %s %v", raw, want, enc, clean, got, err)
		}
		var texts []string
		for _, l := range lines {
			texts = append(texts, l.Text)
		}
		if err == nil && strings.Join(texts, "\n") != strict {
			t.Fatalf("DecodeLines(%+q, %s) = %+q, DecodeStrict %+q", raw, want, texts, strict)
		}
		var ie *InvalidError
		switch {
		case err == nil && !utf8.ValidString(strict):
			t.Fatalf("DecodeStrict(%+q, %s) = %+q: not UTF-8", raw, want, strict)
		case err == nil && strict != DecodeAs(raw, got):
			// What reads strictly reads the same leniently.
			t.Fatalf("DecodeStrict(%+q, %s) = %+q, DecodeAs %+q", raw, got, strict, DecodeAs(raw, got))
		case err != nil && (!errors.As(err, &ie) || ie.Offset >= len(raw) || ie.Byte != raw[ie.Offset] || ie.Line < 1 || ie.Column < 1):
			t.Fatalf("DecodeStrict(%+q, %s): %#v", raw, want, err)
		}
	})
}
