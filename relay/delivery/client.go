// Package delivery is the SMTP client side of the gateway: it hands one
// message to one next hop over pooled connections, with STARTTLS per the
// hop's policy, SMTP AUTH, and a result for every recipient.
//
// It is built on the go-smtp client and works around its gaps: the
// pre-TLS EHLO is sent by hand with our own name instead of go-smtp's
// "EHLO localhost"; the body write gets an explicit deadline per write
// (go-smtp leaves it without one); cancellation of
// the context closes the connection; local parts are re-quoted for MAIL and
// RCPT; bare CR in the body is completed to CRLF so that the dot-stuffing in
// go-smtp's writer covers every line (no "\r.\r" reaches the wire).
//
// PIPELINING is spoken by hand (the go-smtp client does not pipeline).
// DSN parameters (RET, ENVID, NOTIFY, ORCPT) are passed on to a next hop
// that offers DSN. Not implemented: conversion of 8-bit bodies to 7-bit
// (such messages fail with 554 5.6.3 at a next hop without 8BITMIME).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Options configure a Client. Zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// HeloName is the name sent in EHLO. Empty: the machine's host name.
	HeloName string
	// DialTimeout bounds the TCP connect to one address.
	DialTimeout time.Duration
	// CommandTimeout bounds the greeting, the TLS handshake and the reply to
	// each command (RFC 5321 §4.5.3.2 suggests 5 minutes).
	CommandTimeout time.Duration
	// DataTimeout bounds each write of the message body (a stall timeout,
	// not a total) and the wait for the reply after the final dot.
	DataTimeout time.Duration
	// IdleTimeout is how long an unused connection stays open for reuse.
	IdleTimeout time.Duration
	// MaxConnsPerTarget caps the open connections (busy or idle) per
	// target; Deliver waits for a free one.
	MaxConnsPerTarget int
	// NoChunking sends every message with DATA. By default a next hop
	// that offers PIPELINING and CHUNKING gets BDAT (RFC 3030): the
	// commands and the message in one write.
	NoChunking bool
	// Trace, if set, sees the wire of every session (sekisho trace).
	Trace Tracer
}

// Validate reports options NewClient cannot use. Zero durations and
// limits are not errors: they take the defaults.
func (o Options) Validate() error {
	if o.HeloName != "" {
		if err := checkName(o.HeloName); err != nil {
			return fmt.Errorf("helo_name: %w", err)
		}
	}
	return nil
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		DialTimeout:       30 * time.Second,
		CommandTimeout:    5 * time.Minute,
		DataTimeout:       10 * time.Minute,
		IdleTimeout:       30 * time.Second,
		MaxConnsPerTarget: 10,
	}
}

// Message is one message to deliver to the recipients of one next hop.
type Message struct {
	// From is the envelope sender, unquoted as go-smtp's server hands it
	// over; "" is the null sender "<>".
	From  string
	Rcpts []string
	// Size in bytes, announced with SIZE= and checked against the server's
	// SIZE limit before sending.
	Size int64
	// EightBit marks a body that is not 7-bit clean (BODY=8BITMIME).
	EightBit bool
	// SMTPUTF8 marks a message that needs SMTPUTF8. Non-ASCII envelope
	// addresses imply it.
	SMTPUTF8 bool
	// Body opens the message (header and body, CRLF line ends). It is called
	// at most once per transaction: with DATA after a recipient was
	// accepted, with BDAT before the replies (the first chunk travels with
	// the commands). A retry on a fresh connection calls it again.
	Body func() (io.ReadCloser, error)
	// Ret and EnvID are the RFC 3461 RET and ENVID of the message, and
	// RcptDSN (parallel to Rcpts, or nil) the recipients' NOTIFY and ORCPT:
	// passed on when the next hop offers DSN, dropped when it does not
	// (Result.DSN tells which).
	Ret, EnvID string
	RcptDSN    []RcptDSN
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt string
	// Code is the SMTP reply code; 0 when no server reply applies
	// (connection failure, timeout, local error).
	Code int
	// Enhanced is the enhanced status code, "5.1.1". When the server gave
	// none it is derived from Code ("5.0.0"); empty when Code is 0.
	Enhanced string
	// Text is the server's reply text (without the codes), or for Code 0
	// our own description of the failure.
	Text string
	// Temporary failures should be retried; permanent ones bounced.
	Temporary bool
	// Delivered is true when the next hop accepted the message for Rcpt.
	Delivered bool
	// Remote is the "ip:port" of the server that gave the reply; empty
	// when no server was reached.
	Remote string
	// DSN is true when the next hop offered DSN and took the recipient
	// with its NOTIFY and ORCPT: notifications are its business from now
	// on. When false, a success the sender asked to hear of (NOTIFY=SUCCESS)
	// is reported by the gateway as "relayed" (RFC 3461 §4.2).
	DSN bool
}

// Client delivers messages over pooled connections. It is safe for
// concurrent use.
type Client struct {
	opts    Options
	optsErr error // from Options.Validate, returned by every Deliver

	mu     sync.Mutex
	pools  map[string]*pool
	closed bool

	stop    chan struct{}
	workers sync.WaitGroup
}

