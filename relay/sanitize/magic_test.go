package sanitize

import (
	"archive/zip"
	"bytes"
	"testing"
)

func encryptedZip() string {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, _ := z.CreateHeader(&zip.FileHeader{Name: "secret.txt", Flags: 1})
	w.Write([]byte("x"))
	z.Close()
	return buf.String()
}

// The sniffer must reach the same verdict however the content is split
// into writes (a name may straddle two of them).
func TestSnifferDetects(t *testing.T) {
	for _, c := range []struct {
		name, data, want string
	}{
		{"pdf", pdf, "application/pdf"},
		{"png", png, "image/png"},
		{"xlsx", officeZip("xl", false), TypeXLSX},
		{"xlsm", officeZip("xl", true), TypeXLSM},
		{"docx", officeZip("word", false), TypeDOCX},
		{"docm", officeZip("word", true), TypeDOCM},
		{"encrypted zip", encryptedZip(), TypeEncrypted},
		{"exe", "MZ\x90\x00", TypeExe},
		{"ole", "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", TypeOLE},
		{"tnef", "\x78\x9f\x3e\x22\x01", TypeTNEF},
		{"text sjis", sjis("日本語のテキストです"), "text/plain"},
		{"html", "<!DOCTYPE html><html>", "text/html"},
		{"binary", "\x00\x01\x02", TypeOctet},
		{"empty", "", "application/x-empty"},
	} {
		for _, chunk := range []int{1, 7, 4096} {
			var s sniffer
			for i := 0; i < len(c.data); i += chunk {
				s.Write([]byte(c.data[i:min(i+chunk, len(c.data))]))
			}
			if got := s.detected(); got != c.want {
				t.Errorf("%s in writes of %d: detected %s, want %s", c.name, chunk, got, c.want)
			}
			if s.size != int64(len(c.data)) {
				t.Errorf("%s: size %d, want %d", c.name, s.size, len(c.data))
			}
		}
	}
}
