package main

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

// client is the load's SMTP client. It says what a plain mail client says
// (EHLO, then MAIL, RCPT and DATA one at a time, each waiting for its
// reply; QUIT), but handles the bytes in bulk: one write per command, the
// header and the shared, already dot-stuffed body in one writev, so that
// at 100 KiB the tool does not spend the CPU the server under test needs.
type client struct {
	nc      net.Conn
	br      *bufio.Reader
	timeout time.Duration
	cmd     []byte
	bufs    [2][]byte
}

// replyError is a reply other than the one expected.
type replyError struct {
	code int
	text string // the reply's text, the enhanced status first
}

func (e *replyError) Error() string { return strconv.Itoa(e.code) + " " + e.text }

func dialClient(addr string, timeout time.Duration) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &client{nc: nc, br: bufio.NewReaderSize(nc, 4096), timeout: timeout}
	if err := c.expect(220); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.command(250, "EHLO client.bench.invalid"); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// send runs one transaction; body is the dot-stuffed text after the
// header, with the final dot.
func (c *client) send(from, to string, header, body []byte) error {
	if err := c.command(250, "MAIL FROM:<"+from+">"); err != nil {
		return err
	}
	if err := c.command(250, "RCPT TO:<"+to+">"); err != nil {
		return err
	}
	if err := c.command(354, "DATA"); err != nil {
		return err
	}
	c.bufs = [2][]byte{header, body}
	bufs := net.Buffers(c.bufs[:])
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return err
	}
	return c.expect(250)
}

// command writes one command line and reads its reply.
func (c *client) command(want int, line string) error {
	c.cmd = append(append(c.cmd[:0], line...), '\r', '\n')
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write(c.cmd); err != nil {
		return err
	}
	return c.expect(want)
}

// expect reads one reply, a multi-line one whole, and wants its code.
func (c *client) expect(want int) error {
	c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	var text []string
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) < 4 {
			return errors.New("malformed reply " + strconv.Quote(string(line)))
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil {
			return errors.New("malformed reply " + strconv.Quote(string(line)))
		}
		if code != want {
			text = append(text, strings.TrimRight(string(line[4:]), "\r\n"))
		}
		if line[3] != '-' {
			if code != want {
				return &replyError{code: code, text: strings.Join(text, " ")}
			}
			return nil
		}
	}
}

// quit says goodbye and closes.
func (c *client) quit() {
	c.command(221, "QUIT")
	c.nc.Close()
}

func (c *client) close() { c.nc.Close() }
