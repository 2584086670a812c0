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

	"github.com/emersion/go-smtp"
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

// message builds message i of the given total size in bytes (CRLF line
// ends, 76-character body lines), sharing the body between messages.
func (j job) message(i int, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(512 + len(body))
	fmt.Fprintf(&b, "From: Bench Sender <%s>\r\n", j.sender())
	fmt.Fprintf(&b, "To: <%s>\r\n", j.recipient(i))
	fmt.Fprintf(&b, "Cc: <%s>\r\n", strings.Replace(j.recipient(i+1), "@"+j.lgDomain, "@"+j.regional, 1))
	fmt.Fprintf(&b, "Subject: sekisho-bench %d\r\n", i)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%s@bench.invalid>\r\n", i, j.runID)
	fmt.Fprintf(&b, "X-Bench-Run: %s\r\nX-Bench-Seq: %d\r\n", j.runID, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.Write(body)
	return b.Bytes()
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
	body := bodyFor(opts.size)
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
			var c *smtp.Client
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
					err = sendOne(c, j, i, body)
				}
				if err != nil {
					errs[errorKey(err)]++
					if c != nil {
						c.Close()
						c = nil
					}
					continue
				}
				last = time.Now()
				lat = append(lat, last.Sub(start))
				if !opts.reuse {
					c.Quit()
					c = nil
				}
			}
			if c != nil {
				c.Quit()
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

func dialClient(addr string, timeout time.Duration) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if err := c.Hello("client.bench.invalid"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func sendOne(c *smtp.Client, j job, i int, body []byte) error {
	if err := c.Mail(j.sender(), nil); err != nil {
		return err
	}
	if err := c.Rcpt(j.recipient(i), nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(j.message(i, body)); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// errorKey groups errors by their reply or cause, without the parts that
// differ per message (queue ids, ports).
func errorKey(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], firstWords(se.Message, 6))
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
