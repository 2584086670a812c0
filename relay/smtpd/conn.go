package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Conn is one client connection and its protocol state. Handlers read
// the client's address, TLS state and HELO name from it.
type Conn struct {
	srv *Server
	cfg *Config  // as it was when the connection was accepted
	nc  net.Conn // raw, or raw wrapped for the trace
	raw net.Conn // the connection itself (TCP, or TLS over it)
	// wrap wraps a connection for the live trace; nil without a Tracer.
	wrap func(net.Conn) net.Conn
	br   *bufio.Reader
	out  []byte // replies not yet written: a PIPELINING group goes out at once
	h    Handler

	remote   netip.AddrPort
	tlsState *tls.ConnectionState
	helo     string
	greeted  bool // HELO or EHLO accepted
	refused  bool // the greeting refused the client: only QUIT
	authed   bool
	mail     bool
	rcpts    int
	bdat     *bytes.Buffer // BDAT chunks so far; nil outside BDAT
	bdatBig  bool          // BDAT chunks passed the size limit
	errors   int
	msg      MessageReader
	stopping atomic.Bool
	idle     atomic.Bool
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{srv: s, cfg: s.config(), nc: nc, raw: nc}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if s.Trace != nil {
		c.wrap = s.Trace.Inbound(c.remote, c.traceID)
		c.nc = c.wrap(nc)
	}
	return c
}

// RemoteAddr is the client's address (IPv4-mapped addresses unmapped).
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// TLS reports whether the connection is encrypted, and how.
func (c *Conn) TLS() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// IsTLS reports whether the connection is encrypted.
func (c *Conn) IsTLS() bool { return c.tlsState != nil }

// Hostname is the name the client gave in HELO or EHLO ("" for none).
func (c *Conn) Hostname() string { return c.helo }

// Authenticated reports a successful AUTH on this connection.
func (c *Conn) Authenticated() bool { return c.authed }

// lineSize is the command reader's buffer: the longest command line.
func (c *Conn) lineSize() int { return max(c.cfg.MaxLineLength, 512) }

