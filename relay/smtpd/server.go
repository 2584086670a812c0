package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
)

// Handler makes every decision of one connection, stage by stage. A reply
// with a code of 400 or more refuses the stage; the protocol keeps its own
// state (whether MAIL was accepted, how many recipients) from the replies.
type Handler interface {
	// Connect decides at the greeting: 220 greets (an empty Text gives
	// the standard greeting); a refusal is said instead and the
	// connection closed, as 421 if it is temporary and 554 otherwise.
	Connect() Reply
	// Helo decides on HELO or EHLO; name may be empty (a bare HELO).
	Helo(name string, extended bool) Reply
	// AuthMechanisms lists the SASL mechanisms to offer now.
	AuthMechanisms() []string
	// Auth starts an exchange; a *Reply error refuses it with that reply.
	// The sasl.Server may fail with a *Reply too.
	Auth(mech string) (sasl.Server, error)
	Mail(from string, p MailParams) Reply
	Rcpt(to string, p RcptParams) Reply
	// LinePolicy is asked at DATA and at the first BDAT.
	LinePolicy() LinePolicy
	// Data reads the message and decides; it may stop reading early. It
	// is called at DATA, or at the first BDAT with the chunks read as it
	// reads: a refusal before the last one answers the chunk being read.
	Data(m *MessageReader) Reply
	// Reset ends the transaction (RSET, HELO, STARTTLS, after DATA).
	Reset()
	// Close is called once when the connection ends.
	Close()
}

// Config is the protocol's configuration; policy lives in the Handler.
type Config struct {
	Hostname        string
	MaxMessageBytes int64
	MaxRecipients   int
	MaxLineLength   int // longest command line, CRLF included
	ErrorLimit      int // close after this many 4xx/5xx replies; 0: never
	TLS             *tls.Config
	ImplicitTLS     bool // SMTPS: TLS before the greeting
	WriteTimeout    time.Duration
	// Extensions advertised besides the built-in ones.
	SMTPUTF8, DSN bool
}

// Server accepts connections and runs a session on each.
type Server struct {
	// Config is the configuration until SetConfig gives another.
	Config
	// NewHandler is called for every accepted connection.
	NewHandler func(c *Conn) Handler
	// Trace, if set, sees the protocol of every connection (sekisho trace).
	Trace Tracer

	// live is the configuration SetConfig gave; nil: Config.
	live atomic.Pointer[Config]

	// readers pools the command readers, bigReaders the message readers.
	readers, bigReaders readerPool

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*Conn]struct{}
	closing  bool
	sessions sync.WaitGroup

	// Workers: the goroutines that ran a session wait for the next
	// connection (see work).
	handoff chan *Conn
	idle    atomic.Int32
	quit    chan struct{} // closed when the server stops listening
}

// maxIdleWorkers bounds the goroutines kept waiting for a connection.
const maxIdleWorkers = 64

// SetConfig changes the configuration of the connections accepted from
// now on (a reload); a connection keeps the one it started with, so its
// limits never change in the middle of a transaction.
func (s *Server) SetConfig(c Config) { s.live.Store(&c) }

func (s *Server) config() *Config {
	if c := s.live.Load(); c != nil {
		return c
	}
	return &s.Config
}

// readerPool pools the readers of connections: at thousands of
// connections a second a new buffer each is a measurable share of the
// garbage collector's work.
type readerPool struct{ sync.Pool }

// get returns a reader of r with a buffer of size bytes.
func (p *readerPool) get(r io.Reader, size int) *bufio.Reader {
	if br, ok := p.Get().(*bufio.Reader); ok && br.Size() == size {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, size)
}

func (p *readerPool) put(br *bufio.Reader) {
	br.Reset(nil)
	p.Put(br)
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")

// Serve accepts on l until it fails or the server closes.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.handoff = make(chan *Conn)
		s.quit = make(chan struct{})
	}
	s.lns[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		select {
		case s.handoff <- c: // a worker was waiting
		default:
			go s.work(c)
		}
	}
}

// work runs sessions: the first, then whichever connections are handed
// to it while it waits. A session deepens its goroutine's stack to about
// 16 KiB (policy, rewrite, logging); a new goroutine per connection would
// grow and copy it again every time, a few percent of the CPU of a
// message at thousands of connections a second.
func (s *Server) work(c *Conn) {
	for c != nil {
		c.serve()
		c = s.nextConn()
	}
}

// nextConn waits for a connection to serve, or returns nil when enough
// workers wait already or the server stops listening.
func (s *Server) nextConn() *Conn {
	if s.idle.Add(1) > maxIdleWorkers {
		s.idle.Add(-1)
		return nil
	}
	defer s.idle.Add(-1)
	select {
	case c := <-s.handoff:
		return c
	case <-s.quit:
		return nil
	}
}

func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.conns = map[*Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.sessions.Add(1)
	return true
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.sessions.Done()
}

// ServeConn runs one session on nc and returns when it ends (the dry-run
// session on standard input and output).
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	if s.track(c) {
		c.serve()
	}
}

func (s *Server) stopListening() {
	s.mu.Lock()
	if !s.closing && s.quit != nil {
		close(s.quit)
	}
	s.closing = true
	for l := range s.lns {
		l.Close()
	}
	s.mu.Unlock()
}

// Close stops listening and closes every connection at once.
func (s *Server) Close() error {
	s.stopListening()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return nil
}

// Shutdown stops listening and waits for the sessions to end until ctx is
// done; sessions waiting for a command are told 421 and closed at once,
// the others finish the command in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopListening()
	s.mu.Lock()
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}
