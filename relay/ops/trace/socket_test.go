package trace

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is what a trace client writes to, read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A client attaches over the socket, sees a session's lines, and detaches.
func TestSocket_AttachSeesSessionAndDetaches(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	// A stale socket from a killed gateway is replaced.
	stale, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode().Perm(), err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another gateway") {
		t.Errorf("a second Listen on a live socket: %v, want a refusal", err)
	}
	h := NewHub()
	go h.Serve(l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer l.Close()

	out := &syncBuffer{}
	done := make(chan struct{})
	attached := make(chan error, 1)
	go func() { attached <- Attach(path, Filter{Client: netip.MustParsePrefix("192.0.2.0/24")}, out, done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !h.Active() {
		if time.Now().After(deadline) {
			t.Fatal("the client never attached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f := &fakeConn{}
	for _, ip := range []string{"198.51.100.1:25000", "192.0.2.7:50123"} {
		c := h.Inbound(netip.MustParseAddrPort(ip), func() string { return "S-" + ip })(f)
		c.Write([]byte("220 gw.test.jp ESMTP\r\n"))
		c.Close()
	}
	for !strings.Contains(out.String(), "connection closed") {
		if time.Now().After(deadline) {
			t.Fatalf("the trace never showed the session: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := out.String(); strings.Contains(got, "198.51.100.1") || !strings.Contains(got, "SEND -> [220 gw.test.jp ESMTP") {
		t.Errorf("--client 192.0.2.0/24 trace:\n%s", got)
	}
	close(done)
	if err := <-attached; err != nil {
		t.Errorf("Attach after done: %v", err)
	}
	for h.Active() {
		if time.Now().After(deadline) {
			t.Fatal("the subscriber stayed after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListen_RefusesAFileThatIsNoSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestPeerAllowed(t *testing.T) {
	for _, tc := range []struct {
		uid, self int
		want      bool
	}{{0, 998, true}, {998, 998, true}, {1000, 998, false}, {0, 0, true}, {1000, 0, false}} {
		if got := peerAllowed(tc.uid, tc.self); got != tc.want {
			t.Errorf("peerAllowed(%d, %d) = %v, want %v", tc.uid, tc.self, got, tc.want)
		}
	}
}
