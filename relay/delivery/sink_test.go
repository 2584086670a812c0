package delivery

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is an in-process go-smtp server on 127.0.0.1 that records what it
// receives and answers per the test's hooks.
type sink struct {
	srv  *smtp.Server
	addr string

	// Hooks, set before the first connection.
	mailReply func(from string) error
	rcptReply func(rcpt string) error
	dataReply func() error
	user      string // AUTH username and password; "" means no AUTH
	pass      string
	discard   bool // count messages instead of keeping them (benchmarks)

	mu       sync.Mutex
	count    int // messages received
	accepted int // TCP connections accepted
	open     int // TCP connections open now
	maxOpen  int
	conns    []net.Conn
	helos    []string
	msgs     []received
	auths    []string
}

type received struct {
	from  string
	rcpts []string
	data  []byte
	tls   bool
	user  string
}

type sinkOption func(*sink)

func withTLS(cert tls.Certificate) sinkOption {
	return func(s *sink) { s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

func withAuth(user, pass string, allowInsecure bool) sinkOption {
	return func(s *sink) {
		s.user, s.pass = user, pass
		s.srv.AllowInsecureAuth = allowInsecure
	}
}

func newSink(t testing.TB, opts ...sinkOption) *sink {
	t.Helper()
	s := &sink{}
	s.srv = smtp.NewServer(sinkBackend{s})
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = nopLogger{}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go s.srv.Serve(&countingListener{Listener: ln, s: s})
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *sink) connCount() (accepted, maxOpen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.maxOpen
}

// dropConns closes every connection from the server side, as a server
// restart or an idle timeout at the next hop would.
func (s *sink) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

type countingListener struct {
	net.Listener
	s *sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.accepted++
	l.s.open++
	l.s.maxOpen = max(l.s.maxOpen, l.s.open)
	l.s.conns = append(l.s.conns, c)
	l.s.mu.Unlock()
	return &countedConn{Conn: c, s: l.s}, nil
}

type countedConn struct {
	net.Conn
	s    *sink
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

type sinkBackend struct{ s *sink }

func (b sinkBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.helos = append(b.s.helos, c.Hostname())
	b.s.mu.Unlock()
	_, isTLS := c.TLSConnectionState()
	return &sinkSession{s: b.s, tls: isTLS}, nil
}

type sinkSession struct {
	s     *sink
	tls   bool
	user  string
	from  string
	rcpts []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.mailReply != nil {
		if err := ss.s.mailReply(from); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.rcptReply != nil {
		if err := ss.s.rcptReply(to); err != nil {
			return err
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	if ss.s.discard {
		_, err := io.Copy(io.Discard, r)
		ss.s.mu.Lock()
		ss.s.count++
		ss.s.mu.Unlock()
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.dataReply != nil {
		if err := ss.s.dataReply(); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, received{from: ss.from, rcpts: ss.rcpts, data: data, tls: ss.tls, user: ss.user})
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		ss.s.mu.Lock()
		ss.s.auths = append(ss.s.auths, mech+":"+user)
		ss.s.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (go-sasl has none).
type loginServer struct {
	user  string
	state int
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		if resp == nil {
			l.state = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.state = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.state = string(resp), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// rawSink is a scripted SMTP server that records the exact bytes it gets,
// for what go-smtp's server would hide: command lines as sent, the DATA
// payload before unstuffing (a BDAT message's chunks joined), missing
// extensions, and stalls.
type rawSink struct {
	addr  string
	ext   []string // EHLO keywords after the first line
	stall string   // "greeting", "body" (stop reading after 354), "dot" (no reply to the final dot), "rset" (close after RSET), "chunk" (refuse the first BDAT chunk)

	mu       sync.Mutex
	commands []string
	payloads [][]byte
	accepted int
	done     chan struct{}
}

func newRawSink(t testing.TB, stall string, ext ...string) *rawSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSink{addr: ln.Addr().String(), ext: ext, stall: stall, done: make(chan struct{})}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.accepted++
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-r.done; c.Close() }()
				r.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(r.done)
		ln.Close()
		wg.Wait()
	})
	return r
}

func (r *rawSink) serve(c net.Conn) {
	if r.stall == "greeting" {
		<-r.done
		return
	}
	br := bufio.NewReader(c)
	io.WriteString(c, "220 raw.test ESMTP\r\n")
	var rcpts int           // accepted in this transaction
	var chunks bytes.Buffer // BDAT chunks so far
	greeted := false        // a strict server: one EHLO per connection
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		r.mu.Lock()
		r.commands = append(r.commands, cmd)
		r.mu.Unlock()
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		switch verb {
		case "EHLO":
			if greeted {
				io.WriteString(c, "503 5.5.1 duplicate EHLO\r\n")
				continue
			}
			greeted = true
			reply := "250-raw.test\r\n"
			for _, e := range r.ext {
				reply += "250-" + e + "\r\n"
			}
			io.WriteString(c, reply+"250 HELP\r\n")
		case "DATA":
			io.WriteString(c, "354 go ahead\r\n")
			if r.stall == "body" {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetReadBuffer(4096)
				}
				<-r.done
				return
			}
			var payload bytes.Buffer
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				payload.WriteString(l)
				if l == ".\r\n" {
					break
				}
			}
			r.mu.Lock()
			r.payloads = append(r.payloads, payload.Bytes())
			r.mu.Unlock()
			if r.stall == "dot" {
				<-r.done
				return
			}
			io.WriteString(c, "250 2.0.0 queued as RAW1\r\n")
		case "BDAT":
			f := strings.Fields(cmd)
			size, err := strconv.Atoi(f[1])
			if err != nil {
				return
			}
			if _, err := io.CopyN(&chunks, br, int64(size)); err != nil {
				return
			}
			last := len(f) == 3 && f[2] == "LAST"
			switch {
			case rcpts == 0:
				io.WriteString(c, "554 5.5.1 no valid recipients\r\n")
				chunks.Reset()
			case r.stall == "chunk":
				io.WriteString(c, "552 5.3.4 chunk refused\r\n")
				chunks.Reset()
			case !last:
				fmt.Fprintf(c, "250 2.0.0 %d octets\r\n", size)
			default:
				r.mu.Lock()
				r.payloads = append(r.payloads, bytes.Clone(chunks.Bytes()))
				r.mu.Unlock()
				chunks.Reset()
				io.WriteString(c, "250 2.0.0 queued as RAW1\r\n")
			}
		case "MAIL":
			rcpts = 0
			chunks.Reset()
			io.WriteString(c, "250 ok\r\n")
		case "RSET":
			rcpts = 0
			chunks.Reset()
			io.WriteString(c, "250 ok\r\n")
			if r.stall == "rset" {
				return // closes the session right after RSET
			}
		case "RCPT":
			if strings.Contains(strings.ToLower(cmd), "<drop") {
				return // the connection is lost while replies are pending
			}
			if strings.Contains(strings.ToLower(cmd), "<bad") {
				io.WriteString(c, "550 5.1.1 no such user\r\n")
			} else {
				rcpts++
				io.WriteString(c, "250 ok\r\n")
			}
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}

func (r *rawSink) recorded() (commands []string, payloads [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.commands...), append([][]byte(nil), r.payloads...)
}

// testCert is a self-signed certificate for 127.0.0.1 and mx.test, made in
// memory once, with its PEM written to caFile.
type testCert struct {
	cert   tls.Certificate
	caFile string
}

var (
	certOnce sync.Once
	certVal  testCert
	certErr  error
	certDir  string
)

func makeCert(t testing.TB) testCert {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "mx.test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			DNSNames:              []string{"mx.test"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		certDir, err = os.MkdirTemp("", "delivery-test-ca")
		if err != nil {
			certErr = err
			return
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		caFile := filepath.Join(certDir, "ca.pem")
		if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
			certErr = err
			return
		}
		certVal = testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile: caFile}
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal
}

func TestMain(m *testing.M) {
	code := m.Run()
	if certDir != "" {
		os.RemoveAll(certDir)
	}
	os.Exit(code)
}

// connections is how many connections the sink accepted.
func (r *rawSink) connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}
