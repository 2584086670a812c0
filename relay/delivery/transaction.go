package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// bodyBufSize is the chunk read from Message.Body per write.
const bodyBufSize = 64 << 10

// transact runs one mail transaction on cn and settles results[i] for every
// i in pending. It reports whether cn can be reused.
func (c *Client) transact(ctx context.Context, cn *conn, m Message, results []Result, pending []int) bool {
	sc, remote := cn.sc, cn.addr

	if m.EightBit {
		if ok, _ := sc.Extension("8BITMIME"); !ok {
			setAll(results, pending, 554, "5.6.3", fmt.Sprintf("the message has 8-bit content and %s does not offer 8BITMIME (no conversion to 7-bit is done)", remote), false, remote)
			return true
		}
	}
	utf8 := needsUTF8(m)
	if utf8 {
		if ok, _ := sc.Extension("SMTPUTF8"); !ok {
			setAll(results, pending, 553, "5.6.7", fmt.Sprintf("the message needs SMTPUTF8 and %s does not offer it", remote), false, remote)
			return true
		}
	}
	if limit, ok := sc.MaxMessageSize(); ok && limit > 0 && m.Size > int64(limit) {
		setAll(results, pending, 552, "5.3.4", fmt.Sprintf("the message of %d bytes exceeds the %d-byte SIZE limit of %s", m.Size, limit, remote), false, remote)
		return true
	}

	if ok, _ := sc.Extension("PIPELINING"); ok {
		if chunking, _ := sc.Extension("CHUNKING"); chunking && !c.opts.NoChunking {
			return c.chunked(ctx, cn, m, results, pending, utf8)
		}
		return c.pipelined(ctx, cn, m, results, pending, utf8)
	}
	ret, envID := dsnMail(m)
	if err := sc.Mail(wireAddress(m.From), &smtp.MailOptions{Size: m.Size, UTF8: utf8, Return: ret, EnvelopeID: envID}); err != nil {
		var se *smtp.SMTPError
		if cn.unprobed && !errors.As(err, &se) && ctx.Err() == nil {
			// The next hop closed the idle connection meanwhile: nothing
			// was said about this message yet, so Deliver tries again.
			cn.stale = true
			return false
		}
		return failed(ctx, results, pending, err, remote, "MAIL FROM")
	}
	var accepted []int
	for n, i := range pending {
		err := sc.Rcpt(wireAddress(m.Rcpts[i]), dsnRcpt(m, i))
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code != 421 {
			results[i] = replyResult(m.Rcpts[i], se, remote)
			continue
		}
		// The session is gone: this recipient, the ones after it and the
		// ones already accepted are all unsettled.
		failed(ctx, results, append(accepted, pending[n:]...), err, remote, "RCPT TO")
		return false
	}
	if len(accepted) == 0 {
		return cn.reset() == nil
	}

	body, err := m.Body()
	if err != nil {
		setAll(results, accepted, 0, "", fmt.Sprintf("opening the message: %v", err), true, "")
		return cn.reset() == nil
	}
	defer body.Close()
	w, err := sc.Data()
	if err != nil {
		return failed(ctx, results, accepted, err, remote, "DATA") && cn.reset() == nil
	}
	readErr, writeErr := c.sendBody(cn, w, body, false)
	if readErr != nil {
		// Closing without the final dot is the only way to abort DATA: the
		// next hop discards the partial message.
		setAll(results, accepted, 0, "", fmt.Sprintf("reading the message: %v", readErr), true, "")
		return false
	}
	if writeErr != nil {
		failed(ctx, results, accepted, writeErr, remote, "sending the message")
		return false
	}
	cn.raw.SetWriteDeadline(time.Now().Add(c.opts.DataTimeout))
	resp, err := w.CloseWithResponse()
	if err != nil {
		return failed(ctx, results, accepted, err, remote, "end of data")
	}
	enhanced, text := splitEnhanced(resp.StatusText, "2.0.0")
	dsn, _ := sc.Extension("DSN")
	for _, i := range accepted {
		results[i] = Result{Rcpt: m.Rcpts[i], Code: 250, Enhanced: enhanced, Text: text, Delivered: true, Remote: remote, DSN: dsn}
	}
	return true
}

// sendBody writes the message to w under the line-ending rule of
// smtpd.TextEncoder, the one the server reads with (dots: stuffed
// for our own DATA; go-smtp's DATA writer stuffs them itself), up to and
// including its last line end. It tells a failure to read the message
// apart from a failure to send it.
func (c *Client) sendBody(cn *conn, w io.Writer, body io.Reader, dots bool) (readErr, writeErr error) {
	out := &deadlineWriter{conn: cn.raw, timeout: c.opts.DataTimeout, w: w}
	b := cn.buffers()
	enc := smtpd.TextEncoder{Dots: dots}
	for {
		n, err := body.Read(b.body)
		if n > 0 {
			b.wire = enc.Append(b.wire[:0], b.body[:n])
			if _, werr := out.Write(b.wire); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			b.wire = enc.End(b.wire[:0])
			if len(b.wire) > 0 {
				if _, werr := out.Write(b.wire); werr != nil {
					return nil, werr
				}
			}
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// failed settles idx after err at stage and reports whether the session
// survived: a server reply other than 421 leaves it usable.
func failed(ctx context.Context, results []Result, idx []int, err error, remote, stage string) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		for _, i := range idx {
			results[i] = replyResult(results[i].Rcpt, se, remote)
		}
		return se.Code != 421
	}
	text := fmt.Sprintf("%s at %s: %s", stage, remote, describe(err))
	if ctx.Err() != nil {
		text = fmt.Sprintf("delivery to %s canceled during %s: %v", remote, stage, ctx.Err())
	}
	setAll(results, idx, 0, "", text, true, remote)
	return false
}

func replyResult(rcpt string, se *smtp.SMTPError, remote string) Result {
	return Result{
		Rcpt:      rcpt,
		Code:      se.Code,
		Enhanced:  enhancedOf(se),
		Text:      oneLine(se.Message),
		Temporary: se.Code/100 != 5,
		Remote:    remote,
	}
}

// splitEnhanced separates a leading enhanced status code from reply text.
func splitEnhanced(msg, def string) (enhanced, text string) {
	msg = oneLine(msg)
	first, rest, _ := strings.Cut(msg, " ")
	parts := strings.Split(first, ".")
	if len(parts) == 3 && len(parts[0]) == 1 && strings.Trim(first, "0123456789.") == "" {
		return first, rest
	}
	return def, msg
}

// deadlineWriter gives every write of the body its own deadline: a stall
// timeout, because go-smtp writes the body with no deadline at all.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	w       io.Writer
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}
