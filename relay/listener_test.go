package relay

import (
	"net"
	"testing"
)

// countingConn records the writes that reach the network.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

func TestReplyLinesGoOutTogether(t *testing.T) {
	cc := &countingConn{}
	lc := &limitedConn{Conn: cc}
	for _, line := range []string{"250-gw.test Hello\r\n", "250-PIPELINING\r\n", "250-8BITMIME\r\n", "250 SIZE 100\r\n",
		"502 5.5.1 Please introduce yourself first.\r\n", "235 2.0.0 Authentication succeeded\r\n", "\x16\x03\x01-binary\r\n"} {
		if n, err := lc.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	want := []string{
		"250-gw.test Hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100\r\n",
		"503 5.5.1 Please introduce yourself first.\r\n",
		"235 2.7.0 Authentication succeeded\r\n",
		"\x16\x03\x01-binary\r\n",
	}
	if len(cc.writes) != len(want) {
		t.Fatalf("%d writes, want %d: %q", len(cc.writes), len(want), cc.writes)
	}
	for i, w := range want {
		if string(cc.writes[i]) != w {
			t.Errorf("write %d = %q, want %q", i, cc.writes[i], w)
		}
	}
}
