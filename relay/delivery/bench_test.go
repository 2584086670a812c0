package delivery

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// message2KiB is a 2 KiB message with ordinary 76-column lines.
func message2KiB() Message {
	var b bytes.Buffer
	b.WriteString("From: a@example.jp\r\nTo: b@example.jp\r\nSubject: benchmark\r\n\r\n")
	line := strings.Repeat("x", 74) + "\r\n"
	for b.Len()+len(line) <= 2048 {
		b.WriteString(line)
	}
	body := b.Bytes()
	return Message{
		From:  "a@example.jp",
		Rcpts: []string{"b@example.jp"},
		Size:  int64(len(body)),
		Body:  func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	}
}

func benchmarkDeliver(b *testing.B, conns, parallelism int) {
	s := newSink(b, func(s *sink) { s.discard = true })
	c := testClient(b, func(o *Options) { o.MaxConnsPerTarget = conns })
	tg := plainTarget(s.addr)
	m := message2KiB()
	b.SetBytes(m.Size)
	b.ResetTimer()
	if parallelism == 0 {
		for i := 0; i < b.N; i++ {
			res, err := c.Deliver(context.Background(), tg, m)
			if err != nil || !res[0].Delivered {
				b.Fatalf("%+v %v", res, err)
			}
		}
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.Deliver(context.Background(), tg, m)
				if err != nil || !res[0].Delivered {
					b.Errorf("%+v %v", res, err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	accepted, _ := s.connCount()
	b.ReportMetric(float64(accepted), "conns")
}

// BenchmarkDeliver2KiB sends one message after another over one reused
// connection.
func BenchmarkDeliver2KiB(b *testing.B) { benchmarkDeliver(b, 1, 0) }

// BenchmarkDeliver2KiBParallel sends from 8 goroutines over at most 8
// reused connections.
func BenchmarkDeliver2KiBParallel(b *testing.B) { benchmarkDeliver(b, 8, 4) }
