package gateway

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/relay/ops"
)

// lockedBuffer is a log destination sessions write to concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Connections over the client's rate are told 421 4.7.0 where they are
// accepted and closed; messages over it get 450 4.7.1; the inner network
// is exempt; every refusal is logged kind=reject and counted.
func TestRateLimitsLive(t *testing.T) {
	sec, _ := testSections(t)
	sec.Relay.RateLimits.Client.ConnectionsPerMinute = 2
	sec.Relay.RateLimits.Client.MessagesPerMinute = 1
	var logs lockedBuffer
	m := ops.NewMetrics()
	e := startEngineWith(t, sec, slog.New(slog.NewTextHandler(&logs, nil)), m)
	addr := e.Addrs()[0].String()

	first := dial(t, "127.0.0.1", addr)
	first.do("EHLO client.example", 250)
	first.do("MAIL FROM:<a@example.com>", 250)
	first.do("RSET", 250)
	first.do("MAIL FROM:<a@example.com>", 450)
	dial(t, "127.0.0.1", addr).do("QUIT", 221)

	// The third connection of the minute: one reply, then the end.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.7.0 Too many connections from your address") {
		t.Fatalf("third connection: %q %v", line, err)
	}
	if rest, err := br.ReadString('\n'); err == nil {
		t.Errorf("the connection stayed open: %q", rest)
	}

	// The inner network is not counted.
	for range 4 {
		dial(t, "127.0.0.2", addr).do("QUIT", 221)
	}

	for _, parts := range [][]string{
		{"msg=refused", "kind=reject", "stage=connect", "rule=rate:client.connections_per_minute", "code=421"},
		{"msg=refused", "kind=reject", "stage=mail", "rule=rate:client.messages_per_minute", "code=450"},
	} {
		if !logHas(logs.String(), parts...) {
			t.Errorf("no log line holds all of %q:\n%s", parts, logs.String())
		}
	}
	if n := counterValue(t, m.Connections.WithLabelValues("mx/127.0.0.1:0", "refused_rate")); n != 1 {
		t.Errorf("refused_rate connections counted %v, want 1", n)
	}
	if n := counterValue(t, m.Commands.WithLabelValues("mail", "tempfail", "rate:client.messages_per_minute")); n != 1 {
		t.Errorf("rate-limited MAIL counted %v, want 1", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
