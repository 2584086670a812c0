package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

func (c *Conn) bdatCmd(arg string) bool {
	f := strings.Fields(arg)
	size, err := strconv.ParseInt(firstOr(f), 10, 64)
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	if err != nil || size < 0 || len(f) > 2 || len(f) == 2 && !last {
		// The chunk cannot be found in the stream: nothing after this
		// can be read as commands.
		c.reply(R(501, "5.5.4", "Syntax: BDAT size [LAST]; closing the connection"))
		return false
	}
	var refuse *Reply
	switch {
	case !c.mail:
		refuse = &replyBadSequenceMail
	case c.rcpts == 0:
		refuse = &replyBadSequenceRcpt
	}
	if c.bdat == nil && refuse == nil {
		c.bdat = new(bytes.Buffer)
	}
	// The chunk is read in full whatever happens to it (RFC 3030).
	var dst io.Writer = io.Discard
	if refuse == nil && !c.bdatBig {
		if c.cfg.MaxMessageBytes > 0 && int64(c.bdat.Len())+size > c.cfg.MaxMessageBytes {
			c.bdatBig = true
			c.bdat.Reset()
		} else {
			dst = c.bdat
		}
	}
	if c.br.Buffered() == 0 && !c.flush() {
		return false
	}
	if _, err := io.CopyN(dst, c.br, size); err != nil {
		c.reset()
		c.readFailed(err)
		return false
	}
	switch {
	case refuse != nil:
		c.reply(*refuse)
		return true
	case !last:
		c.reply(R(250, "2.0.0", strconv.FormatInt(size, 10)+" octets received"))
		return true
	case c.bdatBig:
		c.reset()
		c.reply(replyTooLarge)
		return true
	}
	c.msg.reset(bufio.NewReader(c.bdat), false, c.h.LinePolicy(), 0)
	return c.deliver()
}

func firstOr(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
