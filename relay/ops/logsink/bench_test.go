package logsink

import (
	"io"
	"log/slog"
	"testing"
)

// The receive line, as a session logs it, through slog's own text handler
// and through the sink: routed to the main stream, and routed to an epost
// file. The difference is the sink's cost per record.
func BenchmarkReceiveLine(b *testing.B) {
	log := func(l *slog.Logger) {
		l.Info("accepted", "kind", "receive", "id", "01JD0000000000000000000001", "helo", "pc01.city.example.lg.jp",
			"auth", "", "from", "tanaka@city.example.lg.jp", "orig_from", "tanaka@city.example.jp",
			"rcpts", "suzuki@city.example.lg.jp", "orig_rcpts", "suzuki@city.example.jp",
			"size", int64(2048), "source", "inner", "tls", false, "verdict", "accept", "rules", "inner-networks", "took_ms", int64(3))
	}
	sinkTo := func(b *testing.B, outs []Output) *slog.Logger {
		s, err := New(Options{Format: "text", Level: "info", Stderr: io.Discard, Outputs: outs})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return slog.New(s.Handler()).With("session", "k3j5a", "client", "10.1.2.3")
	}
	b.Run("slog-text", func(b *testing.B) {
		l := slog.New(slog.NewTextHandler(io.Discard, nil)).With("session", "k3j5a", "client", "10.1.2.3")
		b.ReportAllocs()
		for b.Loop() {
			log(l)
		}
	})
	b.Run("sink-main-text", func(b *testing.B) {
		l := sinkTo(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			log(l)
		}
	})
	b.Run("sink-epost-file", func(b *testing.B) {
		l := sinkTo(b, []Output{{Kinds: []string{"receive"}, File: "/dev/null"}})
		b.ReportAllocs()
		for b.Loop() {
			log(l)
		}
	})
}