// NewClient returns a client; call Close to release its connections.
func NewClient(opts Options) *Client {
	def := DefaultOptions()
	if opts.HeloName == "" {
		if h, err := os.Hostname(); err == nil && checkName(h) == nil {
			opts.HeloName = h
		} else {
			opts.HeloName = "localhost"
		}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = def.DialTimeout
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = def.CommandTimeout
	}
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = def.DataTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = def.IdleTimeout
	}
	if opts.MaxConnsPerTarget <= 0 {
		opts.MaxConnsPerTarget = def.MaxConnsPerTarget
	}
	c := &Client{opts: opts, pools: map[string]*pool{}, stop: make(chan struct{})}
	if err := opts.Validate(); err != nil {
		c.optsErr = fmt.Errorf("delivery: options: %w", err)
	}
	c.workers.Add(1)
	go c.sweepLoop()
	return c
}

// Deliver sends m to the next hop t and returns one Result per m.Rcpts, in
// order. Failures of the session (no address reachable, TLS required but
// unavailable, AUTH refused, a lost connection, ctx done) are temporary
// results with Code 0 for every recipient not yet settled. The error is
// non-nil only when nothing was attempted: t or m is unusable (Validate
// fails, no recipients, no Body, the CA file cannot be read), the Options
// were invalid, or the client is closed.
func (c *Client) Deliver(ctx context.Context, t Target, m Message) ([]Result, error) {
	if c.optsErr != nil {
		return nil, c.optsErr
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("delivery: target %s: %w", t.Host, err)
	}
	t.TLS.Mode, _ = ParseTLSMode(string(t.TLS.Mode))
	if len(m.Rcpts) == 0 {
		return nil, errors.New("delivery: message has no recipients")
	}
	if m.Body == nil {
		return nil, errors.New("delivery: message has no Body")
	}
	results := make([]Result, len(m.Rcpts))
	var pending []int
	for i, r := range m.Rcpts {
		results[i].Rcpt = r
		if err := checkAddress(r); err != nil {
			results[i].setLocal(553, "5.1.3", "bad recipient address: "+err.Error(), false)
			continue
		}
		pending = append(pending, i)
	}
	if m.From == "<>" {
		m.From = ""
	}
	if m.From != "" {
		if err := checkAddress(m.From); err != nil {
			setAll(results, pending, 553, "5.1.7", "bad sender address: "+err.Error(), false, "")
			return results, nil
		}
	}
	if len(pending) == 0 {
		return results, nil
	}

	p, err := c.acquirePool(t)
	if err != nil {
		return nil, err
	}
	defer c.releasePool(p)

	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		setAll(results, pending, 0, "", fmt.Sprintf("delivery to %s canceled while waiting for a connection: %v", t.Host, ctx.Err()), true, "")
		return results, nil
	}
	defer func() { <-p.slots }()

	cn, err := c.connect(ctx, p, t, false)
	if err != nil {
		setAll(results, pending, 0, "", err.Error(), true, "")
		return results, nil
	}
	stopCancel := context.AfterFunc(ctx, func() { cn.raw.Close() })
	reusable := c.transact(ctx, cn, m, results, pending)
	if cn.stale {
		stopCancel()
		cn.close()
		if cn, err = c.connect(ctx, p, t, true); err != nil {
			setAll(results, pending, 0, "", err.Error(), true, "")
			return results, nil
		}
		stopCancel = context.AfterFunc(ctx, func() { cn.raw.Close() })
		reusable = c.transact(ctx, cn, m, results, pending)
	}
	cn.unprobed, cn.stale = false, false
	if !stopCancel() {
		reusable = false
	}
	if reusable {
		c.put(p, cn)
	} else {
		cn.close()
	}
	return results, nil
}

// Close closes idle connections and makes later Deliver calls fail;
// connections busy in a Deliver are closed when it returns.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var idle []*conn
	for _, p := range c.pools {
		p.mu.Lock()
		idle = append(idle, p.idle...)
		p.idle = nil
		p.mu.Unlock()
	}
	c.mu.Unlock()
	close(c.stop)
	for _, cn := range idle {
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			cn.quit()
		}()
	}
	c.workers.Wait()
	return nil
}

// checkAddress accepts local@domain without line breaks or control
// characters. Length limits are the receiving side's business.
func checkAddress(a string) error {
	if _, _, ok := addr.Split(a); !ok {
		return fmt.Errorf("%q is not of the form local@domain", a)
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%q: control character 0x%02x", a, c)
		}
	}
	return nil
}

// wireAddress re-quotes the local part for MAIL FROM and RCPT TO: go-smtp's
// server removed the quotes of "john doe"@example.jp.
func wireAddress(a string) string {
	local, domain, ok := addr.Split(a)
	if !ok {
		return a
	}
	return addr.QuoteLocal(local) + "@" + domain
}

func (r *Result) setLocal(code int, enhanced, text string, temporary bool) {
	r.Code, r.Enhanced, r.Text, r.Temporary = code, enhanced, text, temporary
}

// setAll gives every recipient in idx the same outcome.
func setAll(results []Result, idx []int, code int, enhanced, text string, temporary bool, remote string) {
	for _, i := range idx {
		results[i].setLocal(code, enhanced, text, temporary)
		results[i].Remote = remote
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// needsUTF8 reports whether the envelope needs SMTPUTF8.
func needsUTF8(m Message) bool {
	if m.SMTPUTF8 || !isASCII(m.From) {
		return true
	}
	for _, r := range m.Rcpts {
		if !isASCII(r) {
			return true
		}
	}
	return false
}

// oneLine joins a multi-line reply for logs and results.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
