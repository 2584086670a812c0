package milter

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"
)

// benchMessage is a typical small message: 8 header fields, 4 KB body.
func benchMessage() (hdr, body []byte) {
	h := "Received: from mx.example.com\r\nFrom: alice@example.com\r\nTo: bob@city.lg.jp\r\nCc: carol@city.lg.jp\r\n" +
		"Subject: report\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMessage-ID: <b1@example.com>\r\nMIME-Version: 1.0\r\n"
	return []byte(h), []byte(strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 64))
}

// BenchmarkNoopMilter is the cost of one message through a milter that
// answers continue to everything, on loopback. Compare with
// BenchmarkLoopbackRoundTrip times the round trips it reports.
func BenchmarkNoopMilter(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return gomilter.NoOpMilter{} }}
	go srv.Serve(l)
	defer srv.Close()
	c := New("gw", []Config{{Name: "noop", Address: "inet:" + l.Addr().String()}})
	hdr, body := benchMessage()
	txn := testTxn()
	txn.Header, txn.Body = hdr, bytes.NewReader(body)
	// Negotiation, connect, helo, mail, 2 rcpt, 8 header fields, end of
	// header, 1 body chunk, end of body; QUIT has no answer.
	b.ReportMetric(16, "roundtrips/op")
	b.ResetTimer()
	for b.Loop() {
		if r := c.Check(context.Background(), txn); r.Action != Accept || len(r.Failed) > 0 {
			b.Fatalf("%+v", r)
		}
	}
}

// BenchmarkLoopbackRoundTrip is one small request and answer on an open
// loopback TCP connection, the unit a milter conversation is made of.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf[:16]); err != nil {
				return
			}
			if _, err := c.Write(buf[:5]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req, resp := make([]byte, 16), make([]byte, 5)
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackConnect is one TCP connection set up and closed, which
// every milter conversation also pays (there is no pooling).
func BenchmarkLoopbackConnect(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for b.Loop() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
