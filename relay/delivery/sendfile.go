package delivery

import (
	"net"
	"os"
	"strconv"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// FileBody is a message body (Message.Body) that can say where its bytes
// are: Head, then the stretch of a file that Rest gives, vouched for as
// clean text (the queue's Stretch). With BDAT on a plain TCP connection
// that nobody traces, the stretch goes out with sendfile(2), from the page
// cache to the socket: it is not read, checked and copied as other bodies
// are, which at 100 KiB is most of what delivery costs.
type FileBody interface {
	Head() []byte
	Rest() (f *os.File, off, n int64, clean bool)
}

// minFileSend is the smallest stretch sent with sendfile(2). Below it the
// copy it saves costs less than the system call it adds.
const minFileSend = 32 << 10

// watcher is implemented by a Tracer's wrapper: whether the trace shows
// the connection now. Bytes sent with sendfile(2) pass the wrapper by, so
// they are sent so only while nobody watches.
type watcher interface{ Watched() bool }

// fileStretch is a message's bytes as they go out in chunks: head from
// memory with the first, then the file's n bytes from off, chunkSize at a
// time, as the bytes read through the encoder go.
type fileStretch struct {
	head   []byte
	f      *os.File
	off, n int64 // the file's bytes not sent yet
	part   int64 // of them, those the chunk being written carries
}

// fileStretchOf returns where body's bytes are when they can go out with
// sendfile(2) on cn, or nil: the connection must be plain TCP (TLS
// encrypts in our memory), untraced, and the stored bytes vouched clean
// and big enough; the head, written by us, is checked here all the same.
func fileStretchOf(cn *conn, body any) *fileStretch {
	fb, ok := body.(FileBody)
	if !ok || !canSendFile || cn.secure {
		return nil
	}
	if _, ok := cn.raw.(*net.TCPConn); !ok {
		return nil
	}
	if cn.session != cn.raw {
		if w, ok := cn.session.(watcher); !ok || w.Watched() {
			return nil
		}
	}
	f, off, n, clean := fb.Rest()
	if f == nil || !clean || n < minFileSend || !smtpd.IsCleanText(fb.Head()) {
		return nil
	}
	return &fileStretch{head: fb.Head(), f: f, off: off, n: n}
}

// chunk returns what goes on the wire before the next chunk's file bytes:
// prefix (the envelope commands, with the first chunk), "BDAT n [LAST]"
// and, in the first chunk, the head; and whether the chunk is the last.
func (fs *fileStretch) chunk(cn *conn, prefix string) (out []byte, last bool) {
	fs.part = min(fs.n, chunkSize)
	last = fs.part == fs.n
	out = append(cn.buffers().cmd[:0], prefix...)
	out = append(out, "BDAT "...)
	out = strconv.AppendInt(out, int64(len(fs.head))+fs.part, 10)
	if last {
		out = append(out, " LAST"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, fs.head...)
	fs.head = nil
	cn.keepCmdBuf(out)
	return out, last
}

// storedError is a failure to read the stored message while sending it
// (sendfile's input side): the message's fault, not the connection's.
type storedError struct{ err error }

func (e *storedError) Error() string { return e.err.Error() }
func (e *storedError) Unwrap() error { return e.err }

// writeGroup writes the pipelined group of commands (or a later chunk's
// BDAT line) and, with a stretch, the chunk's file bytes after it: the group with MSG_MORE, so that it leaves in
// the same segments as the first of the file's bytes, not in a small one
// of its own.
func (cn *conn) writeGroup(group []byte, fs *fileStretch) error {
	if fs == nil {
		_, err := cn.session.Write(group)
		return err
	}
	if err := sendMore(cn.raw, group); err != nil {
		return err
	}
	if err := sendFile(cn.raw, fs.f, fs.off, fs.part); err != nil {
		return err
	}
	fs.off, fs.n = fs.off+fs.part, fs.n-fs.part
	return nil
}
