package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// referenceData is the plain model of RFC 5321 end of data the strict
// reader is checked against: the data ends at the first <CRLF>.<CRLF>
// (the CRLF that ended the DATA command counts); the text before it is
// cut into lines at CRLF and bare LF (a bare CR ends nothing); a line of
// '.' and more loses its first dot; NULs and bare CRs are dropped, a bare
// LF becomes CRLF, and any of the three refuses the message under reject.
// found is false when the input holds no end of data.
func referenceData(in []byte, p LinePolicy) (out []byte, rest []byte, bad, found bool) {
	s := append([]byte("\r\n"), in...)
	i := bytes.Index(s, []byte("\r\n.\r\n"))
	if i < 0 {
		return nil, nil, false, false
	}
	text, rest := s[2:i+2], s[i+5:]
	if i == 0 {
		text = nil
	}
	for len(text) > 0 {
		// The next line and its ending.
		j := bytes.IndexByte(text, '\n')
		line := text[:j]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		} else {
			bad = true // a bare LF
		}
		text = text[j+1:]
		if len(line) > 1 && line[0] == '.' {
			line = line[1:]
		}
		if bytes.ContainsAny(line, "\x00\r") {
			bad = true
			line = bytes.ReplaceAll(line, []byte{0}, nil)
			line = bytes.ReplaceAll(line, []byte{'\r'}, nil)
		}
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
	if bad && p == LineReject {
		out = nil
	}
	return out, rest, bad, true
}

// readData runs the strict reader as the server does: the handler reads
// everything, then the rest is drained. It returns the text, the
// handler's error and what the connection holds after the data.
func readData(in []byte, p LinePolicy, max int64, bufSize int) (out, rest []byte, err error) {
	out, rest, err, _ = readDataConn(in, p, max, bufSize)
	return out, rest, err
}

// readDataConn also returns the connection's error after the drain.
func readDataConn(in []byte, p LinePolicy, max int64, bufSize int) (out, rest []byte, err, connErr error) {
	br := bufio.NewReaderSize(bytes.NewReader(in), bufSize)
	var m MessageReader
	m.reset(br, true, p, max)
	out, err = io.ReadAll(&m)
	m.drain()
	rest, _ = io.ReadAll(br)
	return out, rest, err, m.srcErr
}

func TestDataReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		policy   LinePolicy
		want     string
		err      error
		rest     string
	}{
		{"plain", "a\r\nb\r\n.\r\nMAIL", LineReject, "a\r\nb\r\n", nil, "MAIL"},
		{"empty", ".\r\n", LineReject, "", nil, ""},
		{"stuffed", "..a\r\n.\r\n", LineReject, ".a\r\n", nil, ""},
		{"stuffed twice", "...\r\n.\r\n", LineReject, "..\r\n", nil, ""},
		{"CR then end (issue 11)", "hello\r\r\n.\r\nQUIT\r\n", LineNormalize, "hello\r\n", nil, "QUIT\r\n"},
		{"CR then end, reject", "hello\r\r\n.\r\nQUIT\r\n", LineReject, "", ErrBareLineEnding, "QUIT\r\n"},
		{"CR CR LF is one line", "Subject: a\r\r\nFrom: b@c\r\r\n\r\nbody\r\n.\r\n", LineNormalize, "Subject: a\r\nFrom: b@c\r\n\r\nbody\r\n", nil, ""},
		{"CR CR LF, reject", "Subject: a\r\r\n\r\nbody\r\n.\r\nNOOP\r\n", LineReject, "", ErrBareLineEnding, "NOOP\r\n"},
		{"bare CR inside a line", "a\rb\r\n.\r\n", LineNormalize, "ab\r\n", nil, ""},
		{"dot CR X is one line", "a\r\n.\rX\r\n.\r\n", LineNormalize, "a\r\nX\r\n", nil, ""},
		{"dot dot after CR", "a\r..b\r\n.\r\n", LineNormalize, "a..b\r\n", nil, ""},
		{"LF dot LF is text", "a\n.\nb\r\n.\r\n", LineNormalize, "a\r\n.\r\nb\r\n", nil, ""},
		{"LF dot CRLF is text", "a\n.\r\nb\r\n.\r\n", LineNormalize, "a\r\n.\r\nb\r\n", nil, ""},
		{"NUL dropped", "a\x00b\r\n.\r\n", LineNormalize, "ab\r\n", nil, ""},
		{"NUL refused", "a\x00b\r\n.\r\nNOOP\r\n", LineReject, "", ErrBareLineEnding, "NOOP\r\n"},
		{"long line", strings.Repeat("x", 70000) + "\r\n.\r\n", LineReject, strings.Repeat("x", 70000) + "\r\n", nil, ""},
		{"too large, drained", strings.Repeat("x\r\n", 100) + ".\r\nRSET\r\n", LineReject, "", ErrTooLarge, "RSET\r\n"},
		{"no end", "a\r\nb", LineReject, "", io.ErrUnexpectedEOF, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 4096} {
				got, rest, err := readData([]byte(tc.in), tc.policy, 200, size)
				if tc.name == "long line" {
					got, rest, err = readData([]byte(tc.in), tc.policy, 0, size)
				}
				if !errors.Is(err, tc.err) {
					t.Fatalf("buffer %d: error %v, want %v", size, err, tc.err)
				}
				if tc.err == nil && string(got) != tc.want {
					t.Errorf("buffer %d: text %q, want %q", size, got, tc.want)
				}
				if string(rest) != tc.rest {
					t.Errorf("buffer %d: left %q, want %q", size, rest, tc.rest)
				}
			}
		})
	}
}

