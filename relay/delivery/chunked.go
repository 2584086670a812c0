package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// chunkSize is how much of the message one BDAT carries (at least; a
// chunk ends at a read boundary).
const chunkSize = 128 << 10

// chunked runs a transaction with PIPELINING and CHUNKING (RFC 3030):
// MAIL, every RCPT and the first BDAT with its chunk go out in one write,
// so a message that fits in one chunk (BDAT n LAST) costs one write and
// one round trip, against two of each with DATA; the body goes as it is,
// without dot-stuffing, and no byte in it can end the message early. A
// server that refuses every recipient still reads the chunk and answers
// the BDAT with an error (RFC 3030 §4.2); the refusals already settled the
// results, and RSET clears the transaction.
//
// The message is opened before the recipients are known: that costs a
// read of a message that may go nowhere, never a second transaction.
func (c *Client) chunked(ctx context.Context, cn *conn, m Message, results []Result, pending []int, utf8 bool) bool {
	remote := cn.addr
	body, err := m.Body()
	if err != nil {
		setAll(results, pending, 0, "", fmt.Sprintf("opening the message: %v", err), true, "")
		return true // nothing was sent
	}
	defer body.Close()
	enc := smtpd.TextEncoder{}
	cmd, dsn := envelopeCommands(cn, m, pending, utf8)
	var out []byte
	var last bool
	fs := fileStretchOf(cn, body) // nil: the bytes pass through enc
	if fs != nil {
		out, last = fs.chunk(cn, cmd.String())
	} else if out, last, err = c.nextChunk(cn, &enc, body, cmd.String()); err != nil {
		setAll(results, pending, 0, "", fmt.Sprintf("reading the message: %v", err), true, "")
		return true
	}

	cn.raw.SetDeadline(time.Now().Add(c.opts.CommandTimeout))
	defer cn.raw.SetDeadline(time.Time{})
	accepted, mailCode, done, reuse := sendEnvelope(ctx, cn, out, fs, results, pending)
	if done {
		return reuse
	}
	for {
		if last {
			// The reply to the last chunk comes once the server has
			// taken the message, as after DATA's final dot.
			cn.raw.SetReadDeadline(time.Now().Add(c.opts.DataTimeout))
		}
		bc, bmsg, err := cn.readReply()
		if err != nil && bc == 0 {
			return failed(ctx, results, accepted, err, remote, "BDAT")
		}
		if mailCode == 421 || bc == 421 {
			if len(accepted) > 0 {
				setReply(results, accepted, bc, bmsg, remote)
			}
			return false
		}
		if len(accepted) == 0 {
			return cn.reset() == nil // the chunk was read and thrown away
		}
		if bc/100 != 2 {
			setReply(results, accepted, bc, bmsg, remote)
			return cn.reset() == nil
		}
		if last {
			delivered(m, results, accepted, bc, bmsg, remote, dsn)
			return true
		}
		if fs != nil {
			out, last = fs.chunk(cn, "")
		} else if out, last, err = c.nextChunk(cn, &enc, body, ""); err != nil {
			// Closing without a last chunk is the only way to abort: the
			// server discards the partial message.
			setAll(results, accepted, 0, "", fmt.Sprintf("reading the message: %v", err), true, "")
			return false
		}
		cn.raw.SetWriteDeadline(time.Now().Add(c.opts.DataTimeout))
		if err := cn.writeGroup(out, fs); err != nil {
			if se := (*storedError)(nil); errors.As(err, &se) {
				setAll(results, accepted, 0, "", "reading the message: "+se.Error(), true, "")
			} else {
				failed(ctx, results, accepted, err, remote, "sending the message")
			}
			return false
		}
		cn.raw.SetReadDeadline(time.Now().Add(c.opts.CommandTimeout))
	}
}

// maxBDATLine is the longest "BDAT n LAST\r\n" a chunk can need.
const maxBDATLine = len("BDAT  LAST\r\n") + 20

// nextChunk reads and encodes the next chunkSize bytes of the message, or
// what is left of it (last), and returns what goes on the wire: prefix
// (the envelope commands, before the first chunk), "BDAT n [LAST]" and
// the chunk. The chunk is encoded straight into the write buffer, after
// room left for the two, which are then put right before it: the message
// is copied once, from the read buffer to the write buffer.
func (c *Client) nextChunk(cn *conn, enc *smtpd.TextEncoder, body io.Reader, prefix string) (out []byte, last bool, err error) {
	b := cn.buffers()
	room := len(prefix) + maxBDATLine
	buf := b.cmd
	if cap(buf) < room+chunkSize {
		buf = make([]byte, 0, room+chunkSize+bodyBufSize)
	}
	buf = buf[:room]
	for len(buf)-room < chunkSize {
		n, err := body.Read(b.body)
		buf = enc.Append(buf, b.body[:n])
		if err == io.EOF {
			buf, last = enc.End(buf), true
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	line := strconv.AppendInt(append(make([]byte, 0, maxBDATLine), "BDAT "...), int64(len(buf)-room), 10)
	if last {
		line = append(line, " LAST"...)
	}
	line = append(line, "\r\n"...)
	start := room - len(line) - len(prefix)
	copy(buf[start:], prefix)
	copy(buf[start+len(prefix):], line)
	cn.keepCmdBuf(buf)
	return buf[start:], last, nil
}

// keepCmdBuf keeps a write buffer for the next message, unless one large
// message made it big.
func (cn *conn) keepCmdBuf(b []byte) {
	if cap(b) <= 2*chunkSize+64<<10 {
		cn.buffers().cmd = b[:0]
	} else {
		cn.buffers().cmd = nil
	}
}
