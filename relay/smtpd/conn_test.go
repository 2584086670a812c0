package smtpd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// testHandler accepts everything but the names in refuse, and records
// the messages.
type testHandler struct {
	c        *Conn
	connect  Reply
	policy   LinePolicy
	mu       *sync.Mutex
	messages *[]string
}

func (h *testHandler) Connect() Reply                   { return h.connect }
func (h *testHandler) Helo(string, bool) Reply          { return R(250, "", "") }
func (h *testHandler) AuthMechanisms() []string         { return []string{"PLAIN"} }
func (h *testHandler) Mail(string, MailParams) Reply    { return R(250, "2.1.0", "OK") }
func (h *testHandler) LinePolicy() LinePolicy           { return h.policy }
func (h *testHandler) Reset()                           {}
func (h *testHandler) Close()                           {}
func (h *testHandler) Auth(string) (sasl.Server, error) { return sasl.NewPlainServer(h.plain), nil }

func (h *testHandler) plain(_, user, pass string) error {
	if user == "u" && pass == "p" {
		return nil
	}
	return &Reply{535, "5.7.8", "Authentication credentials invalid"}
}

func (h *testHandler) Rcpt(to string, _ RcptParams) Reply {
	if strings.HasPrefix(to, "bad") {
		return R(550, "5.1.1", "No such user")
	}
	return R(250, "2.1.5", "OK")
}

func (h *testHandler) Data(m *MessageReader) Reply {
	b, err := io.ReadAll(m)
	if err != nil {
		return R(451, "4.3.0", err.Error())
	}
	h.mu.Lock()
	*h.messages = append(*h.messages, string(b))
	h.mu.Unlock()
	return R(250, "2.0.0", "queued")
}

// writeCounter counts the writes that reach the network.
type writeCounter struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

type countedConn struct {
	net.Conn
	l *writeCounter
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, l: l}, nil
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(b))
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

type testServer struct {
	srv      *Server
	addr     string
	wc       *writeCounter
	mu       sync.Mutex
	messages []string
}

// startServer runs a server on loopback; prep, if given, sees each
// connection first.
func startServer(t *testing.T, cfg Config, connect Reply, prep ...func(*Conn)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: l.Addr().String(), wc: &writeCounter{Listener: l}}
	if cfg.Hostname == "" {
		cfg.Hostname = "gw.test"
	}
	ts.srv = &Server{Config: cfg, NewHandler: func(c *Conn) Handler {
		for _, p := range prep {
			p(c)
		}
		return &testHandler{c: c, connect: connect, policy: LineNormalize, mu: &ts.mu, messages: &ts.messages}
	}}
	go ts.srv.Serve(ts.wc)
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

// client is a raw SMTP client: it sends bytes and reads whole replies.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads one reply and checks that it starts with want.
func (c *client) expect(want string) string {
	c.t.Helper()
	var all []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("want %q, read error %v after %q", want, err, all)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	got := strings.Join(all, "\n")
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("got %q, want %q", got, want)
	}
	return got
}

func (c *client) expectClosed() {
	c.t.Helper()
	if line, err := c.br.ReadString('\n'); err == nil {
		c.t.Fatalf("want the connection closed, got %q", line)
	}
}

func TestPipelinedGroupInOneWrite(t *testing.T) {
	ts := startServer(t, Config{MaxRecipients: 10}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220 gw.test ESMTP")
	c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<bad@d.test>\r\nDATA\r\n")
	ehlo := c.expect("250-gw.test\n250-PIPELINING")
	if !strings.Contains(ehlo, "CHUNKING") || !strings.Contains(ehlo, "LIMITS RCPTMAX=10") {
		t.Errorf("EHLO reply %q", ehlo)
	}
	c.expect("250 2.1.0")
	c.expect("250 2.1.5")
	c.expect("550 5.1.1")
	c.expect("354 ")
	ts.wc.mu.Lock()
	writes := append([]string(nil), ts.wc.writes...)
	ts.wc.mu.Unlock()
	if len(writes) != 2 || !strings.HasSuffix(writes[1], "354 Start mail input; end with <CRLF>.<CRLF>\r\n") {
		t.Fatalf("want the greeting and the group's replies in one write, got %q", writes)
	}
	c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	c.expect("250 2.0.0 queued")
	c.expect("221 2.0.0")
	if len(ts.messages) != 1 || ts.messages[0] != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("messages %q", ts.messages)
	}
}

