//go:build unix

package gateway

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
	"github.com/sekisho/sekisho/routing"
)

// BenchmarkReconstructDelivery is the delay reconstruction adds to
// delivery, and whether mail without attachments notices it, through a
// live engine whose sanitize stage turns Office documents and PDFs into
// image PDFs (two converters, as on two cores):
//
//   - docx-delay, pdf-delay: one internet message at a time with a
//     two-page docx (a ten-page PDF), each waited for at the inner
//     server: delay-s/msg is from 250 to delivered, the conversion
//     included.
//   - plain: internet messages without attachments (sanitized all the
//     same), 8 clients: msgs/s.
//   - plain-beside-conversions: the same, in the same run, while two
//     messages with a docx are converted all the time: msgs/s to compare
//     with plain's.
func BenchmarkReconstructDelivery(b *testing.B) {
	d := converttest.Documents(b)
	report, _ := os.ReadFile(d.Report)
	pages, _ := os.ReadFile(d.Pages)
	docx := string(converttest.Message("a@example.com", "kakari@docs.city.toyokawa.lg.jp", "docx",
		converttest.File{Name: "report.docx", Type: "application/octet-stream", Data: report})) + ".\r\n"
	pdf := string(converttest.Message("a@example.com", "kakari@docs.city.toyokawa.lg.jp", "pdf",
		converttest.File{Name: "pages.pdf", Type: "application/pdf", Data: pages})) + ".\r\n"
	plain := "From: <a@example.com>\r\nTo: <tanaka@city.toyokawa.lg.jp>\r\nSubject: plain\r\n\r\nNo attachment.\r\n.\r\n"

	start := func(b *testing.B) (*Engine, string) {
		sec, dir := testSections(b)
		sec.Accounts.Domains = append(sec.Accounts.Domains, accounts.DomainConfig{Name: "docs.city.toyokawa.lg.jp"})
		sec.Accounts.Accounts = append(sec.Accounts.Accounts, accounts.AccountConfig{Address: "kakari@docs.city.toyokawa.lg.jp"})
		sec.Routing.Routes = append(sec.Routing.Routes, routing.RouteConfig{Name: "docs", Domain: "docs.city.toyokawa.lg.jp",
			TargetConfig: routing.TargetConfig{Targets: []string{"dir:" + filepath.Join(dir, "docs")}}})
		sec.Relay.Limits.MaxMessageBytes = 4 << 20
		sc := &sec.Relay.Sanitize
		sc.Rules = []sanitize.Rule{{Source: "internet"}}
		sc.Quarantine.Dir = filepath.Join(dir, "quarantine")
		sc.Reconstruct = sanitize.Reconstruct{Office: sanitize.ActionImagePDF, PDF: sanitize.ActionImagePDF, Image: sanitize.ActionReencode,
			Encrypted: sanitize.ActionRemove}
		sc.Convert.Workers = 2
		sc.Convert.TempDir = filepath.Join(dir, "convert")
		sec.Relay.Delivery.Workers = 8
		// One loopback client sends it all: no per-client limit.
		sec.Relay.RateLimits.Client = ratelimit.ClientLimits{}
		e := startEngine(b, sec)
		return e, dir
	}
	delivered := func(dir, route string) int {
		files, _ := filepath.Glob(filepath.Join(dir, route, "*.eml"))
		return len(files)
	}
	// waitFor returns an error rather than stop the benchmark: it also
	// runs on the background senders' goroutines.
	waitFor := func(dir, route string, n int) error {
		deadline := time.Now().Add(10 * time.Minute)
		for delivered(dir, route) < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d delivered to %s", delivered(dir, route), n, route)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	for _, tc := range []struct{ name, data string }{{"docx-delay", docx}, {"pdf-delay", pdf}} {
		b.Run(tc.name, func(b *testing.B) {
			e, dir := start(b)
			addr := e.Addrs()[0].String()
			b.ResetTimer()
			t0 := time.Now()
			for i := range b.N {
				if err := sendTo(addr, "kakari@docs.city.toyokawa.lg.jp", 1, tc.data); err != nil {
					b.Fatal(err)
				}
				if err := waitFor(dir, "docs", i+1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(time.Since(t0).Seconds()/float64(b.N), "delay-s/msg")
		})
	}
	for _, beside := range []bool{false, true} {
		name := "plain"
		if beside {
			name = "plain-beside-conversions"
		}
		b.Run(name, func(b *testing.B) {
			e, dir := start(b)
			addr := e.Addrs()[0].String()
			stop := make(chan struct{})
			var converted atomic.Int64
			var bgErr atomic.Value
			var bg sync.WaitGroup
			if beside {
				// Two conversions in flight the whole time.
				for range 2 {
					bg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							if sendTo(addr, "kakari@docs.city.toyokawa.lg.jp", 1, docx) != nil {
								return
							}
							converted.Add(1)
							if err := waitFor(dir, "docs", int(converted.Load())); err != nil {
								bgErr.Store(err)
								return
							}
						}
					})
				}
				if err := waitFor(dir, "docs", 1); err != nil { // conversions are under way
					b.Fatal(err)
				}
			}
			const clients = 8
			b.ResetTimer()
			t0 := time.Now()
			if err := sendSplit(addr, "tanaka@city.toyokawa.lg.jp", b.N, clients, plain); err != nil {
				b.Fatal(err)
			}
			if err := waitFor(dir, "inner", b.N); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msgs/s")
			b.StopTimer()
			close(stop)
			bg.Wait()
			if err, ok := bgErr.Load().(error); ok {
				b.Fatal(err)
			}
		})
	}
}

// sendTo sends the message data (dot-stuffed, ending with ".\r\n") n
// times over one connection to rcpt.
func sendTo(addr, rcpt string, n int, data string) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := textproto.NewConn(nc)
	defer c.Close()
	step := func(line string, code int) error {
		if line != "" {
			if err := c.PrintfLine("%s", line); err != nil {
				return err
			}
		}
		if _, msg, err := c.ReadResponse(code); err != nil {
			return fmt.Errorf("%s: %v %s", line, err, msg)
		}
		return nil
	}
	if err := step("", 220); err != nil {
		return err
	}
	if err := step("EHLO mx.example.com", 250); err != nil {
		return err
	}
	for range n {
		for _, s := range []struct {
			line string
			code int
		}{{"MAIL FROM:<alice@example.com>", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}} {
			if err := step(s.line, s.code); err != nil {
				return err
			}
		}
		if _, err := c.W.WriteString(data); err != nil {
			return err
		}
		if err := c.W.Flush(); err != nil {
			return err
		}
		if err := step("", 250); err != nil {
			return err
		}
	}
	return step("QUIT", 221)
}
