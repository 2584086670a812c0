package smtpd

import (
	"io"
	"strconv"
	"strings"
)

// bdatCmd starts a message with its first chunk (RFC 3030), or reads and
// refuses a chunk sent outside a transaction. The chunks that follow are
// read as the handler reads the message (nextChunk): a message in
// chunks costs the memory of the read buffer, as one in DATA does.
func (c *Conn) bdatCmd(arg string) bool {
	size, last, ok := parseBDAT(arg)
	if !ok {
		// The chunk cannot be found in the stream: nothing after this
		// can be read as commands.
		c.reply(replyBDATSyntax)
		return false
	}
	var refuse *Reply
	switch {
	case !c.mail:
		refuse = &replyBadSequenceMail
	case c.rcpts == 0:
		refuse = &replyBadSequenceRcpt
	}
	if refuse != nil {
		// The chunk is read in full whatever happens to it.
		if c.br.Buffered() == 0 && !c.flush() {
			return false
		}
		if _, err := io.CopyN(io.Discard, c.br, size); err != nil {
			c.readFailed(err)
			return false
		}
		c.reply(*refuse)
		return true
	}
	c.growReader()
	c.chunkSize = size
	c.msg.resetBDAT(c.br, c.h.LinePolicy(), c.cfg.MaxMessageBytes, size, last, c.nextChunk)
	return c.deliver()
}

// nextChunk answers the chunk just read and reads the command that comes
// next: another BDAT, a NOOP answered on the way, a command that is out
// of sequence in the middle of a message (503), or RSET, QUIT, HELO or
// EHLO, which abandon the message (ErrAborted; c.pending holds the
// command, run once the handler is done).
func (c *Conn) nextChunk() (int64, bool, error) {
	c.reply(R(250, "2.0.0", strconv.FormatInt(c.chunkSize, 10)+" octets received"))
	for {
		line, err := c.readLine(c.lineSize())
		switch {
		case err == errLineTooLong:
			c.reply(replyLineTooLong)
		case err != nil:
			return 0, false, err
		case strings.IndexByte(line, 0) >= 0 || strings.IndexByte(line, '\r') >= 0:
			c.reply(replyBadChars)
		default:
			cmd := parseCommand(line)
			switch cmd.verb {
			case "BDAT":
				size, last, ok := parseBDAT(cmd.arg)
				if !ok {
					c.reply(replyBDATSyntax)
					return 0, false, errReplied
				}
				c.chunkSize = size
				return size, last, nil
			case "NOOP":
				c.reply(replyNoop)
			case "RSET", "QUIT", "HELO", "EHLO":
				c.pending = line
				return 0, false, ErrAborted
			default:
				c.reply(replyBDATMixed)
			}
		}
		if c.cfg.ErrorLimit > 0 && c.errors >= c.cfg.ErrorLimit {
			c.reply(replyTooManyErrors)
			return 0, false, errReplied
		}
	}
}

// parseBDAT reads "size [LAST]".
func parseBDAT(arg string) (size int64, last, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, false
	}
	size, err := strconv.ParseInt(f[0], 10, 64)
	last = len(f) == 2 && strings.EqualFold(f[1], "LAST")
	if err != nil || size < 0 || len(f) == 2 && !last {
		return 0, false, false
	}
	return size, last, true
}
