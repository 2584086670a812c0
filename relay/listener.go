package relay

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// limitListener caps connections in total and per client IP, answering the
// ones over the cap with 421 instead of leaving them waiting in the backlog
// (x/net/netutil.LimitListener blocks Accept, which looks like a dead
// server to the client). Each accepted connection gets an idle deadline per
// read and an absolute session deadline: go-smtp's ReadTimeout is set once
// per command line, so a client trickling DATA would otherwise never time
// out (go-smtp issue 196).
type limitListener struct {
	net.Listener
	max, perIP int
	idle, life time.Duration
	// hooks tells the engine about connections, for logs and metrics
	// (go-smtp only creates a session at HELO).
	hooks connHooks

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// connHooks are called on every connection: opened, refused over a limit,
// closed. Any of them may be nil.
type connHooks struct {
	open   func(ip string)
	refuse func(ip, reason string)
	close  func(ip string)
}

func newLimitListener(l net.Listener, max, perIP int, idle, life time.Duration, hooks connHooks) *limitListener {
	return &limitListener{Listener: l, max: max, perIP: perIP, idle: idle, life: life, hooks: hooks, byIP: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		reason := ""
		switch {
		case l.max > 0 && l.total >= l.max:
			reason = "too many connections"
		case l.perIP > 0 && l.byIP[ip] >= l.perIP:
			reason = "too many connections from your address"
		default:
			l.total++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if reason != "" {
			if l.hooks.refuse != nil {
				l.hooks.refuse(ip, reason)
			}
			go refuse(c, "421 4.7.0 "+reason+", try again later\r\n")
			continue
		}
		if l.hooks.open != nil {
			l.hooks.open(ip)
		}
		return &limitedConn{Conn: c, l: l, ip: ip, idle: l.idle, deadline: deadlineAfter(l.life)}, nil
	}
}

func deadlineAfter(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func refuse(c net.Conn, line string) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, line)
	c.Close()
}

func (l *limitListener) release(ip string) {
	if l.hooks.close != nil {
		l.hooks.close(ip)
	}
	l.mu.Lock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type limitedConn struct {
	net.Conn
	l        *limitListener
	ip       string
	idle     time.Duration
	deadline time.Time
	once     sync.Once
	pending  []byte // continuation lines of a reply not yet written
}

func (c *limitedConn) Read(b []byte) (int, error) {
	d := c.deadline
	if c.idle > 0 {
		if idle := time.Now().Add(c.idle); d.IsZero() || idle.Before(d) {
			d = idle
		}
	}
	if !d.IsZero() {
		c.Conn.SetReadDeadline(d)
	}
	return c.Conn.Read(b)
}

// Close releases the slot once: go-smtp may close a connection twice
// (QUIT and the deferred close).
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}

// go-smtp answers commands out of sequence with 502, but RFC 5321 §4.2.4
// reserves 502 for commands not implemented and wants 503 for a bad
// sequence. Its replies are rewritten on the way out: a 502 whose text
// is one of its sequence messages becomes 503 (same text, same enhanced
// code).
var sequenceTexts = [][]byte{
	[]byte("Please introduce yourself first."),
	[]byte("Missing MAIL FROM command."),
	[]byte("Missing RCPT TO command."),
	[]byte("not allowed during message transfer"),
}

// fixReply corrects two of go-smtp's fixed replies on the way out: the
// sequence errors above become 503, and a successful AUTH gets the
// enhanced code RFC 4954 asks for (235 2.7.0; go-smtp says 2.0.0).
func fixReply(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("235 2.0.0 ")) {
		out := append([]byte(nil), b...)
		out[6] = '7'
		return out
	}
	if !bytes.HasPrefix(b, []byte("502 5.5.1 ")) {
		return b
	}
	for _, t := range sequenceTexts {
		if bytes.Contains(b, t) {
			out := append([]byte(nil), b...)
			out[2] = '3'
			return out
		}
	}
	return b
}

// Write sends a reply line. go-smtp writes and flushes a multi-line
// reply one line at a time (textproto's PrintfLine), which made an EHLO
// reply cost a system call per extension; continuation lines ("250-...")
// are held and go out with the reply's last line in one write. Nothing
// else is held: TLS records never start with three digits and a '-'.
func (c *limitedConn) Write(b []byte) (int, error) {
	if isContinuation(b) {
		c.pending = append(c.pending, fixReply(b)...)
		return len(b), nil
	}
	out := fixReply(b)
	if len(c.pending) > 0 {
		out = append(c.pending, out...)
		c.pending = c.pending[:0]
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// isContinuation reports whether b is one whole "NNN-text" reply line.
func isContinuation(b []byte) bool {
	return len(b) >= 6 && b[3] == '-' && b[0] >= '2' && b[0] <= '5' &&
		b[1] >= '0' && b[1] <= '9' && b[2] >= '0' && b[2] <= '9' &&
		b[len(b)-2] == '\r' && b[len(b)-1] == '\n' && bytes.IndexByte(b, '\n') == len(b)-1
}
