package trace

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// SocketName is the trace socket's name in the queue folder.
const SocketName = "trace.sock"

// Listen opens the trace socket at path, replacing a stale one. The socket
// is mode 0600: only its owner (the service user) and root can connect,
// and Serve checks the peer's credentials again where the system gives
// them.
func Listen(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		// A live gateway answers on it; a stale socket from a killed one
		// does not and is removed.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another gateway is serving traces on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// No umask change around the bind: it is process-wide and would race
	// with files other goroutines create. The moment between bind and
	// chmod is covered by the peer check in Serve.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve answers trace clients on l until it is closed.
func (h *Hub) Serve(l *net.UnixListener, log *slog.Logger) error {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go h.serveClient(c, log)
	}
}

// maxRequest bounds the one request line a trace client sends.
const maxRequest = 4096

func (h *Hub) serveClient(c *net.UnixConn, log *slog.Logger) {
	defer c.Close()
	if uid, ok, err := peerUID(c); err != nil || (ok && !peerAllowed(uid, os.Getuid())) {
		log.Warn("trace client refused", "kind", "auth", "uid", uid, "error", err)
		fmt.Fprintf(c, "ERR only root or uid %d may trace\n", os.Getuid())
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, maxRequest), maxRequest)
	req, err := br.ReadBytes('\n')
	if err != nil {
		fmt.Fprintf(c, "ERR no request: %v\n", err)
		return
	}
	var f Filter
	if err := json.Unmarshal(req, &f); err != nil {
		fmt.Fprintf(c, "ERR bad request: %v\n", err)
		return
	}
	c.SetReadDeadline(time.Time{})
	s := h.Subscribe(f)
	defer s.Close()
	client := ""
	if f.Client.IsValid() {
		client = f.Client.String()
	}
	log.Info("trace attached", "kind", "auth", "client", client, "next_hop", f.NextHop, "bodies", f.Bodies)
	defer log.Info("trace detached", "kind", "auth")
	// The client sends nothing more: a read returns when it goes away.
	go func() {
		io.Copy(io.Discard, c)
		s.Close()
	}()
	bw := bufio.NewWriter(c)
	bw.WriteString("OK tracing\n")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.Done():
			return
		case line := <-s.Lines():
			bw.WriteString(line)
			// Take what else is waiting before one write.
			for more := true; more; {
				select {
				case line = <-s.Lines():
					bw.WriteString(line)
				default:
					more = false
				}
			}
		case <-tick.C:
		}
		if n := s.Dropped(); n > 0 {
			bw.WriteString(format(h.now(), 0, "-", "-", note, strconv.FormatInt(n, 10)+
				" line(s) dropped: the trace reader was too slow; the gateway did not wait"))
		}
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if bw.Flush() != nil {
			return
		}
	}
}

// Attach connects to a gateway's trace socket, asks for f and copies the
// trace to w until the gateway or ctx ends it (close done to stop).
func Attach(path string, f Filter, w io.Writer, done <-chan struct{}) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("cannot attach to the gateway's trace socket: %w (is `sekisho serve` running with this configuration, and are you root or its user?)", err)
	}
	defer c.Close()
	go func() {
		<-done
		c.Close()
	}()
	req, _ := json.Marshal(f)
	if _, err := c.Write(append(req, '\n')); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	first, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("trace socket %s: %w", path, err)
	}
	if first != "OK tracing\n" {
		return fmt.Errorf("trace socket %s: %s", path, first[:len(first)-1])
	}
	_, err = io.Copy(w, br)
	select {
	case <-done:
		return nil
	default:
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return errors.New("the gateway closed the trace (it stopped or restarted)")
}

// peerAllowed: root, or the user the gateway runs as.
func peerAllowed(uid, self int) bool { return uid == 0 || uid == self }
