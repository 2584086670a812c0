package runner

// The message a delivery reads: the stored bytes, or a copy's new header
// in front of the stored body, and where those bytes are on disk.

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
)

// readHeader returns the stored header block of a message.
func (r *Runner) readHeader(id queue.ID, max int) ([]byte, error) {
	rc, err := r.sh.Queue.Open(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(rc)
	defer func() { br.Reset(nil); headerReaders.Put(br) }()
	return rewrite.ReadHeader(br, max)
}

// headerReaders keeps readHeader's buffers from one delivery to the next
// (ReadHeader returns a copy: nothing points into them).
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// body returns the message to send: the stored bytes, or a new header in
// front of the stored body. stored is the length of the stored header when
// it is known: the body then starts there, and the header is not read
// again at each call (signing, sanitizing and each attempt read the
// message).
func (r *Runner) body(id queue.ID, header []byte, stored int64, max int) (io.ReadCloser, error) {
	rc, err := r.sh.Queue.Open(id)
	if err != nil {
		return nil, err
	}
	if header == nil {
		if st, ok := rc.(queue.Stretch); ok {
			return &storedBody{Reader: rc, Closer: rc, rest: st}, nil
		}
		return rc, nil
	}
	var rest io.Reader
	var stretch queue.Stretch // where rest is, when it is the stored bytes as they are
	if s, ok := rc.(io.Seeker); ok && stored > 0 {
		_, err = s.Seek(stored, io.SeekStart)
		rest = rc
		stretch, _ = rc.(queue.Stretch)
	} else {
		br := bufio.NewReader(rc)
		_, err = rewrite.ReadHeader(br, max)
		rest = br
	}
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &storedBody{Reader: io.MultiReader(bytes.NewReader(header), rest), Closer: rc, head: header, rest: stretch}, nil
}

// storedBody is a copy's new header, then the stored message after its
// header. It tells delivery where the stored bytes are (delivery.FileBody),
// so that they can go out with sendfile(2).
type storedBody struct {
	io.Reader
	io.Closer
	head []byte
	rest queue.Stretch // nil: the reader cannot say
}

func (b *storedBody) Head() []byte { return b.head }

func (b *storedBody) Rest() (*os.File, int64, int64, bool) {
	if b.rest == nil {
		return nil, 0, 0, false
	}
	return b.rest.Rest()
}
