package conformance

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// smtpConn is the client side of one dialogue connection.
type smtpConn struct {
	conn    net.Conn
	r       *bufio.Reader
	out     []byte
	pending *reply // a reply an auth step read but did not judge
	log     *strings.Builder
}

func dialFrom(src, addr string, implicitTLS bool) (*smtpConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if implicitTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "gw.test.jp"})
		c.SetDeadline(time.Now().Add(replyTimeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %v", err)
		}
		c.SetDeadline(time.Time{})
		c = tc
	}
	return &smtpConn{conn: c, r: bufio.NewReader(c), log: &strings.Builder{}}, nil
}

func (c *smtpConn) send(s string) {
	c.out = append(c.out, s...)
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			fmt.Fprintf(c.log, "C: %q\n", l)
		}
	}
}

func (c *smtpConn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, err := c.conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

// readReply reads one reply, multi-line replies whole.
func (c *smtpConn) readReply() (reply, error) {
	if c.pending != nil {
		r := *c.pending
		c.pending = nil
		return r, nil
	}
	if err := c.flush(); err != nil {
		return reply{}, err
	}
	var r reply
	c.conn.SetReadDeadline(time.Now().Add(replyTimeout))
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if line != "" {
				fmt.Fprintf(c.log, "S: %q (then %v)\n", line, err)
			}
			return r, err
		}
		line = strings.TrimRight(line, "\r\n")
		fmt.Fprintf(c.log, "S: %s\n", line)
		if len(line) < 3 {
			return r, fmt.Errorf("malformed reply line %q", line)
		}
		if r.code == "" {
			r.code = line[:3]
			if f := strings.Fields(line[min(4, len(line)):]); len(f) > 0 && enhancedRE.MatchString(f[0]) {
				r.enhanced = f[0]
			}
		}
		r.lines = append(r.lines, line)
		if len(line) == 3 || line[3] == ' ' {
			return r, nil
		}
	}
}

// expectClosed reads until the server closes the connection; any reply
// lines before the close are logged but allowed only if the close follows.
func (c *smtpConn) expectClosed() error {
	if err := c.flush(); err != nil && !isClosed(err) {
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(replyTimeout))
	buf := make([]byte, 4096)
	for {
		n, err := c.r.Read(buf)
		if n > 0 {
			fmt.Fprintf(c.log, "S: %q\n", buf[:n])
		}
		if err != nil {
			if isClosed(err) {
				return nil
			}
			return fmt.Errorf("want the connection closed, got %v", err)
		}
	}
}

func isClosed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer") ||
		strings.Contains(err.Error(), "broken pipe")
}

func (c *smtpConn) starttls() error {
	c.send("STARTTLS\r\n")
	r, err := c.readReply()
	if err != nil {
		return err
	}
	if r.code != "220" {
		return fmt.Errorf("STARTTLS answered %s", r)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "gw.test.jp"})
	c.conn.SetDeadline(time.Now().Add(replyTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %v", err)
	}
	c.conn.SetDeadline(time.Time{})
	c.conn, c.r = tc, bufio.NewReader(tc)
	fmt.Fprintf(c.log, "-- TLS %s\n", tls.VersionName(tc.ConnectionState().Version))
	return nil
}

// auth runs an AUTH exchange up to its final reply, which it leaves for
// the next S: step.
func (c *smtpConn) auth(mech, user, pass string) error {
	b64 := base64.StdEncoding.EncodeToString
	switch mech {
	case "plain":
		c.send("AUTH PLAIN " + b64([]byte("\x00"+user+"\x00"+pass)) + "\r\n")
		return nil
	case "login":
		c.send("AUTH LOGIN\r\n")
		for _, v := range []string{user, pass} {
			r, err := c.readReply()
			if err != nil {
				return err
			}
			if r.code != "334" {
				c.pending = &r
				return nil
			}
			c.send(b64([]byte(v)) + "\r\n")
		}
		return nil
	}
	c.send("AUTH CRAM-MD5\r\n")
	r, err := c.readReply()
	if err != nil {
		return err
	}
	if r.code != "334" {
		c.pending = &r
		return nil
	}
	challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.lines[0][4:]))
	if err != nil {
		return fmt.Errorf("CRAM-MD5 challenge: %v", err)
	}
	h := hmac.New(md5.New, []byte(pass))
	h.Write(challenge)
	c.send(b64([]byte(user+" "+hex.EncodeToString(h.Sum(nil)))) + "\r\n")
	return nil
}
