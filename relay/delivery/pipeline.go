package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"
)

// pipelined runs a transaction with PIPELINING (RFC 2920): MAIL, every
// RCPT and DATA go out in one write and their replies are read in order,
// so a message costs one round trip before the body instead of 2+n. The
// go-smtp client has no pipelining, so this speaks on the session
// directly; go-smtp keeps the connection for EHLO, AUTH, RSET and QUIT,
// and nothing is left unread between the two.
func (c *Client) pipelined(ctx context.Context, cn *conn, m Message, results []Result, pending []int, utf8 bool) bool {
	remote := cn.addr
	cmd, dsn := envelopeCommands(cn, m, pending, utf8)
	cmd.WriteString("DATA\r\n")

	cn.raw.SetDeadline(time.Now().Add(c.opts.CommandTimeout))
	defer cn.raw.SetDeadline(time.Time{})
	accepted, mailCode, done, reuse := sendEnvelope(ctx, cn, []byte(cmd.String()), nil, results, pending)
	if done {
		return reuse
	}
	dc, dmsg, err := cn.readReply()
	if err != nil && dc == 0 {
		return failed(ctx, results, accepted, err, remote, "DATA")
	}
	if mailCode == 421 || dc == 421 {
		if len(accepted) > 0 {
			setReply(results, accepted, dc, dmsg, remote)
		}
		return false
	}
	if dc != 354 {
		if len(accepted) > 0 {
			setReply(results, accepted, dc, dmsg, remote)
		}
		return cn.reset() == nil
	}
	if len(accepted) == 0 {
		// A server that says 354 with no recipient accepted (RFC 2920
		// §3.1 says it must not) gets an empty message it will refuse.
		cn.session.Write([]byte(".\r\n"))
		cn.readReply()
		return cn.reset() == nil
	}

	body, err := m.Body()
	if err != nil {
		setAll(results, accepted, 0, "", fmt.Sprintf("opening the message: %v", err), true, "")
		return false // DATA is open: the session cannot be reused
	}
	defer body.Close()
	b := cn.buffers()
	if b.bw == nil {
		b.bw = bufio.NewWriterSize(cn.session, bodyBufSize)
	} else {
		b.bw.Reset(cn.session)
	}
	bw := b.bw
	readErr, writeErr := c.sendBody(cn, bw, body, true)
	if readErr != nil {
		setAll(results, accepted, 0, "", fmt.Sprintf("reading the message: %v", readErr), true, "")
		return false
	}
	if writeErr == nil {
		cn.raw.SetWriteDeadline(time.Now().Add(c.opts.DataTimeout))
		if _, writeErr = bw.WriteString(".\r\n"); writeErr == nil {
			writeErr = bw.Flush()
		}
	}
	if writeErr != nil {
		failed(ctx, results, accepted, writeErr, remote, "sending the message")
		return false
	}
	cn.raw.SetReadDeadline(time.Now().Add(c.opts.DataTimeout))
	fc, fmsg, err := cn.readReply()
	if err != nil && fc == 0 {
		return failed(ctx, results, accepted, err, remote, "end of data")
	}
	if fc/100 != 2 {
		setReply(results, accepted, fc, fmsg, remote)
		return fc != 421
	}
	delivered(m, results, accepted, fc, fmsg, remote, dsn)
	return true
}

