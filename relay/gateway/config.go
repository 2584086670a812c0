package gateway

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/ops/logsink"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/runner"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/session"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/relay/store"
)

// Config is the `relay` section: the listeners and what the gateway owns
// itself (hostname, TLS certificate, limits, line-ending policy,
// postmaster), and the sections of the packages it wires, each owned by
// its package.
type Config struct {
	// Hostname is this gateway's name: greeting, Received fields, DSNs, and
	// the self-route check.
	Hostname  string           `koanf:"hostname"`
	Listeners []ListenerConfig `koanf:"listeners"`
	TLS       TLSConfig        `koanf:"tls"`
	Limits    LimitsConfig     `koanf:"limits"`
	// BareLineEndings is the policy for bare CR/LF in DATA, per source.
	BareLineEndings BareLineConfig    `koanf:"bare_line_endings"`
	Guard           guard.Config      `koanf:"guard"`
	Auth            auth.Config       `koanf:"auth"`
	Queue           queue.Config      `koanf:"queue"`
	Delivery        runner.Config     `koanf:"delivery"`
	Sanitize        sanitize.Config   `koanf:"sanitize"`
	Log             logsink.Config    `koanf:"log"`
	Metrics         ops.MetricsConfig `koanf:"metrics"`
	Inspect         inspect.Config    `koanf:"inspect"`
	RateLimits      ratelimit.Config  `koanf:"rate_limits"`
	// Store keeps the message trace and the console's records.
	Store store.Config `koanf:"store"`
	// Archive lists the archive copies (relay/session/archive.go).
	Archive []session.ArchiveConfig `koanf:"archive"`
	// Outbound are the outbound rules (hold, approval, BCC enforcement,
	// supervisor copies), relay/guard's like the relay rules.
	Outbound guard.OutboundConfig `koanf:"outbound"`

	// Postmaster receives mail for RCPT TO:<postmaster> and for
	// postmaster@ our domains without such an account, and is the From
	// of our DSNs; "" means postmaster@Hostname.
	Postmaster string `koanf:"postmaster"`
}

// ListenerConfig is one listening socket.
type ListenerConfig struct {
	// Name lets guard rules refer to this listener (relay by interface).
	Name string `koanf:"name"`
	// Address is host:port, e.g. "0.0.0.0:25" or "[::1]:20025".
	Address string `koanf:"address"`
	// Mode: "mx" (relay rules apply, AUTH optional), "submission" (AUTH
	// required before MAIL) or "smtps" (implicit TLS, AUTH required).
	Mode string `koanf:"mode"`
	// RequireTLS refuses MAIL before STARTTLS (530 5.7.0) and offers AUTH
	// only under TLS.
	RequireTLS bool `koanf:"require_tls"`
}

