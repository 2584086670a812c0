package trace

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeConn hands out scripted reads and discards writes.
type fakeConn struct {
	net.Conn
	next []byte
}

func (f *fakeConn) Read(p []byte) (int, error) {
	n := copy(p, f.next)
	f.next = f.next[n:]
	return n, nil
}
func (f *fakeConn) Write(p []byte) (int, error) { return len(p), nil }
func (f *fakeConn) Close() error                { return nil }

// step is one chunk on the wire: c is what the client sends, s what the
// server sends.
type step struct{ c, s string }

// run drives a session through a wrapped connection: reads are the
// client's side inbound, writes outbound.
func run(side Side, c net.Conn, f *fakeConn, steps []step) {
	for _, st := range steps {
		client, server := st.c, st.s
		if side == Inbound {
			if client != "" {
				f.next = []byte(client)
				buf := make([]byte, len(client))
				c.Read(buf)
			}
			if server != "" {
				c.Write([]byte(server))
			}
			continue
		}
		if client != "" {
			c.Write([]byte(client))
		}
		if server != "" {
			f.next = []byte(server)
			buf := make([]byte, len(server))
			c.Read(buf)
		}
	}
}

func drain(s *Subscriber) string {
	var b strings.Builder
	for {
		select {
		case l := <-s.Lines():
			b.WriteString(l)
		default:
			return b.String()
		}
	}
}

func fixedHub() *Hub {
	h := NewHub()
	h.now = func() time.Time { return time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC) }
	return h
}

var session1 = []step{
	{s: "220 gw.test.jp ESMTP sekisho\r\n"},
	{c: "EHLO pc.test.jp\r\n", s: "250-gw.test.jp Hello pc.test.jp\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE\r\n"},
	{c: "AUTH PLAIN AHRhbmFrYUB0ZXN0LmpwAHRhbmFrYS1zZWNyZXQ=\r\n", s: "235 2.7.0 Authentication successful\r\n"},
	// Pipelined, and split in the middle of a line.
	{c: "MAIL FROM:<tanaka@test.jp>\r\nRCPT TO:<partner@exa"},
	{c: "mple.org>\r\nDATA\r\n", s: "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 Start mail input\r\n"},
	{c: "Subject: secret plans\r\n\r\nline one\r\n..dot-stuffed\r\n.\r\n", s: "250 2.0.0 OK: queued as X1\r\n"},
	{c: "AUTH LOGIN\r\n", s: "503 5.5.1 already authenticated\r\n"},
	{c: "AUTH LOGIN\r\n", s: "334 VXNlcm5hbWU6\r\n"},
	{c: "dGFuYWthQHRlc3QuanA=\r\n", s: "334 UGFzc3dvcmQ6\r\n"},
	{c: "dGFuYWthLXNlY3JldA==\r\n", s: "535 5.7.8 bad\r\n"},
	{c: "BDAT 12 LAST\r\nHi\r\nthere!\r\n", s: "250 2.0.0 OK: queued as X2\r\n"},
	{c: "dGFuYWthLXNlY3JldA==\r\n", s: "500 5.5.2 Command not recognized\r\n"},
	{c: "QUIT\r\n", s: "221 2.0.0 bye\r\n"},
}