// FuzzDataReader checks the strict reader against referenceData: the same
// end, the same text, the same verdict, whatever the buffer size.
func FuzzDataReader(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "hello\r\r\n.\r\nMAIL", "a\r\r\nb\r\r\n\r\n.\r\n", ".\r\r\n.\r\n", "\r\n.\rX\r\n.\r\n", "a\r..b\n.\r\n.\r\n",
		"\x00\r\n.\r\n", "..\r\n.\r\n", ".\r\n", "a\n.\n\r\n.\r\n", ".\r.\r\n.\r\n"} {
		f.Add([]byte(s), false, uint8(16))
		f.Add([]byte(s), true, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, normalize bool, size uint8) {
		p := LineReject
		if normalize {
			p = LineNormalize
		}
		want, wantRest, bad, found := referenceData(in, p)
		got, rest, err, connErr := readDataConn(in, p, 0, 16+int(size))
		if !found {
			if !errors.Is(connErr, io.ErrUnexpectedEOF) {
				t.Fatalf("%q: no end of data in the model, reader's connection error %v", in, connErr)
			}
			return
		}
		if connErr != nil {
			t.Fatalf("%q: end of data in the model, reader's connection error %v", in, connErr)
		}
		if string(rest) != string(wantRest) {
			t.Fatalf("%q: left %q, model %q", in, rest, wantRest)
		}
		if bad && p == LineReject {
			if !errors.Is(err, ErrBareLineEnding) {
				t.Fatalf("%q: reader says %v, model refuses", in, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: text %q, model %q", in, got, want)
		}
		if bytes.IndexByte(got, 0) >= 0 || bareLine(got) {
			t.Fatalf("%q: output %q holds a NUL or a bare line ending", in, got)
		}
	})
}

// bareLine reports a CR not followed by LF or a LF not after CR.
func bareLine(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') || c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

func BenchmarkDataReader(b *testing.B) {
	var msg bytes.Buffer
	msg.WriteString("From: a@example.jp\r\nTo: b@example.jp\r\nSubject: bench\r\n\r\n")
	for msg.Len() < 4000 {
		msg.WriteString("The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n")
	}
	msg.WriteString(".\r\n")
	in := msg.Bytes()
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 4096)
	var m MessageReader
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(in)
		br.Reset(r)
		m.reset(br, true, LineReject, 0)
		if _, err := io.Copy(io.Discard, &m); err != nil {
			b.Fatal(err)
		}
	}
}
