package relay

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRestartOnly(t *testing.T) {
	base := DefaultConfig()
	base.Hostname = "gw.test"
	tests := []struct {
		name       string
		change     func(*Config)
		tlsAtStart bool
		want       string
	}{
		{"nothing", func(*Config) {}, false, ""},
		{"delivery is applied", func(c *Config) { c.Delivery.Workers = 9; c.Delivery.ConnectTimeout = time.Second }, false, ""},
		{"received limits are applied", func(c *Config) { c.Limits.MaxReceivedFields = 5; c.Limits.MaxHeaderBytes = 1 << 20 }, false, ""},
		{"server limits wait", func(c *Config) { c.Limits.MaxRecipients = 7 }, false, "relay.limits.max_recipients"},
		{"hostname in the greeting waits", func(c *Config) { c.Hostname = "new.test" }, false, "relay.hostname (in the greeting"},
		{"enabling TLS waits", func(c *Config) { c.TLS.CertFile = "/x.pem" }, false, "relay.tls (STARTTLS"},
		{"a new certificate is applied", func(c *Config) { c.TLS.CertFile = "/x.pem" }, true, ""},
		{"listeners wait", func(c *Config) { c.Listeners = append(c.Listeners, ListenerConfig{Address: ":26"}) }, false, "relay.listeners"},
		{"queue waits", func(c *Config) { c.Queue.Dir = "/elsewhere" }, false, "relay.queue"},
	}
	for _, tt := range tests {
		next := base
		next.Listeners = append([]ListenerConfig(nil), base.Listeners...)
		tt.change(&next)
		got := strings.Join(restartOnly(base, next, tt.tlsAtStart), "; ")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: restart-only %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A reload resizes the delivery workers, replaces the delivery client
// when its settings change, and names what waits for a restart.
func TestReloadAppliesDelivery(t *testing.T) {
	sec, _ := testSections(t)
	sec.Relay.Delivery.Workers = 2
	e := startEngine(t, sec)
	var logs bytes.Buffer
	e.log = slog.New(slog.NewTextHandler(&logs, nil))
	old := e.runner.client

	sec.Relay.Delivery.Workers = 5
	sec.Relay.Delivery.CommandTimeout = 42 * time.Second
	sec.Relay.Limits.MaxRecipients = 3
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	e.runner.mu.Lock()
	workers, cl := len(e.runner.quits), e.runner.client
	e.runner.mu.Unlock()
	if workers != 5 {
		t.Errorf("%d workers after reload, want 5", workers)
	}
	if cl == old || cl.opts.CommandTimeout != 42*time.Second || !old.retired {
		t.Errorf("delivery client not replaced: %+v", cl.opts)
	}
	if !strings.Contains(logs.String(), "needs_restart=\"relay.limits.max_recipients") {
		t.Errorf("the reload line does not name what waits for a restart:\n%s", logs.String())
	}

	sec.Relay.Delivery.Workers = 1
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	e.runner.mu.Lock()
	workers = len(e.runner.quits)
	e.runner.mu.Unlock()
	if workers != 1 {
		t.Errorf("%d workers after the second reload, want 1", workers)
	}
}
