package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// maxSetupBytes bounds what a server may send before the session is handed
// to go-smtp (greeting, EHLO reply, STARTTLS reply).
const maxSetupBytes = 64 << 10

// tlsError is a STARTTLS failure that opportunistic TLS recovers from by
// redialing in plain text.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// dial opens a session with one address, falling back to plain text when
// opportunistic STARTTLS fails: the failed handshake leaves the connection
// unusable, so the fallback is a new connection that skips STARTTLS.
func (c *Client) dial(ctx context.Context, p *pool, t Target, addr string) (*conn, error) {
	cn, err := c.open(ctx, p, t, addr, t.TLS.Mode)
	var te *tlsError
	if err != nil && t.TLS.Mode == TLSOpportunistic && errors.As(err, &te) && ctx.Err() == nil {
		cn, err = c.open(ctx, p, t, addr, TLSNone)
		if err != nil {
			return nil, fmt.Errorf("%v; in plain text: %w", te, err)
		}
	}
	return cn, err
}

// open connects to addr and sets up a session: greeting, EHLO, STARTTLS per
// mode, AUTH per t.Auth.
func (c *Client) open(ctx context.Context, p *pool, t Target, addr string, mode TLSMode) (*conn, error) {
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: canceled: %v", addr, ctx.Err())
		}
		return nil, fmt.Errorf("connect to %s: %s", addr, describe(err))
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cn, err := c.setup(ctx, raw, p, t, addr, mode)
	if !stop() && err == nil {
		err = errors.New("canceled")
	}
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("session with %s canceled: %v", addr, ctx.Err())
		}
		return nil, err
	}
	return cn, nil
}

func (c *Client) setup(ctx context.Context, raw net.Conn, p *pool, t Target, addr string, mode TLSMode) (*conn, error) {
	helo := t.HeloName
	if helo == "" {
		helo = c.opts.HeloName
	}
	raw.SetDeadline(time.Now().Add(c.opts.CommandTimeout))
	// The trace reads the plain exchange through plain and, after
	// STARTTLS, the TLS session; the handshake itself goes over raw.
	wrap := c.tracer(t.Host, addr)
	plain := wrap(raw)
	br := bufio.NewReader(io.LimitReader(plain, maxSetupBytes))
	tp := textproto.NewReader(br)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("greeting from %s: %s", addr, describe(err))
	}

	// go-smtp's own STARTTLS path says "EHLO localhost", which some relays
	// refuse, so the exchange up to the handshake is done here.
	session, secure := plain, false
	replay := "220 " + addr + " session ready\r\n"
	var ehlo []byte // the EHLO reply go-smtp is to be given
	if mode != TLSNone {
		offered, reply, err := probeEHLO(plain, tp, helo)
		if err != nil {
			return nil, fmt.Errorf("EHLO to %s: %s", addr, describe(err))
		}
		ehlo = reply
		if !offered && mode == TLSRequired {
			return nil, fmt.Errorf("%s does not offer STARTTLS and TLS is required", addr)
		}
		if offered {
			if _, err := fmt.Fprintf(plain, "STARTTLS\r\n"); err != nil {
				return nil, fmt.Errorf("STARTTLS at %s: %s", addr, describe(err))
			}
			if _, _, err := tp.ReadResponse(220); err != nil {
				return nil, &tlsError{fmt.Errorf("STARTTLS at %s: %s", addr, describe(err))}
			}
			// Anything already buffered was sent before the handshake and
			// must not be read as if it came over TLS (CVE-2011-0411).
			if br.Buffered() > 0 {
				return nil, &tlsError{fmt.Errorf("%s sent data after its STARTTLS reply", addr)}
			}
			tc := tls.Client(raw, p.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, &tlsError{fmt.Errorf("TLS handshake with %s: %v", addr, err)}
			}
			session, secure, ehlo = wrap(tc), true, nil
		}
	}
	if br.Buffered() > 0 {
		return nil, fmt.Errorf("%s sent data out of turn", addr)
	}
	raw.SetDeadline(time.Time{})

	// go-smtp reads the greeting itself; it gets a copy, then says EHLO
	// with our name: after STARTTLS, or with TLS none, on the wire; when
	// the probe's EHLO found no STARTTLS, its reply is handed over and
	// go-smtp's EHLO is not sent (one EHLO per connection).
	gc := &greetedConn{Conn: session, pending: []byte(replay)}
	if ehlo != nil {
		gc.pending = append(gc.pending, ehlo...)
		gc.swallow = true
	}
	sc := smtp.NewClient(gc)
	sc.CommandTimeout = c.opts.CommandTimeout
	sc.SubmissionTimeout = c.opts.DataTimeout
	if err := sc.Hello(helo); err != nil {
		return nil, fmt.Errorf("EHLO to %s: %s", addr, describe(err))
	}
	if gc.swallow {
		return nil, fmt.Errorf("EHLO to %s: internal error: the SMTP client library did not send the EHLO we answered for it; please report this", addr)
	}
	cn := &conn{raw: raw, session: session, sc: sc, addr: addr, helo: helo, secure: secure}
	if t.Auth != nil {
		if err := authenticate(cn, t.Auth); err != nil {
			return nil, err
		}
	}
	return cn, nil
}