func TestSequenceAndSyntax(t *testing.T) {
	ts := startServer(t, Config{MaxLineLength: 1000, MaxMessageBytes: 1000, DSN: true}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	for _, tc := range []struct{ send, want string }{
		{"MAIL FROM:<a@b>\r\n", "503 5.5.1"},
		{"helo\r\n", "250 gw.test"},
		{"MAIL FROM:<a@b> SIZE=10\r\n", "555 5.5.4"}, // no extension after HELO
		{"EHLO x\r\n", "250-gw.test"},
		{"RCPT TO:<a@b>\r\n", "503 5.5.1"},
		{"DATA\r\n", "503 5.5.1"},
		{"MAIL FROM:<a@b> SIZE=2000\r\n", "552 5.3.4"},
		{"MAIL FROM:<a@b> FOO=1\r\n", "555 5.5.4"},
		{"MAIL FROM:<a@b> SMTPUTF8\r\n", "555 5.5.4"}, // not offered
		{"MAIL FROM:<a@b> SIZE=1 SIZE=2\r\n", "501 5.5.4"},
		{"MAIL TO:<a@b>\r\n", "501 5.5.4"},
		{"MAIL FROM:<a@b\r\n", "501 5.5.4"},
		{"MAIL FROM:<> BODY=8BITMIME RET=HDRS ENVID=a+2Bb\r\n", "250 2.1.0"},
		{"MAIL FROM:<a@b>\r\n", "503 5.5.1"},
		{"RCPT TO:<>\r\n", "501 5.1.3"},
		{"RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS\r\n", "501 5.5.4"},
		{"RCPT TO:<c@d> NOTIFY=SUCCESS NOTIFY=FAILURE\r\n", "501 5.5.4"},
		{"RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d\r\n", "250 2.1.5"},
		{"DATA x\r\n", "501 5.5.4"},
		{"STARTTLS\r\n", "454 4.7.0"},
		{"NOOP\x00\r\n", "500 5.5.2"},
		{strings.Repeat("x", 1200) + "\r\n", "500 5.5.2 Line too long"},
		{"NOOP\r\n", "250 2.0.0"},
		{"RSET\r\n", "250 2.0.0"},
		{"QUIT\r\n", "221"},
	} {
		c.send(tc.send)
		c.expect(tc.want)
	}
}

// A refusal at the greeting is said and the connection closed, with the
// codes RFC 5321 §4.3.2 allows there: 554, or 421 for a temporary one.
func TestConnectRefused(t *testing.T) {
	for _, tc := range []struct {
		refuse Reply
		want   string
	}{
		{R(554, "5.7.1", "Go away"), "554 5.7.1 Go away"},
		{R(550, "5.7.25", "No reverse DNS"), "554 5.7.25 No reverse DNS"},
		{R(450, "4.7.25", "Reverse DNS lookup failed"), "421 4.7.25 Reverse DNS lookup failed"},
		{R(421, "4.7.0", "Too many connections"), "421 4.7.0 Too many connections"},
	} {
		ts := startServer(t, Config{}, tc.refuse)
		c := dial(t, ts.addr)
		c.expect(tc.want)
		c.expectClosed()
	}
}

func TestErrorLimit(t *testing.T) {
	ts := startServer(t, Config{ErrorLimit: 3}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	c.send("A\r\nB\r\nC\r\nD\r\n")
	c.expect("500")
	c.expect("500")
	c.expect("500")
	c.expect("421 4.7.0")
	c.expectClosed()
}

func TestAuth(t *testing.T) {
	ts := startServer(t, Config{}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	c.send("AUTH PLAIN\r\n")
	c.expect("503 5.5.1")
	c.send("EHLO x\r\n")
	if got := c.expect("250-"); !strings.Contains(got, "AUTH PLAIN") {
		t.Errorf("EHLO %q lacks AUTH", got)
	}
	c.send("AUTH CRAM-MD5\r\n")
	c.expect("504 5.5.4")
	c.send("AUTH PLAIN AHUAeA==\r\n") // u / x
	c.expect("535 5.7.8")
	c.send("AUTH PLAIN\r\n")
	c.expect("334 ")
	c.send("*\r\n")
	c.expect("501 5.7.0")
	c.send("AUTH PLAIN\r\n")
	c.expect("334 ")
	c.send("AHUAcA==\r\n") // u / p
	c.expect("235 2.7.0")
	c.send("AUTH PLAIN AHUAcA==\r\n")
	c.expect("503 5.5.1")
}

// SASL responses may be as long as RFC 4954 says mechanisms need (12,288
// octets), longer than a command line; longer ones are refused whole.
func TestAuthLongResponse(t *testing.T) {
	ts := startServer(t, Config{MaxLineLength: 1000}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	c.send("EHLO x\r\n")
	c.expect("250-")
	long := base64.StdEncoding.EncodeToString([]byte("\x00u\x00" + strings.Repeat("p", 9000))) // 12,004 octets
	c.send("AUTH PLAIN\r\n")
	c.expect("334 ")
	c.send(long + "\r\n")
	c.expect("535 5.7.8") // read whole and judged, not "line too long"
	c.send("AUTH PLAIN " + long + "\r\n")
	c.expect("535 5.7.8")
	c.send("AUTH PLAIN\r\n")
	c.expect("334 ")
	c.send(strings.Repeat("QUFB", 3100) + "\r\n") // 12,400 octets
	c.expect("500 5.5.2")
	c.send("MAIL FROM:<" + strings.Repeat("a", 2000) + "@b>\r\n") // only AUTH may be long
	c.expect("500 5.5.2")
	c.send("NOOP\r\n")
	c.expect("250 ")
}

// tlsOnlyAuth offers AUTH only under TLS, as the gateway's policy does by
// default, and refuses it otherwise with the policy's reply.
type tlsOnlyAuth struct{ *testHandler }

func (h tlsOnlyAuth) AuthMechanisms() []string {
	if h.c.IsTLS() {
		return h.testHandler.AuthMechanisms()
	}
	return nil
}

func (h tlsOnlyAuth) Auth(mech string) (sasl.Server, error) {
	if !h.c.IsTLS() {
		return nil, &Reply{523, "5.7.10", "TLS is required"}
	}
	return h.testHandler.Auth(mech)
}

// The handler decides whether AUTH is offered: the server advertises what
// it offers and answers AUTH with its refusal.
func TestAuthNotOffered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var messages []string
	srv := &Server{Config: Config{Hostname: "gw.test"}, NewHandler: func(c *Conn) Handler {
		return tlsOnlyAuth{&testHandler{c: c, connect: R(220, "", ""), policy: LineNormalize, mu: &mu, messages: &messages}}
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, l.Addr().String())
	c.expect("220")
	c.send("EHLO x\r\n")
	if got := c.expect("250-"); strings.Contains(got, "AUTH") {
		t.Errorf("AUTH offered without TLS: %q", got)
	}
	c.send("AUTH PLAIN AHUAcA==\r\n")
	c.expect("523 5.7.10")
}

func TestBDAT(t *testing.T) {
	ts := startServer(t, Config{MaxMessageBytes: 100}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	// A chunk without a transaction is read and refused: what follows
	// is still a command.
	c.send("EHLO x\r\nBDAT 6\r\nNOOP\r\nNOOP\r\n")
	c.expect("250-")
	c.expect("503 5.5.1")
	c.expect("250 2.0.0")
	c.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 4\r\nab\r\nDATA\r\n")
	c.expect("250")
	c.expect("250")
	c.expect("250 2.0.0 4 octets")
	c.expect("503 5.5.1")
	c.send("BDAT 3 LAST\r\ncd\n")
	c.expect("250 2.0.0 queued")
	// Too large: every chunk is still read.
	c.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 90\r\n" + strings.Repeat("x", 90) + "BDAT 20 LAST\r\n" + strings.Repeat("y", 20) + "NOOP\r\n")
	c.expect("250")
	c.expect("250")
	c.expect("250 2.0.0 90")
	c.expect("552 5.3.4")
	c.expect("250 2.0.0 OK")
	c.send("BDAT x\r\n")
	c.expect("501 5.5.4")
	c.expectClosed()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.messages) != 1 || ts.messages[0] != "ab\r\ncd\r\n" {
		t.Errorf("messages %q", ts.messages)
	}
}

func TestDataTimeout(t *testing.T) {
	ts := startServer(t, Config{}, R(220, "", ""), func(c *Conn) {
		c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	})
	c := dial(t, ts.addr)
	c.expect("220")
	c.send("HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
	c.expect("250")
	c.expect("250")
	c.expect("250")
	c.expect("354")
	c.send("Subject: stalled\r\n")
	c.expect("421 4.4.2")
	c.expectClosed()
}

func TestStartTLSDropsInjectedCommands(t *testing.T) {
	cert := selfSigned(t)
	ts := startServer(t, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, R(220, "", ""))
	c := dial(t, ts.addr)
	c.expect("220")
	c.send("EHLO x\r\n")
	if got := c.expect("250-"); !strings.Contains(got, "STARTTLS") {
		t.Fatalf("no STARTTLS in %q", got)
	}
	c.send("STARTTLS\r\nNOOP\r\n") // the NOOP is the injection
	c.expect("220 2.0.0")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.send("MAIL FROM:<a@b>\r\n")
	c.expect("503 5.5.1") // HELO is forgotten; and no NOOP reply came first
	c.send("EHLO x\r\n")
	if got := c.expect("250-"); strings.Contains(got, "STARTTLS") {
		t.Errorf("STARTTLS offered again: %q", got)
	}
	c.send("STARTTLS\r\n")
	c.expect("503 5.5.1")
}

// selfSigned is a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// BenchmarkSession is the protocol's cost per message on one reused
// connection: a pipelined MAIL, RCPT, DATA group, a 2 KiB message, the
// replies read back.
func BenchmarkSession(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	srv := &Server{Config: Config{Hostname: "gw.test", MaxMessageBytes: 1 << 20}, NewHandler: func(c *Conn) Handler {
		return &discardHandler{testHandler{c: c, connect: R(220, "", ""), mu: &mu, messages: &msgs}}
	}}
	go srv.Serve(l)
	defer srv.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	readReplies := func(n int) {
		for n > 0 {
			line, err := br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if line[3] == ' ' {
				n--
			}
		}
	}
	readReplies(1)
	io.WriteString(nc, "EHLO bench\r\n")
	readReplies(1)
	body := "Subject: bench\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789.\r\n", 36) + ".\r\n"
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		io.WriteString(nc, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
		readReplies(3)
		io.WriteString(nc, body)
		readReplies(1)
	}
}

// discardHandler reads each message and keeps nothing.
type discardHandler struct{ testHandler }

func (h *discardHandler) Data(m *MessageReader) Reply {
	if _, err := io.Copy(io.Discard, m); err != nil {
		return R(451, "4.3.0", err.Error())
	}
	return R(250, "2.0.0", "OK")
}
