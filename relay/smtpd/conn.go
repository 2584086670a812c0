package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
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
	// br is the reader in use: small, the command reader kept for the
	// whole connection, or big while a message is read (see growReader).
	br, small, big *bufio.Reader
	out            []byte // replies not yet written: a PIPELINING group goes out at once
	h              Handler

	remote   netip.AddrPort
	tlsState *tls.ConnectionState
	helo     string
	greeted  bool      // HELO or EHLO accepted
	ext      extension // what the last EHLO advertised (none after HELO)
	authed   bool
	mail     bool
	rcpts    int
	errors   int
	msg      MessageReader
	// chunkSize is the size of the BDAT chunk being read; pending is a
	// command that ended a BDAT transaction, run once it is cleaned up.
	chunkSize int64
	pending   string

	// Shutdown: stopping is set by Server.Shutdown; phase says whether
	// the session waits for the client (see enterIdle).
	stopping atomic.Bool
	phase    atomic.Int32
}

// The phases of a session, for a shutdown that cannot be lost.
const (
	phaseBusy    int32 = iota // running a command, or reading without waiting
	phaseIdle                 // waiting for the client with nothing unsaid
	phaseClosing              // Shutdown took an idle session over: it says 421 and closes
)

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

// saslLineMax is the longest SASL response line (RFC 4954 §4 names
// 12,288 octets as enough for the deployed mechanisms), CRLF excluded.
const saslLineMax = 12288

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
	c.small = c.srv.readers.get(c.nc, c.lineSize())
	c.br = c.small
	defer c.releaseReaders()
	c.h = c.srv.NewHandler(c)
	defer c.h.Close()
	greet := c.h.Connect()
	if greet.Code != 220 {
		// A refusal at the greeting is said, and the connection closed
		// (RFC 5321 §3.1, §4.3.2: 554, or 421 for a temporary one).
		c.reply(connectRefusal(greet))
		c.flush()
		return
	}
	if greet.Text == "" {
		greet.Text = c.cfg.Hostname + " ESMTP ready"
	}
	c.reply(greet)
	for {
		if c.stopping.Load() {
			// A shutdown during the last command (one during a wait
			// for the client is seen in readLine).
			c.reply(replyShutdown)
			c.flush()
			return
		}
		c.shrinkReader()
		line, err := c.readLine(c.lineSize() + saslLineMax)
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

// connectRefusal is the greeting that refuses a client: 421 for a
// temporary refusal and 554 for any other, the only codes RFC 5321
// §4.3.2 allows there, whatever the handler asked for.
func connectRefusal(r Reply) Reply {
	if r.Temporary() {
		r.Code = 421
	} else {
		r.Code = 554
	}
	return r
}

// shutdown asks the session to end: at once if it waits for the client
// (Shutdown itself says 421 and closes the connection, whatever read
// deadline a wrapper of the connection keeps setting), else when the
// command in progress is done.
func (c *Conn) shutdown() {
	c.stopping.Store(true)
	if c.phase.CompareAndSwap(phaseIdle, phaseClosing) {
		go func() {
			c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.nc.Write(replyShutdown.AppendWire(nil))
			c.nc.Close()
		}()
	}
}

var (
	// errShutdown: the server is stopping; the session says 421.
	errShutdown = errors.New("server shutting down")
	// errTakenOver: Shutdown said 421 and closed the connection.
	errTakenOver = errors.New("connection closed by the shutdown")
	// errWriteFailed: the replies could not be written.
	errWriteFailed = errors.New("writing the replies failed")
	// errReplied: a reply that ends the session is queued.
	errReplied = errors.New("closing after the reply")
)

// enterIdle marks the session as waiting for the client. Shutdown sets
// stopping before it looks at the phase, and this sets the phase before
// it looks at stopping, so one of the two always sees the other: a
// shutdown cannot land unseen between the last command and the next read.
func (c *Conn) enterIdle() error {
	c.phase.Store(phaseIdle)
	if c.stopping.Load() && c.phase.CompareAndSwap(phaseIdle, phaseBusy) {
		return errShutdown
	}
	return nil
}

// leaveIdle ends the wait; errTakenOver if Shutdown ended the session.
func (c *Conn) leaveIdle() error {
	if !c.phase.CompareAndSwap(phaseIdle, phaseBusy) {
		return errTakenOver
	}
	return nil
}

// readFailed ends a session whose connection failed or timed out.
func (c *Conn) readFailed(err error) {
	var ne net.Error
	switch {
	case err == errTakenOver || err == errWriteFailed:
		return
	case err == errReplied:
	case c.stopping.Load() || err == errShutdown:
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

// commandBuffered reports whether a whole command line is in the read
// buffer, so reading it cannot wait for the client.
func (c *Conn) commandBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine reads one command line of at most limit bytes without its line
// ending. A bare LF ends a command line too (old telnet clients). Before
// a read that may wait for the client, the replies so far are written
// and the session is idle (see enterIdle).
func (c *Conn) readLine(limit int) (string, error) {
	if !c.commandBuffered() {
		if !c.flush() {
			return "", errWriteFailed
		}
		if err := c.enterIdle(); err != nil {
			return "", err
		}
		line, err := c.readLineBuffered(limit)
		if lerr := c.leaveIdle(); lerr != nil {
			return "", lerr
		}
		return line, err
	}
	return c.readLineBuffered(limit)
}

func (c *Conn) readLineBuffered(limit int) (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// Longer than the buffer: gathered up to limit, then skipped.
		long := append([]byte(nil), b...)
		for err == bufio.ErrBufferFull {
			b, err = c.br.ReadSlice('\n')
			if len(long) <= limit {
				long = append(long, b...)
			}
		}
		b = long
	}
	if err != nil {
		return "", err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if len(b) > limit {
		return "", errLineTooLong
	}
	return string(b), nil
}

// reply queues a reply; it goes out with the next flush.
func (c *Conn) reply(r Reply) {
	if r.Code >= 400 && r.Code != 421 {
		c.errors++
	}
	c.out = r.AppendWire(c.out)
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
	if len(line) > c.lineSize() && cmd.verb != "AUTH" {
		// Only AUTH may carry a SASL response longer than a command.
		c.reply(replyLineTooLong)
		return true
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
	c.mail, c.rcpts = false, 0
	c.h.Reset()
}

// msgBufSize is the read buffer of a message: reads of this size take a
// 100 KiB message in two system calls, against 25 with the command
// reader's 4 KiB.
const msgBufSize = 64 << 10

// growReader switches to a big reader for a message. The big reader reads
// through the command reader: what that holds comes first, and once it is
// empty bufio passes the big reads straight to the connection. The big
// reader stays until it is drained, since commands the client pipelined
// after the message may be in it.
func (c *Conn) growReader() {
	if c.big != nil {
		return
	}
	c.big = c.srv.bigReaders.get(c.small, msgBufSize)
	c.br = c.big
}

// shrinkReader gives the big reader back once it holds nothing; what the
// command reader may still hold is read next, in order.
func (c *Conn) shrinkReader() {
	if c.big == nil || c.big.Buffered() > 0 {
		return
	}
	c.srv.bigReaders.put(c.big)
	c.big, c.br = nil, c.small
}

func (c *Conn) releaseReaders() {
	if c.big != nil {
		c.srv.bigReaders.put(c.big)
		c.big = nil
	}
	c.srv.readers.put(c.small)
	c.small, c.br = nil, nil
}
