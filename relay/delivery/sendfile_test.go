package delivery

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storedFile is a FileBody as the runner gives one: a head, then a stretch
// of a file. Read works, and counts its calls: a delivery that sent the
// stretch with sendfile(2) never reads.
type storedFile struct {
	head   []byte
	f      *os.File
	off, n int64
	clean  bool
	r      io.Reader
	reads  int
}

func (s *storedFile) Read(p []byte) (int, error) {
	s.reads++
	return s.r.Read(p)
}
func (s *storedFile) Close() error { return nil }
func (s *storedFile) Head() []byte { return s.head }
func (s *storedFile) Rest() (*os.File, int64, int64, bool) {
	return s.f, s.off, s.n, s.clean
}

// spoolFile writes junk, the stored text and more junk into a file, as a
// segment holds one message among others, and returns it with the text's
// offset.
func spoolFile(t *testing.T, text []byte) (*os.File, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg")
	junk := bytes.Repeat([]byte{0, 'x', '\n'}, 1000)
	if err := os.WriteFile(path, append(append(bytes.Clone(junk), text...), junk...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, int64(len(junk))
}

// watchedTracer wraps connections in a trace that says whether anyone
// watches.
type watchedTracer struct{ watched bool }

type watchedConn struct {
	net.Conn
	watched bool
}

func (c watchedConn) Watched() bool { return c.watched }

func (w watchedTracer) Outbound(string, string) func(net.Conn) net.Conn {
	return func(nc net.Conn) net.Conn { return watchedConn{nc, w.watched} }
}

// A vouched stretch of a file goes out with sendfile(2), byte for byte and
// without a read; every case where the bytes must pass through us reads
// them, and the next hop gets the same message either way.
func TestSendFile(t *testing.T) {
	if !canSendFile {
		t.Skip("sendfile(2) is used on Linux only")
	}
	head := []byte("From: a@example.jp\r\nSubject: sendfile\r\n\r\n")
	var b strings.Builder
	for b.Len() < 2*chunkSize+minFileSend {
		b.WriteString("a line of the stored body, as the spool keeps it\r\n")
	}
	body := []byte(b.String())
	lines := func(n int) int { return bytes.LastIndex(body[:n], []byte("\r\n")) + 2 } // whole lines, up to n bytes
	one, small := lines(3*minFileSend), lines(minFileSend-1)
	for _, c := range []struct {
		name     string
		clean    bool
		size     int // of the stretch
		head     []byte
		tracer   Tracer
		sendfile bool
	}{
		{name: "vouched", clean: true, size: one, head: head, sendfile: true},
		{name: "vouched, three chunks", clean: true, size: len(body), head: head, sendfile: true},
		{name: "no head", clean: true, size: one, sendfile: true},
		{name: "traced, nobody watching", clean: true, size: one, head: head, tracer: watchedTracer{false}, sendfile: true},
		{name: "traced and watched", clean: true, size: one, head: head, tracer: watchedTracer{true}},
		{name: "not vouched", size: one, head: head},
		{name: "not vouched, three chunks", size: len(body), head: head},
		{name: "small", clean: true, size: small, head: head},
		{name: "head with a bare LF", clean: true, size: one, head: []byte("Subject: x\n\r\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := body[:c.size]
			f, off := spoolFile(t, text)
			r := newRawSink(t, "", "PIPELINING", "CHUNKING")
			cl := testClient(t, func(o *Options) {
				if c.tracer != nil {
					o.Trace = c.tracer
				}
			})
			sf := &storedFile{head: c.head, f: f, off: off, n: int64(len(text)), clean: c.clean,
				r: io.MultiReader(bytes.NewReader(c.head), io.NewSectionReader(f, off, int64(len(text))))}
			m := newMessage("a@example.jp", "", "ok@example.jp")
			m.Size = int64(len(c.head) + len(text))
			m.Body = func() (io.ReadCloser, error) { return sf, nil }
			if x := deliver(t, cl, plainTarget(r.addr), m)[0]; !x.Delivered {
				t.Fatalf("result %+v", x)
			}
			want := string(c.head) + string(text)
			if bytes.Contains(c.head, []byte("x\n")) {
				want = strings.Replace(want, "x\n", "x\r\n", 1)
			}
			cmds, payloads := r.recorded()
			if len(payloads) != 1 || string(payloads[0]) != want {
				t.Fatalf("%d payloads; want one of %d bytes (commands %q)", len(payloads), len(want), cmds)
			}
			// Either way a message goes in chunks of chunkSize or more.
			bdat := 0
			for _, cmd := range cmds {
				if strings.HasPrefix(cmd, "BDAT ") {
					bdat++
				}
			}
			if lo, hi := max(1, len(want)/chunkSize), (len(want)+chunkSize-1)/chunkSize; bdat < lo || bdat > hi {
				t.Errorf("%d BDAT commands for %d bytes, want %d to %d (commands %q)", bdat, len(want), lo, hi, cmds)
			}
			if sent := sf.reads == 0; sent != c.sendfile {
				t.Errorf("%d reads of the body; sendfile expected: %v", sf.reads, c.sendfile)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
				t.Errorf("the file's own position moved to %d", pos)
			}
		})
	}
}

// A stored file shorter than its stretch (a truncated spool file) fails the
// message for now, with what went wrong, in the first chunk or a later
// one, and the half-sent chunk does not leave the connection in use: the
// next message goes through.
func TestSendFileShort(t *testing.T) {
	if !canSendFile {
		t.Skip("sendfile(2) is used on Linux only")
	}
	for _, size := range []int{2 * minFileSend, 2 * chunkSize} {
		text := bytes.Repeat([]byte("a stored line\r\n"), size/15)
		f, off := spoolFile(t, text)
		r := newRawSink(t, "", "PIPELINING", "CHUNKING")
		cl := testClient(t, nil)
		sf := &storedFile{f: f, off: off, n: int64(len(text)) + 1<<20, clean: true, r: strings.NewReader("")}
		m := newMessage("a@example.jp", "", "ok@example.jp")
		m.Size = sf.n
		m.Body = func() (io.ReadCloser, error) { return sf, nil }
		x := deliver(t, cl, plainTarget(r.addr), m)[0]
		if x.Delivered || !x.Temporary || !strings.HasPrefix(x.Text, "reading the message: ") || !strings.Contains(x.Text, "before the message does") {
			t.Fatalf("%d bytes stored: result %+v", len(text), x)
		}
		if x := deliver(t, cl, plainTarget(r.addr), newMessage("a@example.jp", testBody, "ok@example.jp"))[0]; !x.Delivered {
			t.Fatalf("%d bytes stored: the next message: %+v", len(text), x)
		}
		if _, payloads := r.recorded(); len(payloads) != 1 || string(payloads[0]) != testBody {
			t.Errorf("%d bytes stored: %d payloads: only the second message may arrive", len(text), len(payloads))
		}
	}
}
