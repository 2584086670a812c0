package export

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/unicode"
)

func sjis(t testing.TB, s string) string {
	b, err := japanese.ShiftJIS.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utf16(t testing.TB, s string, e unicode.Endianness) string {
	b, err := unicode.UTF16(e, unicode.UseBOM).NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncoding(t *testing.T) {
	const text = "氏名\tメールアドレス\r\n田中 太郎\ttanaka@example.jp\r\n"
	tests := []struct {
		name     string
		in       string
		encoding string
		want     string // detected encoding
		bom      bool
		fatal    string
		ascii    bool // not the text above: only the record count is checked
	}{
		{name: "auto utf-8", in: text, want: EncodingUTF8},
		{name: "auto utf-8 bom", in: "\ufeff" + text, want: EncodingUTF8, bom: true},
		{name: "forced utf-8 with bom", in: "\ufeff" + text, encoding: "UTF8", want: EncodingUTF8, bom: true},
		{name: "auto shift_jis", in: sjis(t, text), want: EncodingShiftJIS},
		{name: "forced cp932", in: sjis(t, text), encoding: "cp932", want: EncodingShiftJIS},
		{name: "forced shift_jis on ascii", in: "mail\ntanaka@example.jp\n", encoding: "sjis", want: EncodingShiftJIS, ascii: true},
		{name: "utf-16le from excel", in: utf16(t, text, unicode.LittleEndian), want: EncodingUTF16LE, bom: true},
		{name: "utf-16be", in: utf16(t, text, unicode.BigEndian), want: EncodingUTF16BE, bom: true},
		{
			name: "forced utf-8 on shift_jis names the line", in: "mail\tname\r\n" + sjis(t, "tanaka@example.jp\t田中\r\n"),
			encoding: "utf-8", fatal: "x.tsv:2: not valid UTF-8 (byte 0x93 at byte 19 of the line)",
		},
		{
			name: "neither utf-8 nor shift_jis", in: "mail\tname\r\ntanaka@example.jp\tok\r\nsuzuki@example.jp\t\x81\x20bad\r\n",
			fatal: "x.tsv:3: not valid Shift_JIS (CP932), and not UTF-8 either (line 3)",
		},
		{
			name: "shift_jis lead byte at the end of a line", in: "mail\r\n" + sjis(t, "田") + "\x82\r\n",
			encoding: "shift_jis", fatal: "x.tsv:2: not valid Shift_JIS (CP932)",
		},
		{name: "bom but shift_jis asked", in: "\ufeff" + text, encoding: "shift_jis", fatal: "UTF-8 byte order mark, but the encoding shift_jis was asked for"},
		{name: "utf-16 but utf-8 asked", in: utf16(t, text, unicode.LittleEndian), encoding: "utf-8", fatal: "is UTF-16"},
		{name: "truncated utf-16", in: utf16(t, text, unicode.LittleEndian)[:9], fatal: "odd number of bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Read(strings.NewReader(tc.in), "x.tsv", Options{Encoding: tc.encoding})
			if tc.fatal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fatal) {
					t.Fatalf("error %v, want %q", err, tc.fatal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Encoding != tc.want || res.BOM != tc.bom {
				t.Errorf("encoding %s bom=%v, want %s bom=%v", res.Encoding, res.BOM, tc.want, tc.bom)
			}
			if len(res.Records) != 1 {
				t.Fatalf("records %+v", res.Records)
			}
			if tc.ascii {
				return
			}
			if r := res.Records[0]; r.Name != "田中 太郎" || r.Local != "tanaka" || r.Line != 2 {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// TestShiftJISLineNumbers checks that CP932 trail bytes equal to '\' or
// '|' (表, ソ, 能 ...) never disturb cells or lines, and that the NEC and
// IBM extension characters decode.
func TestShiftJISLineNumbers(t *testing.T) {
	in := sjis(t, "mail\tname\r\nhyo@example.jp\t表ソ能\r\n\r\n# コメント\r\nmaru@example.jp\t① ㈱ 髙﨑\r\n")
	res, err := Read(strings.NewReader(in), "x.tsv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Encoding != EncodingShiftJIS || len(res.Records) != 2 {
		t.Fatalf("%s %+v", res.Encoding, res.Records)
	}
	if r := res.Records[0]; r.Line != 2 || r.Name != "表ソ能" {
		t.Errorf("record %+v", r)
	}
	if r := res.Records[1]; r.Line != 5 || r.Name != "① ㈱ 髙﨑" {
		t.Errorf("record %+v", r)
	}
}
