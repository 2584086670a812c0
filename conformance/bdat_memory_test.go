package conformance

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BDAT chunks are streamed to the queue as they arrive, as DATA is: 20
// connections, each 20 MiB into its message and before its LAST chunk,
// grow the gateway's resident memory by far less than the 400 MiB they
// sent (the bound is 64 MiB). The chunks held in memory until LAST would
// cost all of it, and a few clients could get the gateway killed.
func TestBDAT_MemoryBoundedByBuffers(t *testing.T) {
	t.Parallel()
	const conns, chunks, chunkSize = 20, 20, 1 << 20
	w := newWorld(t)
	g := w.start(configC("limits:\n  max_connections_per_ip: 50\n"))
	g.mu.Lock()
	pid := g.cmd.Process.Pid
	g.mu.Unlock()
	before := procStatusKB(t, pid, "VmRSS")

	var line bytes.Buffer
	for line.Len() < chunkSize-80 {
		line.WriteString(strings.Repeat("0123456789", 7) + "\r\n")
	}
	chunk := append(line.Bytes(), strings.Repeat("x", chunkSize-line.Len()-2)+"\r\n"...)

	var wg sync.WaitGroup
	sent := make(chan error, conns)
	release := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom(innerIP, w.port("mx"), false)
			if err != nil {
				sent <- err
				return
			}
			defer c.conn.Close()
			err = c.bdatUpTo(i, chunks, chunk)
			sent <- err
			if err != nil {
				return
			}
			<-release
			// Abandoned before LAST: nothing is queued, nothing delivered.
			c.send("RSET\r\nQUIT\r\n")
			c.readReply()
			c.readReply()
		}()
	}
	for range conns {
		if err := <-sent; err != nil {
			close(release)
			wg.Wait()
			t.Fatal(err)
		}
	}
	// Every connection is 20 MiB into its message, its LAST to come.
	peak := procStatusKB(t, pid, "VmHWM")
	close(release)
	wg.Wait()
	growth := peak - before
	t.Logf("resident memory: %d MiB before, peak %d MiB with %d MiB of chunks in flight", before>>10, peak>>10, conns*chunks*chunkSize>>20)
	if growth > 64<<10 {
		t.Errorf("the gateway's resident memory grew by %d MiB, want less than 64 MiB", growth>>10)
	}
}

// bdatUpTo opens a transaction and sends n chunks, none of them LAST,
// reading every reply.
func (c *smtpConn) bdatUpTo(i, n int, chunk []byte) error {
	c.send("EHLO client.test.jp\r\n")
	c.send(fmt.Sprintf("MAIL FROM:<bucho@test.jp>\r\nRCPT TO:<user%d@test.jp>\r\n", 1+i%2))
	c.send(fmt.Sprintf("BDAT %d\r\nSubject: chunked %d\r\n\r\n", len("Subject: chunked \r\n\r\n")+len(strconv.Itoa(i)), i))
	for range 5 { // the greeting, EHLO, MAIL, RCPT, the first BDAT
		if r, err := c.readReply(); err != nil || !strings.HasPrefix(r.code, "2") {
			return fmt.Errorf("connection %d: %v %v", i, r.lines, err)
		}
	}
	for k := range n {
		c.send(fmt.Sprintf("BDAT %d\r\n", len(chunk)))
		c.out = append(c.out, chunk...)
		if r, err := c.readReply(); err != nil || r.code != "250" {
			return fmt.Errorf("connection %d, chunk %d: %v %v", i, k, r.lines, err)
		}
	}
	return nil
}

// procStatusKB reads a "Name: N kB" line of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, name string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the gateway's memory from: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("/proc/%d/status: %q", pid, l)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, name)
	return 0
}
