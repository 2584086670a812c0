package smtpd

import (
	"bytes"
	"strings"
	"testing"
)

// TestTextEncoder: the rule as delivery sends with it (dots: DATA) and as
// the readers normalize with it (no dots).
func TestTextEncoder(t *testing.T) {
	for _, c := range []struct {
		name, in, data, bdat string
	}{
		{"clean", "a\r\nb\r\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"empty", "", "", ""},
		{"no final line end", "a\r\nb", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"leading dots", ".a\r\n..b\r\n.\r\n", "..a\r\n...b\r\n..\r\n", ".a\r\n..b\r\n.\r\n"},
		{"dot mid-line", "a.b\r\n", "a.b\r\n", "a.b\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"bare CR ends no line", "a\rb\r", "ab\r\n", "ab\r\n"},
		{"smuggling: CR dot CR", "x\r.\rMAIL FROM:<e@x>\r\n", "x.MAIL FROM:<e@x>\r\n", "x.MAIL FROM:<e@x>\r\n"},
		{"bare CR at a line start", "a\r\n\r.b\r\n", "a\r\n..b\r\n", "a\r\n.b\r\n"},
		{"smuggling: LF dot LF", "x\n.\nY", "x\r\n..\r\nY\r\n", "x\r\n.\r\nY\r\n"},
		{"NUL before a dot", "x\r\n\x00.\r\nY", "x\r\n..\r\nY\r\n", "x\r\n.\r\nY\r\n"},
		{"NUL inside a CRLF", "a\r\x00\nb\x00c\r\n", "a\r\nbc\r\n", "a\r\nbc\r\n"},
		{"only NULs", "\x00\x00", "", ""},
		{"CR CR LF is one line", "a\r\r\n", "a\r\n", "a\r\n"},
		{"header with CR CR LF", "Subject: a\r\r\nFrom: b\r\r\n\r\nx", "Subject: a\r\nFrom: b\r\n\r\nx\r\n", "Subject: a\r\nFrom: b\r\n\r\nx\r\n"},
		{"long clean run", strings.Repeat("line\r\n", 50) + ".end\r\n", strings.Repeat("line\r\n", 50) + "..end\r\n", strings.Repeat("line\r\n", 50) + ".end\r\n"},
	} {
		for _, dots := range []bool{true, false} {
			want := c.bdat
			if dots {
				want = c.data
			}
			// Whole, and split at every offset: state carries across reads.
			for split := 0; split <= len(c.in); split++ {
				e := TextEncoder{Dots: dots}
				got := e.Append(nil, []byte(c.in[:split]))
				got = e.Append(got, []byte(c.in[split:]))
				got = e.End(got)
				if string(got) != want {
					t.Errorf("%s (dots %v, split at %d): got %q, want %q", c.name, dots, split, got, want)
					break
				}
			}
		}
	}
}

// referenceWire is the plain model: drop NULs, then make every CRLF and
// LF one CRLF and drop the CRs left, end the last line, then stuff dots
// line by line.
func referenceWire(in []byte, dots bool) []byte {
	s := strings.ReplaceAll(string(in), "\x00", "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		if dots && strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// FuzzTextEncoder checks the encoder against the reference model, with the
// input cut into reads at fuzzed places, and that DATA's end-of-data
// sequence can occur only where we put it.
func FuzzTextEncoder(f *testing.F) {
	for _, s := range []string{"a\r\nb", ".\r\n", "x\r.\rY", "\n.\n", "\x00.\r\n", "\r\x00\n", "..\r\r\n", "a\r\nb\r\n.c\r\nd\ne\r\n"} {
		f.Add([]byte(s), uint8(1), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut1, cut2 uint8) {
		for _, dots := range []bool{true, false} {
			a, b := int(cut1), int(cut2)
			a, b = min(a, len(in)), min(b, len(in))
			if a > b {
				a, b = b, a
			}
			e := TextEncoder{Dots: dots}
			got := e.Append(nil, in[:a])
			got = e.Append(got, in[a:b])
			got = e.Append(got, in[b:])
			got = e.End(got)
			if want := referenceWire(in, dots); !bytes.Equal(got, want) {
				t.Fatalf("dots %v, cuts %d %d: got %q, want %q", dots, a, b, got, want)
			}
			if bytes.IndexByte(got, 0) >= 0 {
				t.Fatalf("NUL in %q", got)
			}
			if dots && bytes.Contains(append([]byte("\r\n"), got...), []byte("\r\n.\r\n")) {
				t.Fatalf("an end of data inside the body: %q", got)
			}
			if bareLine(got) {
				t.Fatalf("a bare CR or LF in %q", got)
			}
			if clean := referenceWire(in, false); e.Changed == 0 && !dots && !bytes.Equal(clean, in) && !bytes.Equal(clean, append(bytes.Clone(in), '\r', '\n')) {
				t.Fatalf("%q changed to %q but Changed is 0", in, clean)
			}
		}
	})
}

func BenchmarkTextEncoder(b *testing.B) {
	var msg bytes.Buffer
	for msg.Len() < 64<<10 {
		msg.WriteString("This is a line of an ordinary message, about seventy characters long.\r\n")
	}
	in := msg.Bytes()
	dst := make([]byte, 0, 2*len(in))
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		e := TextEncoder{Dots: true}
		dst = e.End(e.Append(dst[:0], in))
	}
}

// BenchmarkTextEncoderHostile is what a client's text of bare line ends
// costs: 1 MiB of bare LFs, of bare CRs, and of short lines ended with a
// bare LF, in the 64 KiB pieces the readers pass. The cost grows with the
// bytes, never with the bytes times the piece.
func BenchmarkTextEncoderHostile(b *testing.B) {
	for _, c := range []struct{ name, unit string }{{"bare-lf", "\n"}, {"bare-cr", "\r"}, {"short-lf-lines", "a line\n"}} {
		in := bytes.Repeat([]byte(c.unit), (1<<20)/len(c.unit))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			dst := make([]byte, 0, 3*len(in))
			for b.Loop() {
				e := TextEncoder{Dots: true}
				dst = dst[:0]
				for p := in; len(p) > 0; {
					n := min(len(p), 64<<10)
					dst = e.Append(dst, p[:n])
					p = p[n:]
				}
				dst = e.End(dst)
			}
		})
	}
}

// referenceCleanLines is cleanLines as the definition says it, one line at
// a time.
func referenceCleanLines(p []byte, dots bool) int {
	n := 0
	for n < len(p) {
		if dots && n > 0 && p[n] == '.' {
			break
		}
		i := bytes.IndexByte(p[n:], '\n')
		if i < 1 || p[n+i-1] != '\r' {
			break
		}
		if line := p[n : n+i-1]; bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
			break
		}
		n += i + 1
	}
	return n
}

// FuzzCleanLines checks cleanLines's passes over all the lines against the
// line-by-line definition.
func FuzzCleanLines(f *testing.F) {
	for _, s := range []string{
		"a\r\nb\r\n", "a\r\nb", "a\r\n.b\r\n", ".a\r\n", "a\rb\r\nc\r\n", "a\r\nb\rc\r\nd\r\n",
		"a\r\nb\x00\r\n", "a\r\r\n", "\r\n\r\n", "a\n", "a\r\nb\nc\r\n", "\r\r\n", "x\r\n\r",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, p []byte, dots bool) {
		if got, want := cleanLines(p, dots), referenceCleanLines(p, dots); got != want {
			t.Fatalf("cleanLines(%q, %v) = %d, want %d", p, dots, got, want)
		}
	})
}

// BenchmarkCleanLines is the check the readers make of every byte of
// ordinary text: 64 KiB of lines of about seventy characters.
func BenchmarkCleanLines(b *testing.B) {
	var msg bytes.Buffer
	for msg.Len() < 64<<10 {
		msg.WriteString("This is a line of an ordinary message, about seventy characters long.\r\n")
	}
	in := msg.Bytes()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if cleanLines(in, true) != len(in) {
			b.Fatal("not clean")
		}
	}
}
