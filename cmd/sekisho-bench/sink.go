package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// sink is the next hop of the server under test: an SMTP server on
// loopback that counts the benchmark's messages as they arrive, and checks
// that the job was done (the sender rewritten to the LG domain in the
// envelope and the header, each message delivered once).
type sink struct {
	srv *smtpd.Server
	ln  net.Listener
	job job

	mu          sync.Mutex
	seen        map[int]bool
	delivered   int // distinct benchmark messages
	duplicates  int
	unrewritten int
	foreign     int // messages that are not this run's (bounces, strays)
	lastAt      time.Time
	notify      chan struct{}
}

// startSink listens on addr (127.0.0.1:0 for any port) and serves.
func startSink(addr string, j job) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln, job: j, seen: map[int]bool{}, notify: make(chan struct{}, 1)}
	// Normalize: the sink counts messages; what a server under test does
	// with line endings is the conformance tests' business.
	srv := &smtpd.Server{
		Config: smtpd.Config{Hostname: "sink.bench.invalid", MaxRecipients: 1000, MaxMessageBytes: 64 << 20,
			MaxLineLength: 4096, WriteTimeout: time.Minute, DSN: true, SMTPUTF8: true},
		NewHandler: func(*smtpd.Conn) smtpd.Handler { return &sinkSession{s: s} },
	}
	s.srv = srv
	go srv.Serve(ln)
	return s, nil
}

func (s *sink) Addr() string { return s.ln.Addr().String() }

func (s *sink) Close() { s.srv.Close() }

// counts returns a snapshot of the tallies.
func (s *sink) counts() (delivered, duplicates, unrewritten, foreign int, lastAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered, s.duplicates, s.unrewritten, s.foreign, s.lastAt
}

// waitFor blocks until n distinct messages have arrived or the deadline
// passes.
func (s *sink) waitFor(n int, deadline time.Time) {
	for {
		d, _, _, _, _ := s.counts()
		if d >= n {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		select {
		case <-s.notify:
		case <-time.After(min(left, 200*time.Millisecond)):
		}
	}
}

func (s *sink) record(seq int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < 0 {
		s.foreign++
		return
	}
	if s.seen[seq] {
		s.duplicates++
		return
	}
	s.seen[seq] = true
	s.delivered++
	s.lastAt = time.Now()
	if !ok {
		s.unrewritten++
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

type sinkSession struct {
	s    *sink
	from string
}

func (ss *sinkSession) Connect() smtpd.Reply                      { return smtpd.R(220, "", "") }
func (ss *sinkSession) Helo(string, bool) smtpd.Reply             { return smtpd.R(250, "", "") }
func (ss *sinkSession) AuthMechanisms() []string                  { return nil }
func (ss *sinkSession) Auth(string) (sasl.Server, error)          { return nil, errors.New("no AUTH") }
func (ss *sinkSession) LinePolicy() smtpd.LinePolicy              { return smtpd.LineNormalize }
func (ss *sinkSession) Reset()                                    { ss.from = "" }
func (ss *sinkSession) Close()                                    {}
func (ss *sinkSession) Rcpt(string, smtpd.RcptParams) smtpd.Reply { return smtpd.R(250, "2.1.5", "OK") }

func (ss *sinkSession) Mail(from string, _ smtpd.MailParams) smtpd.Reply {
	ss.from = from
	return smtpd.R(250, "2.1.0", "OK")
}

// headerReaders pools the sink's header readers.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// Data reads the header for the run and sequence fields and the rewritten
// addresses, and discards the body (straight from the read buffer).
func (ss *sinkSession) Data(m *smtpd.MessageReader) smtpd.Reply {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(m)
	defer func() { br.Reset(nil); headerReaders.Put(br) }()
	seq, rewritten := scanHeader(br, ss.s.job, ss.from)
	if _, err := br.WriteTo(io.Discard); err != nil {
		return smtpd.R(451, "4.3.0", err.Error())
	}
	ss.s.record(seq, rewritten)
	return smtpd.R(250, "2.0.0", "OK")
}

// scanHeader reads a message header up to the blank line and returns the
// benchmark sequence number (-1 for a message that is not this run's) and
// whether the job was done: the envelope sender, the From and the Cc
// addresses in the LG domain, none left in the regional one.
func scanHeader(br *bufio.Reader, j job, envFrom string) (seq int, rewritten bool) {
	seq = -1
	ours := true
	ok := strings.HasSuffix(strings.ToLower(envFrom), "@"+j.lgDomain)
	sawFrom, sawCc := false, false
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.ToLower(strings.TrimSpace(value))
		switch strings.ToLower(name) {
		case "x-bench-run":
			ours = ours && value == strings.ToLower(j.runID)
		case "x-bench-seq":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 {
				seq = n
			}
		case "from":
			sawFrom = true
			ok = ok && strings.Contains(value, "@"+j.lgDomain+">") && !strings.Contains(value, "@"+j.regional)
		case "cc":
			sawCc = true
			ok = ok && strings.Contains(value, "@"+j.lgDomain+">") && !strings.Contains(value, "@"+j.regional)
		}
	}
	if !ours {
		seq = -1
	}
	return seq, ok && sawFrom && sawCc
}