func TestTrace_Golden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		side   Side
		filter Filter
	}{
		{"inbound", Inbound, Filter{}},
		{"inbound_bodies", Inbound, Filter{Bodies: true}},
		{"outbound", Outbound, Filter{NextHop: "mx.example.org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fixedHub()
			sub := h.Subscribe(tc.filter)
			defer sub.Close()
			f := &fakeConn{}
			var c net.Conn
			if tc.side == Inbound {
				c = h.Inbound(netip.MustParseAddrPort("192.0.2.7:50123"), func() string { return "S1" })(f)
			} else {
				c = h.Outbound("mx.example.org", "198.51.100.9:25")(f)
			}
			run(tc.side, c, f, session1)
			c.Close()
			got := drain(sub)
			for _, secret := range []string{"AHRhbmFr", "dGFuYWth", "tanaka-secret"} {
				if strings.Contains(got, secret) {
					t.Errorf("the trace shows the secret %q", secret)
				}
			}
			if body := strings.Contains(got, "secret plans"); body != tc.filter.Bodies {
				t.Errorf("body shown: %v, want %v", body, tc.filter.Bodies)
			}
			golden(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("trace differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// A trace attached in the middle of a body shows none of it: client lines
// stay hidden until the server's next reply says where the session is.
func TestTrace_JoinMidSessionHidesBody(t *testing.T) {
	h := fixedHub()
	f := &fakeConn{}
	c := h.Inbound(netip.MustParseAddrPort("192.0.2.7:50123"), func() string { return "S1" })(f)
	run(Inbound, c, f, session1[:5]) // nobody watching: up to 354
	sub := h.Subscribe(Filter{})
	run(Inbound, c, f, []step{
		{c: "AUTH PLAIN c2VjcmV0\r\nstill the body\r\n.\r\n", s: "250 2.0.0 OK: queued as X1\r\n"},
		{c: "QUIT\r\n", s: "221 2.0.0 bye\r\n"},
	})
	got := drain(sub)
	if strings.Contains(got, "still the body") || strings.Contains(got, "c2VjcmV0") {
		t.Errorf("a trace joined mid-body shows it:\n%s", got)
	}
	for _, want := range []string{"3 client line(s) not shown", "SEND -> [250 2.0.0 OK: queued as X1", "RECV <- [QUIT"} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
}

// Filters select sessions by side, client network and next hop.
func TestFilter_Match(t *testing.T) {
	client := netip.MustParsePrefix("192.0.2.0/24")
	in, out := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.9")
	for _, tc := range []struct {
		f    Filter
		side Side
		peer netip.Addr
		host string
		want bool
	}{
		{Filter{}, Inbound, in, "", true},
		{Filter{}, Outbound, out, "mx.example.org", true},
		{Filter{Client: client}, Inbound, in, "", true},
		{Filter{Client: client}, Inbound, out, "", false},
		{Filter{Client: client}, Outbound, out, "mx.example.org", false},
		{Filter{NextHop: "MX.example.org."}, Outbound, out, "mx.example.org", true},
		{Filter{NextHop: "198.51.100.9"}, Outbound, out, "mx.example.org", true},
		{Filter{NextHop: "other.example"}, Outbound, out, "mx.example.org", false},
		{Filter{NextHop: "mx.example.org"}, Inbound, in, "", false},
		{Filter{Client: client, NextHop: "mx.example.org"}, Inbound, in, "", true},
		{Filter{Client: client, NextHop: "mx.example.org"}, Outbound, out, "mx.example.org", true},
	} {
		if got := tc.f.match(tc.side, tc.peer, tc.host); got != tc.want {
			t.Errorf("%+v.match(%v, %v, %q) = %v, want %v", tc.f, tc.side, tc.peer, tc.host, got, tc.want)
		}
	}
}

// A subscriber that does not read loses lines, counted; the session never
// waits for it.
func TestSubscriber_SlowReaderDropsLines(t *testing.T) {
	h := fixedHub()
	sub := h.Subscribe(Filter{})
	f := &fakeConn{}
	c := h.Inbound(netip.MustParseAddrPort("192.0.2.7:50123"), func() string { return "S1" })(f)
	c.Write([]byte("220 ready\r\n"))
	for range queueLen + 10 {
		c.Write([]byte("250 OK\r\n"))
	}
	if n := sub.Dropped(); n != 12 { // the "watching" note and the greeting took two places
		t.Errorf("dropped %d lines, want 12", n)
	}
	sub.Close()
	if h.Active() {
		t.Error("the hub is still active after its only subscriber left")
	}
}

// With nobody attached a traced line costs one atomic load.
func BenchmarkConn_NobodyAttached(b *testing.B) {
	h := NewHub()
	f := &fakeConn{}
	c := h.Inbound(netip.MustParseAddrPort("192.0.2.7:50123"), func() string { return "S1" })(f)
	line := []byte("250 2.1.5 OK\r\n")
	b.ReportAllocs()
	for b.Loop() {
		c.Write(line)
	}
}

func BenchmarkConn_Unwrapped(b *testing.B) {
	var c net.Conn = &fakeConn{}
	line := []byte("250 2.1.5 OK\r\n")
	b.ReportAllocs()
	for b.Loop() {
		c.Write(line)
	}
}

// FuzzFeed: any bytes in any chunks, either side, give whole trace lines,
// and whatever state they leave, what follows AUTH PLAIN is never shown.
func FuzzFeed(f *testing.F) {
	for _, st := range session1 {
		f.Add([]byte(st.c), []byte(st.s), uint8(7))
	}
	f.Add([]byte("DATA\r\n"), []byte("354 go\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, client, server []byte, cut uint8) {
		h := fixedHub()
		sub := h.Subscribe(Filter{})
		defer sub.Close()
		f := &fakeConn{}
		c := h.Inbound(netip.MustParseAddrPort("192.0.2.7:50123"), func() string { return "S1" })(f)
		n := int(cut%16) + 1
		c.Write([]byte("220 ready\r\n"))
		for len(client) > 0 || len(server) > 0 {
			k := min(n, len(client))
			if k > 0 {
				f.next = client[:k]
				c.Read(make([]byte, k))
				client = client[k:]
			}
			k = min(n, len(server))
			c.Write(server[:k])
			server = server[k:]
		}
		c.Write([]byte("250 OK\r\n"))
		c.Read(make([]byte, 0))
		f.next = []byte("\r\nAUTH PLAIN U0VDUkVUU0VDUkVU\r\n")
		c.Read(make([]byte, 64))
		for _, l := range strings.SplitAfter(drain(sub), "\n") {
			if l == "" {
				continue
			}
			if !strings.HasPrefix(l, "09:30:00.000 in  S1 192.0.2.7:50123 ") || strings.Count(l, "\n") != 1 {
				t.Fatalf("bad trace line %q", l)
			}
			if strings.Contains(l, "U0VDUkVUU0VDUkVU") && !strings.Contains(l, "SEND -> [") {
				t.Fatalf("secret shown: %q", l)
			}
		}
	})
}
