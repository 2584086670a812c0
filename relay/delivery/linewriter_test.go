package delivery

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// FuzzBodyOnTheWire checks what the wire sees for any body, written in any
// two chunks: CRLF line ends only, and "CRLF . CRLF" only at the very end.
func FuzzBodyOnTheWire(f *testing.F) {
	f.Add([]byte("a\r.\rb"), 2)
	f.Add([]byte("\n.\n"), 1)
	f.Add([]byte(".\r\n.\r"), 5)
	f.Add([]byte("\r"), 0)
	f.Fuzz(func(t *testing.T, body []byte, split int) {
		if split < 0 || split > len(body) {
			split = len(body) / 2
		}
		var wire bytes.Buffer
		bw := bufio.NewWriter(&wire)
		dot := textproto.NewWriter(bw).DotWriter()
		out := &crlfWriter{w: dot}
		if _, err := out.Write(body[:split]); err != nil {
			t.Fatal(err)
		}
		if _, err := out.Write(body[split:]); err != nil {
			t.Fatal(err)
		}
		if err := out.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := dot.Close(); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		p := wire.Bytes()
		for i, b := range p {
			if b == '\r' && (i+1 == len(p) || p[i+1] != '\n') || b == '\n' && (i == 0 || p[i-1] != '\r') {
				t.Fatalf("bare CR or LF at %d in %q", i, p)
			}
		}
		end := []byte("\r\n.\r\n")
		if i := bytes.Index(append([]byte("\r\n"), p...), end); i != len(p)+2-len(end) {
			t.Fatalf("end of data at %d in %q", i, p)
		}
		// Undoing the stuffing gives the body with its line ends completed.
		var unstuffed bytes.Buffer
		for _, line := range bytes.SplitAfter(p[:len(p)-3], []byte("\r\n")) {
			unstuffed.Write(bytes.TrimPrefix(line, []byte(".")))
		}
		want := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
		if !bytes.HasSuffix(want, []byte("\r\n")) { // the dot writer ends the last line
			want = append(want, "\r\n"...)
		}
		if !bytes.Equal(unstuffed.Bytes(), want) {
			t.Fatalf("unstuffed %q, want %q", unstuffed.Bytes(), want)
		}
	})
}
