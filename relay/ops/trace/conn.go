package trace

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// The protocol state a session's line reader keeps, only while someone
// watches. A trace that attaches in the middle of a session does not know
// whether the client is sending commands, a SASL response or a body, so
// it shows no client line until the server's next reply says where the
// session is (354: a body follows; 334: a SASL response follows).
type readPhase uint8

const (
	stUnknown readPhase = iota
	stCommand
	stAuth // the client's next lines are SASL responses
	stData // the client's lines are the message body
)

// maxLine bounds a line kept for the trace; the rest is cut.
const maxLine = 2048

// session is the trace of one SMTP session, inbound or outbound. Its
// connections (the plain one and, after STARTTLS, the TLS one) share it.
type session struct {
	hub  *Hub
	side Side
	id   string
	idFn func() string // asked for id at the first traced line
	peer netip.Addr
	// label names the peer in the trace: the client's address, or the
	// next hop and its address.
	label string
	host  string

	mu       sync.Mutex
	gen      uint64 // the hub generation watchers were chosen in
	epoch    uint64 // the hub epoch the state was kept in
	watchers []*Subscriber
	phase    readPhase
	hidden   int // client lines not shown while the state was unknown
	bdat     int64
	body     struct{ lines, bytes int64 }
	part     [2][]byte // partial lines: [0] client, [1] server
	partN    [2]int    // their length on the wire (part keeps maxLine)
	opened   bool
}

func newSession(h *Hub, side Side, id string, peer netip.Addr, label, host string) *session {
	// A new session starts at the greeting: its state is known in the
	// epoch it began in.
	return &session{hub: h, side: side, id: id, peer: peer, label: label, host: host,
		epoch: h.epoch.Load(), phase: stCommand}
}