// probeEHLO sends EHLO and reports whether STARTTLS is offered, with the
// reply as it came, for go-smtp when the session stays in plain text. A
// server that refuses EHLO (500/502, no ESMTP) offers nothing; go-smtp
// then says HELO.
func probeEHLO(raw net.Conn, tp *textproto.Reader, helo string) (offered bool, reply []byte, err error) {
	if _, err := fmt.Fprintf(raw, "EHLO %s\r\n", helo); err != nil {
		return false, nil, err
	}
	code, msg, err := tp.ReadResponse(250)
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && (te.Code == 500 || te.Code == 502) {
			return false, smtpd.Reply{Code: te.Code, Text: te.Msg}.AppendWire(nil), nil
		}
		return false, nil, err
	}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			return true, nil, nil
		}
	}
	// textproto read the reply: it goes on as it was sent.
	return false, smtpd.Reply{Code: code, Text: msg}.AppendWire(nil), nil
}

// authenticate logs in with PLAIN or LOGIN, only over TLS unless the
// target allows plain text.
func authenticate(cn *conn, a *Auth) error {
	mech := Mechanism(strings.ToUpper(string(a.Mechanism)))
	if !cn.secure && !a.AllowPlaintext {
		return fmt.Errorf("not sending AUTH %s credentials to %s without TLS", mech, cn.addr)
	}
	if !cn.sc.SupportsAuth(string(mech)) {
		return fmt.Errorf("%s does not offer AUTH %s", cn.addr, mech)
	}
	var client sasl.Client
	if mech == MechLogin {
		client = sasl.NewLoginClient(a.Username, a.Password)
	} else {
		client = sasl.NewPlainClient("", a.Username, a.Password)
	}
	if err := cn.sc.Auth(client); err != nil {
		return fmt.Errorf("AUTH %s as %q at %s: %s", mech, a.Username, cn.addr, describe(err))
	}
	return nil
}

// greetedConn replays what setup already read (the greeting and, with
// swallow, the reply to the probe's EHLO), so go-smtp can start its own
// session on the connection; with swallow, go-smtp's EHLO is not sent,
// as its reply is the one replayed.
type greetedConn struct {
	net.Conn
	pending []byte
	swallow bool
}

func (g *greetedConn) Read(b []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(b, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

func (g *greetedConn) Write(b []byte) (int, error) {
	if g.swallow && bytes.HasPrefix(b, []byte("EHLO ")) && bytes.HasSuffix(b, []byte("\r\n")) {
		g.swallow = false
		return len(b), nil
	}
	return g.Conn.Write(b)
}

// describe turns an error from the wire into a short text for results and
// logs: the reply for SMTP errors, the cause for network errors.
func describe(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if e := se.EnhancedCode; e != smtp.EnhancedCodeNotSet && e != smtp.NoEnhancedCode {
			return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], oneLine(se.Message))
		}
		return fmt.Sprintf("%d %s", se.Code, oneLine(se.Message))
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Sprintf("%d %s", te.Code, oneLine(te.Msg))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by the server"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, net.ErrClosed) {
		return "connection closed"
	}
	return err.Error()
}

// enhancedOf returns the reply's enhanced code, or the class default
// ("5.0.0") when the server sent none.
func enhancedOf(se *smtp.SMTPError) string {
	e := se.EnhancedCode
	if e != smtp.EnhancedCodeNotSet && e != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
	}
	switch se.Code / 100 {
	case 2, 4, 5:
		return fmt.Sprintf("%d.0.0", se.Code/100)
	}
	return ""
}
