package queue

import (
	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
)

// testConfig is a small spool: segments roll after a few dozen messages
// and messages over 4 KiB get their own file.
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dir = dir
	c.SegmentSize = 64 << 10
	c.InlineMax = 4 << 10
	c.MaxBytes = 1 << 30
	c.MaxMessages = 1 << 20
	c.CompactAfter = time.Hour
	return c
}

func openTest(t testing.TB, cfg Config, opts ...Option) *Spool {
	t.Helper()
	q, err := Open(cfg, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func testEnvelope(rcpts ...string) Envelope {
	env := Envelope{
		From:       "sender@city.example.lg.jp",
		ReceivedAt: time.Date(2025, 4, 1, 9, 30, 0, 0, time.UTC),
		Source:     rewrite.SourceInner,
		ClientIP:   "192.0.2.10",
		Helo:       "mail.city.example.lg.jp",
		BodyType:   "8BITMIME",
	}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, Recipient{Addr: r, OrigAddr: r, Notify: "FAILURE,DELAY"})
	}
	return env
}

// msgData is a deterministic message of exactly size bytes.
func msgData(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Subject: test %d\r\nFrom: sender@city.example.lg.jp\r\n\r\n", i)
	for b.Len() < size {
		fmt.Fprintf(&b, "line %d of message %d: 関所を通る\r\n", b.Len(), i)
	}
	return b.Bytes()[:size]
}

func enqueue(t testing.TB, q *Spool, env Envelope, data []byte) ID {
	t.Helper()
	id, err := q.Enqueue(env, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

func readAll(t testing.TB, q *Spool, id ID) []byte {
	t.Helper()
	rc, err := q.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", id, err)
	}
	return b
}

// sameMessages compares two listings, ignoring claims (memory only) and
// the monotonic clock readings inside times.
func sameMessages(t *testing.T, got, want []Message) {
	t.Helper()
	norm := func(ms []Message) []Message {
		out := make([]Message, len(ms))
		for i, m := range ms {
			m.Claimed = false
			m.Envelope.ReceivedAt = m.Envelope.ReceivedAt.UTC()
			m.Rcpts = append([]RcptState(nil), m.Rcpts...)
			for j := range m.Rcpts {
				m.Rcpts[j].NextAttempt = roundUTC(m.Rcpts[j].NextAttempt)
				m.Rcpts[j].Updated = roundUTC(m.Rcpts[j].Updated)
			}
			out[i] = m
		}
		return out
	}
	g, w := norm(got), norm(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("messages differ:\n got %+v\nwant %+v", g, w)
	}
}

func roundUTC(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Round(0).UTC()
}

// recoverOnly runs the owner's recovery (reporting every problem) without
// the lock or the background loops, as a quick stand-in for Open+Close.
func recoverOnly(t *testing.T, cfg Config) *Spool {
	t.Helper()
	q := newSpool(cfg, buildOptions(nil))
	must(t, q.recover())
	q.closed = true
	return q
}
