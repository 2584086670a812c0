package smtpd

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

func (c *Conn) startTLS(arg string) bool {
	switch {
	case arg != "":
		c.reply(R(501, "5.5.4", "Syntax: STARTTLS (no parameters)"))
		return true
	case c.tlsState != nil:
		c.reply(replyAlreadyTLS)
		return true
	case c.cfg.TLS == nil:
		c.reply(replyNoTLS)
		return true
	case !c.greeted:
		c.reply(replyBadSequenceHelo)
		return true
	case c.mail:
		c.reply(replyInTransaction)
		return true
	}
	c.reply(replyStartTLS)
	if !c.flush() {
		return false
	}
	// Whatever the client sent after STARTTLS and before the handshake
	// is dropped (the command injection of CVE-2011-0411).
	tc := tls.Server(c.raw, c.cfg.TLS)
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.raw, c.nc, c.tlsState = tc, c.traced(tc), &st
	if c.big != nil {
		c.srv.bigReaders.put(c.big)
		c.big = nil
	}
	c.small.Reset(c.nc)
	c.br = c.small
	c.reset()
	c.helo, c.greeted = "", false
	return true
}

func (c *Conn) auth(arg string) bool {
	mech, initial, hasInitial := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	switch {
	case !c.greeted:
		c.reply(replyBadSequenceHelo)
		return true
	case c.authed:
		c.reply(replyAlreadyAuth)
		return true
	case c.mail:
		c.reply(replyInTransaction)
		return true
	case mech == "":
		c.reply(R(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"))
		return true
	}
	// The handler decides whether AUTH is offered on this connection
	// (TLS, the listener, the configuration): with no mechanism offered,
	// Auth gives its refusal (523 5.7.10 before STARTTLS, say).
	mechs := c.h.AuthMechanisms()
	offered := false
	for _, m := range mechs {
		offered = offered || strings.EqualFold(m, mech)
	}
	if len(mechs) > 0 && !offered {
		c.reply(replyBadMech)
		return true
	}
	srv, err := c.h.Auth(mech)
	if err != nil {
		c.reply(replyOf(err))
		return true
	}
	if len(mechs) == 0 {
		c.reply(replyNoAuth)
		return true
	}
	var resp []byte
	if hasInitial {
		if initial != "=" {
			if resp, err = base64.StdEncoding.DecodeString(initial); err != nil {
				c.reply(replyAuthBase64)
				return true
			}
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			c.reply(replyOf(err))
			return true
		}
		if done {
			c.authed = true
			c.reply(replyAuthOK)
			return true
		}
		c.out = append(c.out, "334 "...)
		c.out = base64.StdEncoding.AppendEncode(c.out, challenge)
		c.out = append(c.out, '\r', '\n')
		if !c.flush() {
			return false
		}
		line, err := c.readLine(saslLineMax)
		if err == errLineTooLong {
			c.reply(replyLineTooLong)
			return true
		}
		if err != nil {
			c.readFailed(err)
			return false
		}
		if line == "*" {
			c.reply(replyAuthCancel)
			return true
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			c.reply(replyAuthBase64)
			return true
		}
	}
}

// replyOf turns an error from the handler into a reply: its own if it is
// one, a temporary failure otherwise.
func replyOf(err error) Reply {
	var r *Reply
	if errors.As(err, &r) {
		return *r
	}
	return replyAuthFailed
}
