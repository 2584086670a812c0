package smtpd

import (
	"errors"
	"strconv"
	"strings"
)

// extension is a set of the service extensions an EHLO reply advertised:
// their MAIL and RCPT parameters are accepted only then (RFC 5321
// §4.1.1.11).
type extension uint8

const (
	extSize extension = 1 << iota
	ext8BitMIME
	extSMTPUTF8
	extDSN
	extAuth
)

func (c *Conn) hello(name string, extended bool) {
	c.reset()
	name = strings.TrimSpace(name)
	if i := strings.IndexByte(name, ' '); i >= 0 {
		name = name[:i] // trailing words are ignored, as Postfix does
	}
	r := c.h.Helo(name, extended)
	if r.Failed() {
		c.reply(r)
		return
	}
	c.helo, c.greeted, c.ext = name, true, 0
	greeting := c.cfg.Hostname
	if r.Text != "" {
		greeting += " " + r.Text
	}
	if !extended {
		c.reply(R(250, "", greeting))
		return
	}
	c.ext = extSize | ext8BitMIME
	ext := []string{greeting, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"}
	if c.cfg.TLS != nil && c.tlsState == nil {
		ext = append(ext, "STARTTLS")
	}
	if !c.authed {
		if mechs := c.h.AuthMechanisms(); len(mechs) > 0 {
			ext = append(ext, "AUTH "+strings.Join(mechs, " "))
			c.ext |= extAuth
		}
	}
	if c.cfg.SMTPUTF8 {
		ext = append(ext, "SMTPUTF8")
		c.ext |= extSMTPUTF8
	}
	if c.cfg.DSN {
		ext = append(ext, "DSN")
		c.ext |= extDSN
	}
	if c.cfg.MaxMessageBytes > 0 {
		ext = append(ext, "SIZE "+strconv.FormatInt(c.cfg.MaxMessageBytes, 10))
	} else {
		ext = append(ext, "SIZE")
	}
	if c.cfg.MaxRecipients > 0 {
		ext = append(ext, "LIMITS RCPTMAX="+strconv.Itoa(c.cfg.MaxRecipients))
	}
	c.reply(R(250, "", strings.Join(ext, "\n")))
}

// offered is what MAIL and RCPT parameters may use now: the extensions
// advertised, and AUTH= once authenticated.
func (c *Conn) offered() extension {
	if c.authed {
		return c.ext | extAuth
	}
	return c.ext
}

func (c *Conn) mailCmd(arg string) {
	switch {
	case !c.greeted:
		c.reply(replyBadSequenceHelo)
		return
	case c.mail:
		c.reply(replyNestedMail)
		return
	}
	from, params, err := parsePathArg(arg, "FROM:")
	if err != nil {
		c.reply(R(501, "5.5.4", err.Error()))
		return
	}
	p, bad := parseMailParams(params, c.cfg.MaxMessageBytes, c.offered())
	if bad != nil {
		c.reply(*bad)
		return
	}
	r := c.h.Mail(from, p)
	if !r.Failed() {
		c.mail = true
	}
	c.reply(r)
}

func (c *Conn) rcptCmd(arg string) {
	if !c.mail {
		c.reply(replyBadSequenceMail)
		return
	}
	to, params, err := parsePathArg(arg, "TO:")
	if err != nil {
		c.reply(R(501, "5.5.4", err.Error()))
		return
	}
	if to == "" {
		c.reply(R(501, "5.1.3", "The null address <> is not a recipient"))
		return
	}
	p, bad := parseRcptParams(params, c.offered())
	if bad != nil {
		c.reply(*bad)
		return
	}
	if c.cfg.MaxRecipients > 0 && c.rcpts >= c.cfg.MaxRecipients {
		c.reply(replyTooManyRcpts)
		return
	}
	r := c.h.Rcpt(to, p)
	if !r.Failed() {
		c.rcpts++
	}
	c.reply(r)
}

func (c *Conn) data(arg string) bool {
	switch {
	case arg != "":
		c.reply(R(501, "5.5.4", "Syntax: DATA (no parameters)"))
		return true
	case !c.mail:
		c.reply(replyBadSequenceMail)
		return true
	case c.rcpts == 0:
		c.reply(replyBadSequenceRcpt)
		return true
	}
	c.reply(replyData)
	if !c.flush() {
		return false
	}
	c.growReader()
	c.msg.reset(c.br, true, c.h.LinePolicy(), c.cfg.MaxMessageBytes)
	return c.deliver()
}

// deliver hands the message to the handler, reads what it left and
// answers; false if the connection failed meanwhile.
func (c *Conn) deliver() bool {
	r := c.h.Data(&c.msg)
	if c.msg.bdat && r.Failed() {
		// Refused before the last chunk: this chunk is read and its
		// reply is the refusal; the transaction is over, so any chunk
		// the client pipelined after it is refused as out of sequence.
		c.msg.skipChunk()
	} else {
		c.msg.drain()
	}
	if err := c.msg.srcErr; err != nil {
		c.reset()
		if errors.Is(err, ErrAborted) {
			// RSET, QUIT, HELO or EHLO between chunks: the message is
			// dropped without a reply of its own, then the command runs.
			line := c.pending
			c.pending = ""
			return c.command(line)
		}
		c.readFailed(err)
		return false
	}
	switch {
	case errors.Is(c.msg.err, ErrTooLarge):
		r = replyTooLarge
	case errors.Is(c.msg.err, ErrBareLineEnding) && !r.Failed():
		r = ReplyBareLineEnding
	case c.msg.err != nil && !r.Failed():
		r = replyLocalError
	}
	c.reset()
	c.reply(r)
	return true
}
