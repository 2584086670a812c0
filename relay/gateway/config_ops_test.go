package gateway

import (
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/routing"
)

func TestListenerNamesAndRules(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Listeners = []ListenerConfig{
			{Name: "outside", Address: "0.0.0.0:25", Mode: "mx"},
			{Name: "inside", Address: "192.168.0.25:25", Mode: "mx"},
			{Address: "127.0.0.1:20025", Mode: "mx"},
		}
		return c
	}
	for _, c := range []struct {
		name  string
		edit  func(*Config)
		wants []string // "" = valid
	}{
		{"allow by a listener bound to one address", func(c *Config) {
			c.Guard.Rules = []guard.RuleConfig{{Name: "in", Action: "allow", Listeners: []string{"inside"}}}
		}, nil},
		{"allow by a wildcard listener alone", func(c *Config) {
			c.Guard.Rules = []guard.RuleConfig{{Name: "out", Action: "allow", Listeners: []string{"outside"}}}
		}, []string{`guard.rules[0].listeners[0]: an allow by listener alone needs the listener bound to one interface's address, not "0.0.0.0:25"`}},
		{"a wildcard listener with networks", func(c *Config) {
			c.Guard.Rules = []guard.RuleConfig{{Name: "out", Action: "allow", Listeners: []string{"outside"}, Networks: []string{"10.0.0.0/8"}}}
		}, nil},
		{"deny on a wildcard listener", func(c *Config) {
			c.Guard.Rules = []guard.RuleConfig{{Name: "out", Action: "deny", Listeners: []string{"outside"}}}
		}, nil},
		{"unknown listener", func(c *Config) {
			c.Guard.Rules = []guard.RuleConfig{{Name: "x", Action: "deny", Listeners: []string{"dmz"}}}
		}, []string{`guard.rules[0].listeners[0]: no listener is named "dmz"`}},
		{"duplicate and bad names", func(c *Config) {
			c.Listeners[2].Name = "inside"
			c.Listeners[0].Name = "out side"
		}, []string{`listeners[2].name: "inside" is already the name of listeners[1]`, `listeners[0].name: "out side": no spaces or commas`}},
		{"zero limits are errors unless written unlimited", func(c *Config) {
			c.Limits.MaxRecipients, c.Limits.MaxConnections = 0, 0
			c.Limits.Unlimited = []string{"max_connections"}
		}, []string{"limits.max_recipients: must be positive or unlimited, got 0"}},
	} {
		cfg := base()
		c.edit(&cfg)
		err := cfg.Validate()
		if len(c.wants) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		for _, w := range c.wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: missing %q in %v", c.name, w, err)
			}
		}
		if err != nil && strings.Contains(err.Error(), "max_connections:") {
			t.Errorf("%s: max_connections written unlimited was refused: %v", c.name, err)
		}
	}
}

func TestUnlimitedWarnings(t *testing.T) {
	c := DefaultConfig()
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("defaults warn: %v", w)
	}
	c.Limits.MaxMessageBytes, c.Limits.Unlimited = 0, []string{"max_message_bytes"}
	w := c.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "limits.max_message_bytes: unlimited") {
		t.Errorf("warnings %v", w)
	}
}

// Each package's section is validated by the package; through the relay
// section its keys get the section's prefix.
func TestSectionKeysPrefixed(t *testing.T) {
	c := DefaultConfig()
	c.Inspect.Milters = []milter.Config{{Name: "rspamd", Address: "inet:127.0.0.1:11332"}, {Name: "rspamd", Address: "inet:127.0.0.1:11333"}}
	c.Delivery.Workers = 0
	c.Sanitize.Links = "x"
	err := c.Validate()
	for _, want := range []string{
		`inspect.milters[1].name: "rspamd" is already used by milters[0]`,
		`delivery.workers: must be positive`,
		`sanitize.links: "x" is not a link style`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nwant %q", err, want)
		}
	}
}

// An archive copy of internet mail sent by a route the sanitize rules do
// not cover carries the original past them: config check says so.
func TestArchiveLeavesSanitizedRoutes(t *testing.T) {
	sec, _ := testSections(t)
	sec.Routing.Routes = append(sec.Routing.Routes, routing.RouteConfig{Name: "archive", Domain: "archive.example",
		TargetConfig: routing.TargetConfig{Targets: []string{"127.0.0.1:2525"}, TLS: "none"}})
	sec.Relay.Sanitize.Rules = []sanitize.Rule{{Source: "internet", Routes: []string{"inner"}}}
	sec.Relay.Archive = []session.ArchiveConfig{{Direction: "inbound", Address: "copy@archive.example"},
		{Direction: "outbound", Address: "out@archive.example"}, {Direction: "all", Address: "folder@elsewhere.example"}}
	warned := func() []string {
		_, w := CheckAll(sec, nil)
		var out []string
		for _, f := range w {
			if strings.HasPrefix(f.Key, "relay.archive") {
				out = append(out, f.String())
			}
		}
		return out
	}
	w := warned()
	if len(w) != 1 || !strings.HasPrefix(w[0], "relay.archive[0].address: the archive copy of internet mail to copy@archive.example goes by archive, which no relay.sanitize rule covers") {
		t.Errorf("warnings %q", w)
	}
	sec.Relay.Sanitize.Rules[0].Routes = append(sec.Relay.Sanitize.Rules[0].Routes, "archive")
	if w := warned(); len(w) != 0 {
		t.Errorf("archive route sanitized, still warned: %q", w)
	}
}