// TLSConfig holds the server certificate, reloaded on SIGHUP.
type TLSConfig struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// LimitsConfig bounds what one client can take.
type LimitsConfig struct {
	MaxMessageBytes   int64         `koanf:"max_message_bytes"`
	MaxRecipients     int           `koanf:"max_recipients"`
	MaxConnections    int           `koanf:"max_connections"`
	MaxConnectionsIP  int           `koanf:"max_connections_per_ip"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	SessionTimeout    time.Duration `koanf:"session_timeout"`
	MaxReceivedFields int           `koanf:"max_received_fields"`
	MaxLineLength     int           `koanf:"max_line_length"`
	MaxHeaderBytes    int           `koanf:"max_header_bytes"`
	// Unlimited lists the keys written as "unlimited" (set to 0 by the
	// loader); see UnlimitedKeys.
	Unlimited []string `koanf:"-"`
	// ErrorLimit closes a session after this many 4xx and 5xx replies
	// (Postfix's smtpd_hard_error_limit); 0: never.
	ErrorLimit int `koanf:"error_limit"`
}

// BareLineConfig sets the LinePolicy per message source.
type BareLineConfig struct {
	Internet      string `koanf:"internet"`
	Inner         string `koanf:"inner"`
	Authenticated string `koanf:"authenticated"`
}

// DefaultConfig returns safe defaults: the E-Post retry schedule, 25 MiB
// messages, 100 recipients, bare line endings refused from the internet
// and normalized from trusted sources.
func DefaultConfig() Config {
	return Config{
		Hostname: "localhost",
		Limits: LimitsConfig{
			MaxMessageBytes:   25 << 20,
			MaxRecipients:     100,
			MaxConnections:    1000,
			MaxConnectionsIP:  20,
			IdleTimeout:       5 * time.Minute,
			SessionTimeout:    30 * time.Minute,
			MaxReceivedFields: 20,
			MaxLineLength:     4096,
			MaxHeaderBytes:    1 << 20,
			ErrorLimit:        20,
		},
		BareLineEndings: BareLineConfig{Internet: "reject", Inner: "normalize", Authenticated: "normalize"},
		Guard:           guard.DefaultConfig(),
		Auth:            auth.DefaultConfig(),
		Queue:           queue.DefaultConfig(),
		Delivery:        runner.DefaultConfig(),
		Log:             logsink.DefaultConfig(),
		Inspect:         inspect.DefaultConfig(),
		Sanitize:        sanitize.DefaultConfig(),
		RateLimits:      ratelimit.DefaultConfig(),
		Store:           store.DefaultConfig(),
	}
}

// Resolve makes relative paths relative to base.
func (c *Config) Resolve(base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	c.Log.Resolve(base)
	c.Queue.Resolve(base)
	c.Inspect.Resolve(base)
	c.Sanitize.Resolve(base)
	c.Store.Resolve(base)
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t/@") {
		bad("hostname", "%q is not a host name", c.Hostname)
	}
	if c.Postmaster != "" {
		if _, _, ok := addr.Split(c.Postmaster); !ok || strings.ContainsAny(c.Postmaster, " \t<>") {
			bad("postmaster", "%q is not an address (local@domain)", c.Postmaster)
		}
	}
	seen := map[string]int{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			bad(key+".address", "%q: %v", l.Address, err)
		} else if j, dup := seen[l.Address]; dup {
			bad(key+".address", "%s is already used by listeners[%d]", l.Address, j)
		}
		seen[l.Address] = i
		switch l.Mode {
		case "mx", "submission":
		case "smtps":
			if c.TLS.CertFile == "" {
				bad(key+".mode", "smtps needs tls.cert_file and tls.key_file")
			}
		default:
			bad(key+".mode", "%q is not a mode (mx, submission, smtps)", l.Mode)
		}
		if l.RequireTLS && c.TLS.CertFile == "" {
			bad(key+".require_tls", "needs tls.cert_file and tls.key_file")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	l := c.Limits
	for _, p := range []struct {
		key string
		v   int64
	}{
		{"limits.max_message_bytes", l.MaxMessageBytes}, {"limits.max_recipients", int64(l.MaxRecipients)},
		{"limits.max_connections", int64(l.MaxConnections)}, {"limits.max_connections_per_ip", int64(l.MaxConnectionsIP)},
		{"limits.max_received_fields", int64(l.MaxReceivedFields)}, {"limits.max_line_length", int64(l.MaxLineLength)},
		{"limits.max_header_bytes", int64(l.MaxHeaderBytes)},
	} {
		if p.v == 0 && l.isUnlimited(strings.TrimPrefix(p.key, "limits.")) {
			continue
		}
		if p.v <= 0 {
			if slices.Contains(unlimitedKeys, strings.TrimPrefix(p.key, "limits.")) {
				bad(p.key, "must be positive or unlimited, got %d", p.v)
				continue
			}
			bad(p.key, "must be positive, got %d", p.v)
		}
	}
	c.validateOps(bad)
	if l.MaxLineLength > 0 && l.MaxLineLength < 1000 {
		bad("limits.max_line_length", "must be at least 1000 (RFC 5321 allows 1000-octet lines), got %d", l.MaxLineLength)
	}
	if l.ErrorLimit < 0 {
		bad("limits.error_limit", "must not be negative (0: no limit), got %d", l.ErrorLimit)
	}
	if l.IdleTimeout <= 0 {
		bad("limits.idle_timeout", "must be positive")
	}
	for _, p := range []struct{ key, v string }{
		{"bare_line_endings.internet", c.BareLineEndings.Internet},
		{"bare_line_endings.inner", c.BareLineEndings.Inner},
		{"bare_line_endings.authenticated", c.BareLineEndings.Authenticated},
	} {
		if _, err := smtpd.ParseLinePolicy(p.v); err != nil {
			bad(p.key, "%v", err)
		}
	}
	errs = append(errs, session.ValidateArchive(c.Archive)...)
	for _, sub := range []struct {
		key string
		err error
	}{{"guard", c.Guard.Validate()}, {"outbound", c.Outbound.Validate()}, {"auth", c.Auth.Validate()}, {"queue", c.Queue.Validate()},
		{"delivery", c.Delivery.Validate()}, {"log", c.Log.Validate()}, {"metrics", c.Metrics.Validate()},
		{"inspect", c.Inspect.Validate()}, {"sanitize", c.Sanitize.Validate()}, {"rate_limits", c.RateLimits.Validate()},
		{"store", c.Store.Validate()}} {
		if err := keyerr.Prefix(sub.key+".", sub.err); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Instance is this gateway's name in a shared store: relay.store.instance,
// else the hostname.
func (c Config) Instance() string {
	if c.Store.Instance != "" {
		return c.Store.Instance
	}
	return c.Hostname
}

// PostmasterAddress is where mail for postmaster goes and the From of our
// DSNs.
func (c Config) PostmasterAddress() string {
	if c.Postmaster != "" {
		return c.Postmaster
	}
	return "postmaster@" + c.Hostname
}
