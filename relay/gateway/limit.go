package gateway

import (
	"io"
	"net"
	"sync"
	"time"
)

// limitListener caps connections in total and per client IP, answering the
// ones over the cap with 421 instead of leaving them waiting in the backlog
// (x/net/netutil.LimitListener blocks Accept, which looks like a dead
// server to the client). Each accepted connection gets an idle deadline per
// read and an absolute session deadline, so a client trickling DATA
// still times out.
type limitListener struct {
	net.Listener
	max, perIP int
	idle, life time.Duration
	// hooks tells the engine about connections, for metrics.
	hooks connHooks

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// connHooks are called on every connection: admitted by the rate limits,
// opened, refused over a limit, closed. Any of them may be nil.
type connHooks struct {
	// admit counts the connection in the client's rate limits and
	// returns the reply line that refuses it, or "".
	admit  func(ip string) string
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
		if l.hooks.admit != nil {
			// Counted before the caps: every attempt is a connection
			// of the minute, as anvil counts them.
			if line := l.hooks.admit(ip); line != "" {
				go refuse(c, line)
				continue
			}
		}
		l.mu.Lock()
		idle, life := l.idle, l.life
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
		return &limitedConn{Conn: c, l: l, ip: ip, idle: idle, deadline: deadlineAfter(life)}, nil
	}
}

// setLimits applies reloaded caps and timeouts to the connections
// accepted from now on; open ones keep their deadlines.
func (l *limitListener) setLimits(max, perIP int, idle, life time.Duration) {
	l.mu.Lock()
	l.max, l.perIP, l.idle, l.life = max, perIP, idle, life
	l.mu.Unlock()
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

// Close releases the slot once: a connection may be closed twice (the
// session's end and the server's Close).
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
