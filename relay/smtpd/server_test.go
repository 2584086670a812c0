package smtpd

import (
	"bytes"
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