// conn is a traced connection. fromClient says which direction Read is:
// inbound, reads are the client's lines; outbound, writes are.
type conn struct {
	net.Conn
	s *session
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.s.hub.Active() {
		c.s.feed(c.s.side == Inbound, p[:n])
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && c.s.hub.Active() {
		c.s.feed(c.s.side == Outbound, p[:n])
	}
	return n, err
}

// Watched says whether anyone watches the trace now: bytes sent past the
// wrapper (delivery's sendfile) would not be shown, so while someone
// watches they go through it.
func (c *conn) Watched() bool { return c.s.hub.Active() }

func (c *conn) Close() error {
	if c.s.hub.Active() {
		c.s.mu.Lock()
		if c.s.opened {
			c.s.note("connection closed")
			c.s.opened = false
		}
		c.s.mu.Unlock()
	}
	return c.Conn.Close()
}

// refresh re-chooses the watchers after the subscribers changed and forgets
// the state if the trace was detached in between. Called with mu held.
func (s *session) refresh() {
	if g := s.hub.gen.Load(); g != s.gen {
		s.watchers, s.gen = s.hub.watchers(s.side, s.peer, s.host)
	}
	if e := s.hub.epoch.Load(); e != s.epoch {
		s.epoch, s.phase, s.hidden, s.bdat = e, stUnknown, 0, 0
		s.part, s.partN = [2][]byte{}, [2]int{}
	}
	if s.id == "" {
		s.id = "-"
		if s.idFn != nil {
			s.id = s.idFn()
		}
	}
	if !s.opened && len(s.watchers) > 0 {
		s.opened = true
		s.note("watching " + s.label)
	}
}

// feed reads bytes of one direction into lines.
func (s *session) feed(client bool, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	if len(s.watchers) == 0 {
		return
	}
	d := 1
	if client {
		d = 0
	}
	for len(p) > 0 {
		if client && s.bdat > 0 {
			n := int64(len(p))
			if n > s.bdat {
				n = s.bdat
			}
			s.chunk(p[:n])
			s.bdat -= n
			p = p[n:]
			if s.bdat == 0 {
				s.bodyEnd("(end of BDAT chunk)")
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partN[d] += len(p)
			if len(s.part[d]) < maxLine {
				s.part[d] = append(s.part[d], p[:min(len(p), maxLine-len(s.part[d]))]...)
			}
			return
		}
		line := p[:i]
		if len(s.part[d]) > 0 {
			s.part[d] = append(s.part[d], line[:min(len(line), max(0, maxLine-len(s.part[d])))]...)
			line = s.part[d]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if client {
			s.clientLine(line, s.partN[d]+i+1)
		} else {
			s.serverLine(line)
		}
		s.part[d], s.partN[d] = s.part[d][:0], 0
		p = p[i+1:]
	}
}

// chunk is BDAT data: shown only to watchers who asked for bodies.
func (s *session) chunk(p []byte) {
	s.body.bytes += int64(len(p))
	for _, l := range bytes.SplitAfter(p, []byte{'\n'}) {
		if len(l) == 0 {
			continue
		}
		s.body.lines++
		s.emitBody(string(bytes.TrimRight(l, "\r\n")))
	}
}

func (s *session) clientLine(line []byte, size int) {
	dir := recv
	if s.side == Outbound {
		dir = sent
	}
	switch s.phase {
	case stUnknown:
		s.hidden++
		return
	case stData:
		if len(line) == 1 && line[0] == '.' {
			s.bodyEnd("")
			s.emit(dir, ".")
			return
		}
		s.body.lines++
		s.body.bytes += int64(size)
		s.emitBody(string(line))
		return
	case stAuth:
		if string(line) == "*" {
			s.emit(dir, "*")
		} else {
			s.emit(dir, "**** (SASL response not shown)")
		}
		return
	}
	text := string(line)
	verb, arg, _ := strings.Cut(text, " ")
	switch strings.ToUpper(verb) {
	case "AUTH":
		mech, initial, ok := strings.Cut(arg, " ")
		if ok && initial != "" {
			text = verb + " " + mech + " ****"
		}
		s.phase = stAuth
	case "BDAT":
		f := strings.Fields(arg)
		if len(f) > 0 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && n > 0 {
				s.bdat = n
			}
		}
	case "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
		"HELP", "STARTTLS", "TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML", "XCLIENT", "XFORWARD":
	default:
		// Not a command: perhaps a secret or a body line sent out of turn.
		text = "**** (not a known command; not shown)"
	}
	s.emit(dir, text)
}

func (s *session) serverLine(line []byte) {
	dir := sent
	if s.side == Outbound {
		dir = recv
	}
	final := len(line) < 4 || line[3] != '-'
	if s.phase == stUnknown && final {
		if s.hidden > 0 {
			s.note(strconv.Itoa(s.hidden) + " client line(s) not shown: the trace joined mid-session")
		}
		s.phase, s.hidden = stCommand, 0
	}
	if final && len(line) >= 3 {
		switch code := string(line[:3]); {
		case code == "354":
			s.phase = stData
		case code == "334":
			s.phase = stAuth
		case s.phase == stAuth && (code == "235" || code[0] == '4' || code[0] == '5'):
			s.phase = stCommand
		}
	}
	s.emit(dir, string(line))
}

// bodyEnd ends a body: watchers without --bodies get its size instead.
func (s *session) bodyEnd(what string) {
	if s.phase == stData {
		s.phase = stCommand
	}
	text := "(message body: " + strconv.FormatInt(s.body.lines, 10) + " lines, " +
		strconv.FormatInt(s.body.bytes, 10) + " bytes, not shown; --bodies shows it)"
	for _, w := range s.watchers {
		if !w.filter.Bodies {
			w.send(format(s.hub.now(), s.side, s.id, s.label, note, text))
		} else if what != "" {
			w.send(format(s.hub.now(), s.side, s.id, s.label, note, what))
		}
	}
	s.body.lines, s.body.bytes = 0, 0
}

func (s *session) emit(dir, text string) {
	line := format(s.hub.now(), s.side, s.id, s.label, dir, text)
	for _, w := range s.watchers {
		w.send(line)
	}
}

func (s *session) emitBody(text string) {
	dir := recv
	if s.side == Outbound {
		dir = sent
	}
	var line string
	for _, w := range s.watchers {
		if w.filter.Bodies {
			if line == "" {
				line = format(s.hub.now(), s.side, s.id, s.label, dir, text)
			}
			w.send(line)
		}
	}
}

func (s *session) note(text string) {
	s.emit(note, text)
}

// Inbound returns the wrapper of a client's connection to our server
// (smtpd.Tracer): remote is the client; id names the session as the logs
// do, asked at the first traced line.
func (h *Hub) Inbound(remote netip.AddrPort, id func() string) func(net.Conn) net.Conn {
	if h == nil {
		return func(c net.Conn) net.Conn { return c }
	}
	s := newSession(h, Inbound, "", remote.Addr(), remote.String(), "")
	s.idFn = id
	return func(c net.Conn) net.Conn { return &conn{Conn: c, s: s} }
}

// Outbound returns the wrapper of one connection to a next hop: host is
// the next hop's name, addr the "ip:port" dialed. The same session wraps
// the plain connection and, after STARTTLS, the TLS one, so the trace
// shows text, never TLS records.
func (h *Hub) Outbound(host, addr string) func(net.Conn) net.Conn {
	if h == nil {
		return func(c net.Conn) net.Conn { return c }
	}
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		peer = ap.Addr().Unmap()
	}
	s := newSession(h, Outbound, h.newID(), peer, host+" "+addr, host)
	return func(c net.Conn) net.Conn { return &conn{Conn: c, s: s} }
}
