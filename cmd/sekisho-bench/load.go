package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// job is what every message asks of the server under test, the same for
// sekisho and for Postfix: a recipient among the valid accounts of the
// relay domain, and a sender in the regional domain that must be rewritten
// to the LG domain in the envelope and in the header (From, and a Cc
// address in the regional domain).
type job struct {
	runID      string
	lgDomain   string // the relay domain: recipients, and what senders become
	regional   string // the sender's domain before rewriting
	recipients int    // valid accounts: user00001 .. userNNNNN
}

func (j job) sender() string { return "sender@" + j.regional }

// recipient returns the valid account message i goes to.
func (j job) recipient(i int) string {
	return fmt.Sprintf("user%05d@%s", i%j.recipients+1, j.lgDomain)
}

// header appends the header of message i to dst. Each message has its
// own recipient, Cc and sequence number; the rest is the run's.
func (j job) header(dst []byte, i int, date string) []byte {
	dst = fmt.Appendf(dst, "From: Bench Sender <%s>\r\n", j.sender())
	dst = fmt.Appendf(dst, "To: <%s>\r\n", j.recipient(i))
	dst = fmt.Appendf(dst, "Cc: <%s>\r\n", strings.Replace(j.recipient(i+1), "@"+j.lgDomain, "@"+j.regional, 1))
	dst = fmt.Appendf(dst, "Subject: sekisho-bench %d\r\n", i)
	dst = fmt.Appendf(dst, "Date: %s\r\n", date)
	dst = fmt.Appendf(dst, "Message-ID: <%d.%s@bench.invalid>\r\n", i, j.runID)
	dst = fmt.Appendf(dst, "X-Bench-Run: %s\r\nX-Bench-Seq: %d\r\n", j.runID, i)
	return append(dst, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"...)
}

// bodyFor returns a body that brings a message with a ~400-byte header to
// size bytes.
func bodyFor(size int) []byte {
	n := max(size-400, 80)
	line := []byte(strings.Repeat("sekisho benchmark body text 0123456789 ", 2)[:76] + "\r\n")
	var b bytes.Buffer
	for b.Len()+len(line) <= n {
		b.Write(line)
	}
	if b.Len() == 0 {
		b.Write(line)
	}
	return b.Bytes()
}

// dataBody is body as DATA sends it, built once for a run: dot-stuffed,
// ended with CRLF and the final dot.
func dataBody(body []byte) []byte {
	enc := smtpd.TextEncoder{Dots: true}
	out := enc.End(enc.Append(nil, body))
	return append(out, ".\r\n"...)
}

// loadOptions is one load run.
type loadOptions struct {
	target      string
	messages    int
	concurrency int
	size        int
	reuse       bool // one connection per worker, else one per message
	timeout     time.Duration
}

// loadResult is what the clients saw.
type loadResult struct {
	accepted  int
	failed    int
	errors    map[string]int
	latencies []time.Duration // one per accepted message
	start     time.Time
	lastOK    time.Time
}

// runLoad sends opts.messages messages with opts.concurrency clients. The
// latency of a message runs from the start of its transaction (the
// connection when each message has its own, MAIL otherwise) to the 250
// reply after its data.
func runLoad(opts loadOptions, j job) *loadResult {
	body := dataBody(bodyFor(opts.size))
	date := time.Now().Format(time.RFC1123Z)
	var next atomic.Int64
	res := &loadResult{errors: map[string]int{}, start: time.Now()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < opts.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var last time.Time
			errs := map[string]int{}
			var c *client
			var hdr []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= opts.messages {
					break
				}
				start := time.Now()
				var err error
				if c == nil {
					c, err = dialClient(opts.target, opts.timeout)
				}
				if err == nil {
					hdr = j.header(hdr[:0], i, date)
					err = c.send(j.sender(), j.recipient(i), hdr, body)
				}
				if err != nil {
					errs[errorKey(err)]++
					if c != nil {
						c.close()
						c = nil
					}
					continue
				}
				last = time.Now()
				lat = append(lat, last.Sub(start))
				if !opts.reuse {
					c.quit()
					c = nil
				}
			}
			if c != nil {
				c.quit()
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.accepted += len(lat)
			for k, n := range errs {
				res.errors[k] += n
				res.failed += n
			}
			if last.After(res.lastOK) {
				res.lastOK = last
			}
		}()
	}
	wg.Wait()
	return res
}

// errorKey groups errors by their reply or cause, without the parts that
// differ per message (queue ids, ports).
func errorKey(err error) string {
	var re *replyError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.code, firstWords(re.text, 7))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + firstWords(oe.Err.Error(), 6)
	}
	return firstWords(err.Error(), 8)
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// percentile returns the p-th percentile (0 < p <= 100) by nearest rank
// of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
}
