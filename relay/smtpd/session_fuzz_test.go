package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// replyLine is one line of a reply on the wire: a code, the separator and
// text; enhancedCode is the RFC 3463 status that opens the text of every
// reply but those bareReply lists.
var (
	replyLine    = regexp.MustCompile(`^([2-5][0-9][0-9])([ -])(.*)$`)
	enhancedCode = regexp.MustCompile(`^([245])\.[0-9]{1,3}\.[0-9]{1,3} `)
)

// FuzzSession plays arbitrary client bytes against a whole session and
// checks what the protocol edge promises whatever a client sends: the
// session ends when its input does, every reply is well formed and
// carries its enhanced status, and no message handed to the handler holds
// a NUL, a lone CR or a lone LF, or lacks its final CRLF. mode picks the
// line-ending policy (bit 0: reject) and whether the handler's Data reads
// the message at all (bit 1: it refuses without reading).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhello\r\r\n.\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nsmuggled\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n\r\n.\rX\r\n..\r\n.\x00\r\n\n.\n.\r\n",
		"helo\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nBDAT 5\r\nab\rcdBDAT 3 LAST\r\n\x00\n\r",
		"EHLO c\r\nMAIL FROM:<a@b> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<bad@d>\r\nRCPT TO:<c@d> NOTIFY=NEVER\r\nBDAT 0 LAST\r\nRSET\r\nNOOP\r\nVRFY x\r\n",
		"EHLO c\r\nAUTH PLAIN AHUAcA==\r\nAUTH PLAIN\r\n*\r\nSTARTTLS\r\nEHLO c\r\n" + strings.Repeat("x", 600) + "\r\n",
		"\x00\r\r\n\n" + strings.Repeat("RCPT TO:<a@b>\r\n", 25),
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 4\r\nab\r\nNOOP\r\nMAIL FROM:<x@y>\r\nBDAT 2\r\ncdRSET\r\nMAIL FROM:<a@b>\r\n",
		"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\na\r\rBDAT 1\r\n\nEHLO d\r\nQUIT\r\n",
		"EHLO c\r\nAUTH PLAIN\r\n" + strings.Repeat("QUFB", 3000) + "\r\n",
	} {
		for mode := range byte(4) {
			f.Add(mode, s)
		}
	}
	f.Fuzz(func(t *testing.T, mode byte, in string) {
		policy := LineNormalize
		if mode&1 != 0 {
			policy = LineReject
		}
		var mu sync.Mutex
		var messages []string
		s := &Server{Config: Config{Hostname: "gw.test", MaxMessageBytes: 2048, MaxRecipients: 5, ErrorLimit: 20}}
		s.NewHandler = func(c *Conn) Handler {
			h := &testHandler{c: c, connect: R(220, "", ""), policy: policy, mu: &mu, messages: &messages}
			if mode&2 != 0 {
				return refusingData{h}
			}
			return h
		}
		// A session that does not end when its input does would stall the
		// fuzzer without a word: crash with the input and every stack.
		watchdog := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("the session did not end with its input %q\n%s", in, buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		toServer, clientIn := io.Pipe()
		clientOut, toClient := io.Pipe()
		ended := make(chan struct{})
		go func() {
			s.ServeConn(pipeConn{toServer, toClient})
			close(ended)
		}()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			io.Copy(&out, clientOut) // until the session closes the connection
			close(read)
		}()
		clientIn.Write([]byte(in)) // fails once the session has closed: fine
		clientIn.Close()           // the end of input: the session sees EOF
		<-ended
		<-read

		checkReplies(t, out.String(), in)
		mu.Lock()
		defer mu.Unlock()
		for _, m := range messages {
			if i := strings.IndexByte(m, 0); i >= 0 {
				t.Fatalf("a message handed on holds a NUL at %d: %q (input %q)", i, m, in)
			}
			for i := 0; i < len(m); i++ {
				switch {
				case m[i] == '\r' && (i+1 == len(m) || m[i+1] != '\n'):
					t.Fatalf("a message handed on holds a lone CR at %d: %q (input %q)", i, m, in)
				case m[i] == '\n' && (i == 0 || m[i-1] != '\r'):
					t.Fatalf("a message handed on holds a lone LF at %d: %q (input %q)", i, m, in)
				}
			}
			if m != "" && !strings.HasSuffix(m, "\r\n") {
				t.Fatalf("a message handed on does not end in CRLF: %q (input %q)", m, in)
			}
		}
	})
}

// checkReplies checks every reply line the client received. The client
// reads to the end, so a line without its CRLF is a reply cut short.
func checkReplies(t *testing.T, out, in string) {
	t.Helper()
	lines := strings.SplitAfter(out, "\r\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("reply cut short: %q (input %q)", last, in)
	}
	lines = lines[:len(lines)-1]
	first := true // the next line starts a reply
	code := ""
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r\n")
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("reply line %q holds a lone CR or LF (input %q)", l, in)
		}
		if len(l) > 510 {
			t.Fatalf("reply line of %d bytes, over RFC 5321's 512 (input %q)", len(l)+2, in)
		}
		m := replyLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("malformed reply line %q (input %q)\nreplies:\n%s", l, in, out)
		}
		if !first && m[1] != code {
			t.Fatalf("reply line %q continues a %s reply (input %q)", l, code, in)
		}
		if first {
			code = m[1]
			text := m[3]
			e := enhancedCode.FindStringSubmatch(text)
			switch {
			case e != nil && e[1] != code[:1]:
				t.Fatalf("reply %q: enhanced class %s for code %s (input %q)", l, e[1], code, in)
			case e == nil && !bareReply(code, text):
				t.Fatalf("reply %q has no enhanced status code (input %q)\nreplies:\n%s", l, in, out)
			}
		}
		first = m[2] == " "
	}
}

// bareReply reports the replies that carry no enhanced status: the
// greeting, the answer to HELO/EHLO (the server's name first), the
// AUTH challenges (334) and the invitation to send the data (354).
func bareReply(code, text string) bool {
	switch code {
	case "220", "334", "354":
		return true
	case "250":
		return text == "gw.test" || strings.HasPrefix(text, "gw.test ")
	}
	return false
}

// refusingData refuses every message without reading it: the session
// must still find the end of the data itself.
type refusingData struct{ *testHandler }

func (refusingData) Data(*MessageReader) Reply { return R(554, "5.7.1", "Not today") }

// pipeConn is the server's end of an in-memory connection. Unlike
// net.Pipe, the client can end its direction alone, as a TCP client's
// shutdown does, and still read every reply to what it sent. Deadlines
// are not kept: the fuzz target bounds the session itself.
type pipeConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p pipeConn) Close() error {
	p.r.Close()
	return p.w.Close()
}

func (pipeConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25}
}

func (pipeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}

func (pipeConn) SetDeadline(time.Time) error      { return nil }
func (pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (pipeConn) SetWriteDeadline(time.Time) error { return nil }