func (c *Conn) serve() {
	defer c.srv.untrack(c)
	defer c.nc.Close()
	if c.cfg.ImplicitTLS {
		if tc, ok := c.raw.(*tls.Conn); ok {
			tc.SetDeadline(time.Now().Add(30 * time.Second))
			err := tc.Handshake()
			tc.SetDeadline(time.Time{})
			if err != nil {
				return
			}
			st := tc.ConnectionState()
			c.tlsState = &st
		}
	}
	c.br = c.srv.getReader(c.nc, c.lineSize())
	defer c.srv.putReader(c.br)
	c.h = c.srv.NewHandler(c)
	defer c.h.Close()
	greet := c.h.Connect()
	if greet.Code == 220 {
		if greet.Text == "" {
			greet.Text = c.cfg.Hostname + " ESMTP ready"
		}
	} else {
		c.refused = true
	}
	c.reply(greet)
	for {
		if c.br.Buffered() == 0 && !c.flush() {
			return
		}
		if c.stopping.Load() {
			c.reply(replyShutdown)
			c.flush()
			return
		}
		line, err := c.readLine()
		if err == errLineTooLong {
			c.reply(replyLineTooLong)
			continue
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.command(line) {
			c.flush()
			return
		}
		if c.cfg.ErrorLimit > 0 && c.errors >= c.cfg.ErrorLimit {
			c.reply(replyTooManyErrors)
			c.flush()
			return
		}
	}
}

func (c *Conn) shutdown() {
	c.stopping.Store(true)
	if c.idle.Load() {
		c.nc.SetReadDeadline(time.Now())
	}
}

// readFailed ends a session whose connection failed or timed out.
func (c *Conn) readFailed(err error) {
	var ne net.Error
	switch {
	case c.stopping.Load():
		c.reply(replyShutdown)
	case errors.As(err, &ne) && ne.Timeout():
		c.reply(replyTimeout)
	default:
		return
	}
	c.flush()
}

// errLineTooLong is returned for a command line over the limit; the rest
// of the line has been discarded.
var errLineTooLong = errors.New("line too long")

// readLine reads one command line without its line ending. A bare LF
// ends a command line too (old telnet clients).
func (c *Conn) readLine() (string, error) {
	c.idle.Store(true)
	defer c.idle.Store(false)
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = c.br.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

// reply queues a reply; it goes out with the next flush.
func (c *Conn) reply(r Reply) {
	if r.Code >= 400 && r.Code != 421 {
		c.errors++
	}
	c.out = r.appendTo(c.out)
}

// flush writes the queued replies in one write; false if it failed.
func (c *Conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	if c.cfg.WriteTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err == nil
}

// command runs one command line; false ends the session.
func (c *Conn) command(line string) bool {
	if strings.IndexByte(line, 0) >= 0 || strings.IndexByte(line, '\r') >= 0 {
		c.reply(replyBadChars)
		return true
	}
	cmd := parseCommand(line)
	if c.refused && cmd.verb != "QUIT" {
		c.reply(R(503, "5.7.1", "Bad sequence of commands: the connection was refused; send QUIT"))
		return true
	}
	if c.bdat != nil {
		switch cmd.verb {
		case "BDAT", "RSET", "NOOP", "QUIT", "HELO", "EHLO":
		default:
			c.reply(replyBDATMixed)
			return true
		}
	}
	switch cmd.verb {
	case "HELO", "EHLO":
		c.hello(cmd.arg, cmd.verb == "EHLO")
	case "STARTTLS":
		return c.startTLS(cmd.arg)
	case "AUTH":
		return c.auth(cmd.arg)
	case "MAIL":
		c.mailCmd(cmd.arg)
	case "RCPT":
		c.rcptCmd(cmd.arg)
	case "DATA":
		return c.data(cmd.arg)
	case "BDAT":
		return c.bdatCmd(cmd.arg)
	case "RSET":
		c.reset()
		c.reply(replyReset)
	case "NOOP":
		c.reply(replyNoop)
	case "VRFY":
		c.reply(replyVRFY)
	case "HELP":
		c.reply(R(214, "2.0.0", "See RFC 5321; commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT"))
	case "QUIT":
		c.reply(R(221, "2.0.0", c.cfg.Hostname+" closing connection"))
		return false
	case "EXPN", "TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML":
		c.reply(replyNotImplemented)
	default:
		c.reply(replyUnknown)
	}
	return true
}

// reset ends the transaction, here and in the handler.
func (c *Conn) reset() {
	c.mail, c.rcpts, c.bdat, c.bdatBig = false, 0, nil, false
	c.h.Reset()
}

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
	c.helo, c.greeted = name, true
	greeting := c.cfg.Hostname
	if r.Text != "" {
		greeting += " " + r.Text
	}
	if !extended {
		c.reply(R(250, "", greeting))
		return
	}
	ext := []string{greeting, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"}
	if c.cfg.TLS != nil && c.tlsState == nil {
		ext = append(ext, "STARTTLS")
	}
	if !c.authed {
		if mechs := c.h.AuthMechanisms(); len(mechs) > 0 {
			ext = append(ext, "AUTH "+strings.Join(mechs, " "))
		}
	}
	if c.cfg.SMTPUTF8 {
		ext = append(ext, "SMTPUTF8")
	}
	if c.cfg.DSN {
		ext = append(ext, "DSN")
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
	p, bad := parseMailParams(params, c.cfg.MaxMessageBytes)
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
	p, bad := parseRcptParams(params)
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
	c.msg.reset(c.br, true, c.h.LinePolicy(), c.cfg.MaxMessageBytes)
	return c.deliver()
}

// deliver hands the message to the handler, reads what it left and
// answers; false if the connection failed meanwhile.
func (c *Conn) deliver() bool {
	r := c.h.Data(&c.msg)
	c.msg.drain()
	if err := c.msg.srcErr; err != nil {
		c.reset()
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
