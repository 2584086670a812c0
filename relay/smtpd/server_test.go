package smtpd

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack prints for the caller's goroutine.
func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf[:n], []byte("goroutine ")), []byte(" "))
	return string(id)
}

func waitIdle(t *testing.T, s *Server, want int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.idle.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", s.idle.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersAreReused: a goroutine that finished a session serves the
// next connection; at most maxIdleWorkers wait; they end with the server.
func TestWorkersAreReused(t *testing.T) {
	var mu sync.Mutex
	served := map[string]int{}
	ts := startServer(t, Config{}, R(220, "", ""), func(*Conn) {
		mu.Lock()
		served[goroutineID()]++
		mu.Unlock()
	})
	for range 20 {
		c := dial(t, ts.addr)
		c.expect("220 ")
		c.send("QUIT\r\n")
		c.expect("221 ")
		c.expectClosed()
		waitIdle(t, ts.srv, 1)
	}
	mu.Lock()
	if len(served) != 1 {
		t.Errorf("20 sessions one after another ran on %d goroutines, want 1: %v", len(served), served)
	}
	mu.Unlock()

	// More sessions at once than workers may wait.
	var clients []*client
	for range maxIdleWorkers + 6 {
		c := dial(t, ts.addr)
		c.expect("220 ")
		clients = append(clients, c)
	}
	for _, c := range clients {
		c.send("QUIT\r\n")
		c.expect("221 ")
	}
	waitIdle(t, ts.srv, maxIdleWorkers)

	ts.srv.Close()
	waitIdle(t, ts.srv, 0)
}

// deadlineConn sets its own read deadline before every read, as the
// gateway's idle timeout does, and holds its first read at the door
// until released: the moment between a session going idle and its read.
type deadlineConn struct {
	net.Conn
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		close(c.entered)
		<-c.release
	})
	c.Conn.SetReadDeadline(time.Now().Add(time.Hour))
	return c.Conn.Read(b)
}

type deadlineListener struct {
	net.Listener
	conns chan *deadlineConn
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &deadlineConn{Conn: nc, entered: make(chan struct{}), release: make(chan struct{})}
	l.conns <- c
	return c, nil
}

// A shutdown that lands while a session is about to read, under a
// wrapper that sets its own read deadline on every read, still ends the
// session at once with 421: it is not lost until the idle timeout.
func TestShutdownBeforeTheRead(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := &deadlineListener{Listener: l, conns: make(chan *deadlineConn, 1)}
	var mu sync.Mutex
	var msgs []string
	srv := &Server{Config: Config{Hostname: "gw.test"}, NewHandler: func(c *Conn) Handler {
		return &testHandler{c: c, connect: R(220, "", ""), mu: &mu, messages: &msgs}
	}}
	go srv.Serve(dl)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, l.Addr().String())
	c.nc.SetDeadline(time.Now().Add(time.Minute))
	c.expect("220 ")
	sc := <-dl.conns
	<-sc.entered // the session waits for a command
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	// Shutdown has seen the session idle once the listener is closed and
	// the connection is; only then does the read go on and set its deadline.
	c.expect("421 4.3.2")
	close(sc.release)
	if err := <-stopped; err != nil {
		t.Fatalf("Shutdown: %v (the session waited for its read deadline)", err)
	}
	c.expectClosed()
}
