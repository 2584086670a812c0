package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Bounds for housekeeping exchanges, which must never hold a worker for a
// full CommandTimeout.
const (
	probeTimeout = 30 * time.Second
	// freshReuse: a connection back in the pool for less than this is
	// reused without the RSET probe.
	freshReuse  = time.Second
	quitTimeout = 5 * time.Second
)

// conn is one SMTP session with a next hop.
type conn struct {
	raw       net.Conn          // the TCP connection: deadlines and forced close
	session   net.Conn          // raw, or the TLS connection over it
	tp        *textproto.Reader // replies read by pipelined (nil until used)
	bufs      *txBufs           // while a transaction runs (buffers); nil when idle
	sc        *smtp.Client
	addr      string
	helo      string
	secure    bool
	idleSince time.Time
	// unprobed: taken from the pool without the RSET probe, because its
	// last transaction ended cleanly moments ago. If it turns out dead at
	// MAIL, Deliver retries once on a fresh connection (stale is set).
	unprobed, stale bool
}

// reset sends RSET, which clears the transaction. It is said here rather
// than with go-smtp's Reset, which forgets the EHLO reply and would greet
// again before the next command: a connection says EHLO once (a strict
// next hop answers a second one with 503).
func (cn *conn) reset() error {
	cn.raw.SetDeadline(time.Now().Add(cn.sc.CommandTimeout))
	defer cn.raw.SetDeadline(time.Time{})
	if _, err := cn.session.Write([]byte("RSET\r\n")); err != nil {
		return err
	}
	code, msg, err := cn.readReply()
	if err != nil {
		return err
	}
	if code != 250 {
		return &smtp.SMTPError{Code: code, Message: msg}
	}
	return nil
}

// close drops the connection without a goodbye.
func (cn *conn) close() { cn.raw.Close() }

// quit says goodbye within quitTimeout and closes.
func (cn *conn) quit() {
	cn.raw.SetDeadline(time.Now().Add(quitTimeout))
	cn.sc.CommandTimeout = quitTimeout
	_ = cn.sc.Quit()
	cn.raw.Close()
}

// pool holds the connections of one target key.
type pool struct {
	tls   *tls.Config   // nil for TLSNone
	slots chan struct{} // one token per connection in use or being opened
	users int           // Deliver calls holding the pool; guarded by Client.mu

	mu   sync.Mutex
	idle []*conn // most recently used last
}

func (p *pool) takeIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	cn := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return cn
}

// acquirePool returns the pool for t, creating it (and reading its CA file)
// on first use. Every acquirePool is paired with releasePool.
//
// Connections are capped by the slot tokens: a Deliver holds a token while
// it uses a connection and takes an idle one before it ever dials, so open
// connections (busy plus idle) never exceed MaxConnsPerTarget.
func (c *Client) acquirePool(t Target) (*pool, error) {
	helo := t.HeloName
	if helo == "" {
		helo = c.opts.HeloName
	}
	key := t.poolKey(helo)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("delivery: client closed")
	}
	p := c.pools[key]
	if p == nil {
		limit := c.opts.MaxConnsPerTarget
		if t.MaxConns > 0 && t.MaxConns < limit {
			limit = t.MaxConns
		}
		p = &pool{slots: make(chan struct{}, limit)}
		if t.TLS.Mode != TLSNone {
			cfg, err := t.tlsConfig()
			if err != nil {
				return nil, fmt.Errorf("delivery: target %s: %w", t.Host, err)
			}
			p.tls = cfg
		}
		c.pools[key] = p
	}
	p.users++
	return p, nil
}

func (c *Client) releasePool(p *pool) {
	c.mu.Lock()
	p.users--
	c.mu.Unlock()
}

// put returns a healthy connection for reuse.
func (c *Client) put(p *pool, cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			cn.quit()
		}()
		return
	}
	cn.idleSince = time.Now()
	cn.giveBack()
	p.mu.Lock()
	p.idle = append(p.idle, cn)
	p.mu.Unlock()
}

// connect returns a session for t: a pooled one that still answers RSET,
// or a new one from the first address that accepts a session.
//
// forceProbe probes even a connection that was idle only a moment.
func (c *Client) connect(ctx context.Context, p *pool, t Target, forceProbe bool) (*conn, error) {
	for cn := p.takeIdle(); cn != nil; cn = p.takeIdle() {
		if time.Since(cn.idleSince) > c.opts.IdleTimeout {
			c.quitLater(cn)
			continue
		}
		if !forceProbe && time.Since(cn.idleSince) < freshReuse {
			// Two round trips saved per message on a busy next hop.
			cn.unprobed = true
			return cn, nil
		}
		if err := c.probe(ctx, cn); err == nil {
			return cn, nil
		}
		cn.close()
	}
	var failures []string
	for _, a := range t.Addrs {
		cn, err := c.dial(ctx, p, t, a)
		if err == nil {
			return cn, nil
		}
		failures = append(failures, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.New(strings.Join(failures, "; "))
}

// probe checks a pooled connection with RSET, which also clears any
// transaction state left from the previous message: a dead session shows
// up as an error now, not in the middle of the next transaction.
func (c *Client) probe(ctx context.Context, cn *conn) error {
	stop := context.AfterFunc(ctx, func() { cn.raw.Close() })
	defer stop()
	cn.sc.CommandTimeout = min(c.opts.CommandTimeout, probeTimeout)
	defer func() { cn.sc.CommandTimeout = c.opts.CommandTimeout }()
	return cn.reset()
}

func (c *Client) quitLater(cn *conn) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		cn.quit()
	}()
}

// sweepLoop closes connections idle for longer than IdleTimeout and forgets
// pools nobody uses.
func (c *Client) sweepLoop() {
	defer c.workers.Done()
	every := min(max(c.opts.IdleTimeout/2, 10*time.Millisecond), 30*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.sweep(time.Now())
		}
	}
}

func (c *Client) sweep(now time.Time) {
	var expired []*conn
	c.mu.Lock()
	for key, p := range c.pools {
		p.mu.Lock()
		keep := p.idle[:0]
		for _, cn := range p.idle {
			if now.Sub(cn.idleSince) > c.opts.IdleTimeout {
				expired = append(expired, cn)
			} else {
				keep = append(keep, cn)
			}
		}
		clear(p.idle[len(keep):])
		p.idle = keep
		if p.users == 0 && len(p.idle) == 0 {
			delete(c.pools, key)
		}
		p.mu.Unlock()
	}
	for _, cn := range expired {
		if c.closed {
			cn.close()
		} else {
			c.quitLater(cn)
		}
	}
	c.mu.Unlock()
}

// txBufs are the buffers of one transaction: what the body is read into
// (body), encoded into (wire, or cmd with BDAT's commands) and written
// through (bw, DATA). A connection borrows them for a transaction and
// gives them back when it goes idle, so that memory follows the
// transactions in flight (at most the workers), not the idle connections.
type txBufs struct {
	body, wire, cmd []byte
	bw              *bufio.Writer
}

var txBufPool = sync.Pool{New: func() any { return &txBufs{body: make([]byte, bodyBufSize)} }}

// buffers returns the connection's transaction buffers, borrowed on first
// use.
func (cn *conn) buffers() *txBufs {
	if cn.bufs == nil {
		cn.bufs = txBufPool.Get().(*txBufs)
	}
	return cn.bufs
}

// giveBack returns the transaction buffers to the pool.
func (cn *conn) giveBack() {
	if b := cn.bufs; b != nil {
		if b.bw != nil {
			b.bw.Reset(nil) // no reference to the connection
		}
		cn.bufs = nil
		txBufPool.Put(b)
	}
}