// envelopeCommands writes MAIL and one RCPT per pending recipient, with
// the parameters the server offers. dsn says whether DSN's were added.
func envelopeCommands(cn *conn, m Message, pending []int, utf8 bool) (cmd *strings.Builder, dsn bool) {
	cmd = new(strings.Builder)
	fmt.Fprintf(cmd, "MAIL FROM:<%s>", wireAddress(m.From))
	if ok, _ := cn.sc.Extension("8BITMIME"); ok && m.EightBit {
		cmd.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := cn.sc.Extension("SIZE"); ok && m.Size > 0 {
		fmt.Fprintf(cmd, " SIZE=%d", m.Size)
	}
	if utf8 {
		cmd.WriteString(" SMTPUTF8")
	}
	dsn, _ = cn.sc.Extension("DSN")
	if dsn {
		dsnMailParams(cmd, m)
	}
	cmd.WriteString("\r\n")
	for _, i := range pending {
		fmt.Fprintf(cmd, "RCPT TO:<%s>", wireAddress(m.Rcpts[i]))
		if dsn {
			dsnRcptParams(cmd, m, i)
		}
		cmd.WriteString("\r\n")
	}
	return cmd, dsn
}

// sendEnvelope writes a pipelined group that opens with MAIL and its
// RCPTs (with fs, the file's bytes of its last chunk after it), reads the replies to them and settles every recipient refused.
// It returns the accepted ones and the MAIL reply code. done says the
// session failed meanwhile: the results are settled (or the connection is
// stale, see transact) and reuse says whether the connection can serve
// again. The replies to what the group holds after the RCPTs are the
// caller's to read.
func sendEnvelope(ctx context.Context, cn *conn, group []byte, fs *fileStretch, results []Result, pending []int) (accepted []int, mailCode int, done, reuse bool) {
	remote := cn.addr
	err := cn.writeGroup(group, fs)
	if se := (*storedError)(nil); errors.As(err, &se) {
		// The next hop has part of a chunk: the connection cannot go on.
		setAll(results, pending, 0, "", "reading the message: "+se.Error(), true, "")
		return nil, 0, true, false
	}
	var code int
	var msg string
	if err == nil {
		code, msg, err = cn.readReply()
	}
	if err != nil && code == 0 {
		if cn.unprobed && ctx.Err() == nil {
			cn.stale = true
			return nil, 0, true, false
		}
		return nil, 0, true, failed(ctx, results, pending, err, remote, "MAIL FROM")
	}
	mailOK := code/100 == 2
	if !mailOK {
		setReply(results, pending, code, msg, remote)
	}
	for n, i := range pending {
		rc, rmsg, err := cn.readReply()
		if err != nil && rc == 0 {
			// The session is gone. Recipients already refused keep their
			// replies (a 5xx must bounce, not be retried); the accepted
			// ones and those not answered yet are unsettled. After a
			// refused MAIL its reply stands for every recipient.
			var unsettled []int
			if mailOK {
				unsettled = append(accepted, pending[n:]...)
			}
			return nil, code, true, failed(ctx, results, unsettled, err, remote, "RCPT TO")
		}
		switch {
		case !mailOK: // the MAIL reply stands for every recipient
		case rc/100 == 2:
			accepted = append(accepted, i)
		default:
			setReply(results, []int{i}, rc, rmsg, remote)
		}
	}
	return accepted, code, false, false
}

// readReply reads one reply on the session, past go-smtp.
func (cn *conn) readReply() (int, string, error) {
	if cn.tp == nil {
		cn.tp = textproto.NewReader(bufio.NewReader(cn.session))
	}
	return cn.tp.ReadResponse(0)
}

// delivered settles the accepted recipients with the final reply.
func delivered(m Message, results []Result, accepted []int, code int, msg, remote string, dsn bool) {
	enhanced, text := splitEnhanced(msg, "2.0.0")
	for _, i := range accepted {
		results[i] = Result{Rcpt: m.Rcpts[i], Code: code, Enhanced: enhanced, Text: text, Delivered: true, Remote: remote, DSN: dsn}
	}
}

// setReply settles idx with a server reply.
func setReply(results []Result, idx []int, code int, msg, remote string) {
	def := ""
	switch code / 100 {
	case 2, 4, 5:
		def = fmt.Sprintf("%d.0.0", code/100)
	}
	enhanced, text := splitEnhanced(msg, def)
	for _, i := range idx {
		results[i] = Result{Rcpt: results[i].Rcpt, Code: code, Enhanced: enhanced, Text: text,
			Temporary: code/100 != 5, Remote: remote}
	}
}
