package relay

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCRLFReader(t *testing.T) {
	cases := []struct {
		in        string
		normal    string // LineNormalize output
		rejectErr bool
		fixed     int
	}{
		{in: "a\r\nb\r\n", normal: "a\r\nb\r\n"},
		{in: "", normal: ""},
		{in: "a\nb\n", normal: "a\r\nb\r\n", rejectErr: true, fixed: 2},
		{in: "a\rb\r\n", normal: "a\r\nb\r\n", rejectErr: true, fixed: 1},
		{in: "body\n.\nMAIL FROM:<evil@x>\r\n", normal: "body\r\n.\r\nMAIL FROM:<evil@x>\r\n", rejectErr: true, fixed: 2},
		{in: "x\r", normal: "x\r\n", rejectErr: true, fixed: 1},
		{in: "x\r\r\n", normal: "x\r\n\r\n", rejectErr: true, fixed: 1},
		{in: strings.Repeat("line\r\n", 20000), normal: strings.Repeat("line\r\n", 20000)},
	}
	for _, c := range cases {
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = strings.NewReader(c.in)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			r := newCRLFReader(src, LineNormalize)
			got, err := io.ReadAll(r)
			if err != nil || string(got) != c.normal || r.normalized != c.fixed {
				t.Errorf("normalize(%.40q, oneByte=%v) = %.40q, %d fixed, %v; want %.40q, %d", c.in, oneByte, got, r.normalized, err, c.normal, c.fixed)
			}
			src = strings.NewReader(c.in)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			_, err = io.ReadAll(newCRLFReader(src, LineReject))
			if c.rejectErr != errors.Is(err, errBareLineEnding) {
				t.Errorf("reject(%.40q, oneByte=%v): err = %v, want bare error %v", c.in, oneByte, err, c.rejectErr)
			}
		}
	}
}

func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"a\r\n", "a\n", "\r", "\r\r\n\n", ".\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := io.ReadAll(newCRLFReader(strings.NewReader(s), LineNormalize))
		if err != nil {
			t.Fatal(err)
		}
		// Normalized output has only CRLF pairs and passes the strict reader.
		if _, err := io.ReadAll(newCRLFReader(strings.NewReader(string(out)), LineReject)); err != nil {
			t.Fatalf("normalized %q is still not strict: %v (%q)", s, err, out)
		}
	})
}
