package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/session"
)

func TestRestartOnly(t *testing.T) {
	base := DefaultConfig()
	base.Hostname = "gw.test"
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"nothing", func(*Config) {}, ""},
		{"delivery is applied", func(c *Config) { c.Delivery.Workers = 9; c.Delivery.ConnectTimeout = time.Second }, ""},
		{"limits are applied", func(c *Config) {
			c.Limits.MaxRecipients = 7
			c.Limits.MaxConnections = 3
			c.Limits.IdleTimeout = time.Minute
		}, ""},
		{"the hostname is applied", func(c *Config) { c.Hostname = "new.test" }, ""},
		{"enabling TLS is applied", func(c *Config) { c.TLS.CertFile = "/x.pem" }, ""},
		{"AUTH waits", func(c *Config) { c.Auth.AllowInsecure = !c.Auth.AllowInsecure }, "relay.auth"},
		{"listeners wait", func(c *Config) { c.Listeners = append(c.Listeners, ListenerConfig{Address: ":26"}) }, "relay.listeners"},
		{"queue waits", func(c *Config) { c.Queue.Dir = "/elsewhere" }, "relay.queue"},
	}
	for _, tt := range tests {
		next := base
		next.Listeners = append([]ListenerConfig(nil), base.Listeners...)
		tt.change(&next)
		got := strings.Join(restartOnly(base, next), "; ")
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

	sec.Relay.Delivery.Workers = 5
	sec.Relay.Delivery.CommandTimeout = 42 * time.Second
	sec.Relay.Limits.MaxRecipients = 3
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	if workers := e.runner.Workers(); workers != 5 {
		t.Errorf("%d workers after reload, want 5", workers)
	}
	if !strings.Contains(logs.String(), "applied=") || strings.Contains(logs.String(), "needs_restart=\"relay.limits") {
		t.Errorf("the reload line does not say the limits are applied:\n%s", logs.String())
	}

	sec.Relay.Delivery.Workers = 1
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	if workers := e.runner.Workers(); workers != 1 {
		t.Errorf("%d workers after the second reload, want 1", workers)
	}
}

// A reload gives new connections the new limits and hostname; an open
// session keeps the ones it started with.
func TestReloadAppliesServerLimits(t *testing.T) {
	sec, _ := testSections(t)
	e := startEngine(t, sec)
	addr := e.Addrs()[0].String()
	old := dial(t, "127.0.0.1", addr)
	old.do("EHLO x", 250)

	sec.Relay.Limits.MaxRecipients = 3
	sec.Relay.Hostname = "renamed.test"
	if err := e.Reload(sec); err != nil {
		t.Fatal(err)
	}
	d := dial(t, "127.0.0.1", addr)
	ehlo := d.do("EHLO x", 250)
	if !strings.HasPrefix(ehlo, "renamed.test") || !strings.Contains(ehlo, "LIMITS RCPTMAX=3") {
		t.Errorf("EHLO after the reload:\n%s", ehlo)
	}
	if ehlo := old.do("EHLO x", 250); strings.Contains(ehlo, "RCPTMAX=3") {
		t.Errorf("the open session's limits changed:\n%s", ehlo)
	}
}

// A reload that names what does not exist is refused, whatever section
// the reference is in, and the running snapshot stays.
func TestReloadRefusesDanglingReferences(t *testing.T) {
	sec, _ := testSections(t)
	e := startEngine(t, sec)
	running := e.st.Load()
	for name, change := range map[string]func(*Sections){
		"smart host rewrite set": func(s *Sections) { s.Routing.SmartHost.Rewrite = "to-internt" },
		"route rewrite set":      func(s *Sections) { s.Routing.Routes[0].Rewrite = "nowhere" },
		"sanitize route": func(s *Sections) {
			s.Relay.Sanitize.Rules = append(s.Relay.Sanitize.Rules, sanitize.Rule{Source: "internet", Routes: []string{"innr"}})
		},
		"postmaster mailbox": func(s *Sections) { s.Relay.Postmaster = "nobody@city.toyokawa.lg.jp" },
		"archive mailbox": func(s *Sections) {
			s.Relay.Archive = append(s.Relay.Archive, session.ArchiveConfig{Direction: "all", Address: "archive@city.toyokawa.lg.jp"})
		},
		"dkim key file": func(s *Sections) {
			s.Relay.Inspect.DKIMSign.Keys = append(s.Relay.Inspect.DKIMSign.Keys, dkimsign.KeyConfig{Domain: "city.toyokawa.lg.jp", Selector: "s1", KeyFile: "/nonexistent.pem"})
		},
	} {
		next, _ := testSections(t)
		change(&next)
		if err := e.Reload(next); err == nil {
			t.Errorf("%s: reload accepted", name)
		}
		if e.st.Load() != running {
			t.Fatalf("%s: the running snapshot was replaced", name)
		}
	}
}
