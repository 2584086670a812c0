package relay

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ops/logsink"
	"github.com/sekisho/sekisho/relay/queue"
)

// Config is the `relay` section: the SMTP server, its policy, the queue and
// delivery.
type Config struct {
	// Hostname is this gateway's name: greeting, Received fields, DSNs, and
	// the self-route check.
	Hostname  string           `koanf:"hostname"`
	Listeners []ListenerConfig `koanf:"listeners"`
	TLS       TLSConfig        `koanf:"tls"`
	Limits    LimitsConfig     `koanf:"limits"`
	// BareLineEndings is the policy for bare CR/LF in DATA, per source.
	BareLineEndings BareLineConfig `koanf:"bare_line_endings"`
	Guard           guard.Config   `koanf:"guard"`
	Auth            auth.Config    `koanf:"auth"`
	Queue           queue.Config   `koanf:"queue"`
	Delivery        DeliveryConfig `koanf:"delivery"`
	Sanitize        SanitizeConfig `koanf:"sanitize"`
	Log             LogConfig      `koanf:"log"`
	Metrics         MetricsConfig  `koanf:"metrics"`
	Inspect         InspectConfig  `koanf:"inspect"`
	// Archive lists the archive copies (relay/archive.go).
	Archive []ArchiveConfig `koanf:"archive"`

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

// DeliveryConfig drives the queue runner and the SMTP client.
type DeliveryConfig struct {
	// Workers is the number of messages delivered concurrently.
	Workers int `koanf:"workers"`
	// RetryInterval is E-Post's resend interval (120 s).
	RetryInterval time.Duration `koanf:"retry_interval"`
	// Backoff multiplies the interval after each failed attempt (1 = fixed
	// interval, E-Post's behaviour); MaxInterval caps it.
	Backoff     float64       `koanf:"backoff"`
	MaxInterval time.Duration `koanf:"max_interval"`
	// RefusalRetries: a recipient refused with 5xx is tried this many more
	// times before it is bounced (E-Post default 1).
	RefusalRetries int `koanf:"refusal_retries"`
	// TempFailLifetime: 4xx failures give up after this long (8 h).
	TempFailLifetime time.Duration `koanf:"tempfail_lifetime"`
	// NoResponseLifetime: connection failures and timeouts give up after
	// this long (24 h).
	NoResponseLifetime time.Duration `koanf:"no_response_lifetime"`
	// DelayWarning sends a "delayed" DSN once a message has waited this
	// long; 0 disables it.
	DelayWarning   time.Duration `koanf:"delay_warning"`
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	CommandTimeout time.Duration `koanf:"command_timeout"`
	DataTimeout    time.Duration `koanf:"data_timeout"`
	IdleTimeout    time.Duration `koanf:"idle_timeout"`
	MaxConnsPerHop int           `koanf:"max_connections_per_hop"`
	// Chunking sends with BDAT (RFC 3030) to a next hop that offers
	// PIPELINING and CHUNKING: commands and message in one write.
	Chunking bool `koanf:"chunking"`
	// FailReportTo is E-Post's "Fail reports" to the postmaster: every
	// bounce is also sent to this address, in the same commit. The copy is
	// the bounce itself, so it carries the original message's header only.
	// Empty: no copies.
	FailReportTo string `koanf:"fail_report_to"`
	// FailReportContent is what the copy carries of the original message:
	// "headers" (the default: the bounce itself, in the same commit) or
	// "full" (a notification of its own with the whole message attached,
	// queued right after the bounce).
	FailReportContent string `koanf:"fail_report_content"`
}

// LogConfig chooses the log format and destination.
type LogConfig struct {
	Format string `koanf:"format"` // text, json or epost
	File   string `koanf:"file"`   // "" = standard error; reopened on SIGUSR1
	Level  string `koanf:"level"`  // debug, info, warn, error
	// Outputs send some kinds to their own files (E-Post's acceptlog,
	// receivelog, senderlog, faillog) instead of the main stream.
	Outputs []logsink.Output `koanf:"outputs"`
}

// MetricsConfig is the Prometheus endpoint; empty address disables it.
type MetricsConfig struct {
	Address string `koanf:"address"`
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
		Delivery: DeliveryConfig{
			Workers:            32,
			RetryInterval:      120 * time.Second,
			Backoff:            1,
			MaxInterval:        time.Hour,
			RefusalRetries:     1,
			TempFailLifetime:   8 * time.Hour,
			NoResponseLifetime: 24 * time.Hour,
			ConnectTimeout:     30 * time.Second,
			CommandTimeout:     5 * time.Minute,
			DataTimeout:        10 * time.Minute,
			IdleTimeout:        30 * time.Second,
			MaxConnsPerHop:     10,
			Chunking:           true,
			FailReportContent:  "headers",
		},
		Log:      LogConfig{Format: "text", Level: "info"},
		Inspect:  DefaultInspectConfig(),
		Sanitize: DefaultSanitizeConfig(),
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
	abs(&c.Log.File)
	logsink.ResolveOutputs(c.Log.Outputs, base)
	c.Queue.Resolve(base)
	c.Inspect.Resolve(base)
	c.Sanitize.Resolve(base)
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
		if _, err := ParseLinePolicy(p.v); err != nil {
			bad(p.key, "%v", err)
		}
	}
	d := c.Delivery
	if d.Workers <= 0 {
		bad("delivery.workers", "must be positive")
	}
	if d.RetryInterval <= 0 {
		bad("delivery.retry_interval", "must be positive")
	}
	if d.Backoff < 1 {
		bad("delivery.backoff", "must be at least 1 (1 = fixed interval), got %v", d.Backoff)
	}
	if d.RefusalRetries < 0 {
		bad("delivery.refusal_retries", "must not be negative")
	}
	if d.TempFailLifetime <= 0 || d.NoResponseLifetime <= 0 {
		bad("delivery", "tempfail_lifetime and no_response_lifetime must be positive")
	}
	switch d.FailReportContent {
	case "", "headers", "full":
	default:
		bad("delivery.fail_report_content", "%q is not headers or full", d.FailReportContent)
	}
	if a := d.FailReportTo; a != "" {
		if _, _, ok := addr.Split(a); !ok || strings.ContainsAny(a, "<> \t\r\n") {
			bad("delivery.fail_report_to", "%q is not an address (local@domain)", a)
		}
	}
	switch c.Log.Format {
	case "text", "json", "epost":
	default:
		bad("log.format", "%q is not a log format (text, json, epost)", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a level (debug, info, warn, error)", c.Log.Level)
	}
	if c.Metrics.Address != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Address); err != nil {
			bad("metrics.address", "%v", err)
		}
	}
	errs = append(errs, validateArchive(c.Archive)...)
	for _, sub := range []struct {
		key string
		err error
	}{{"guard", c.Guard.Validate()}, {"auth", c.Auth.Validate()}, {"queue", c.Queue.Validate()},
		{"log", logsink.ValidateOutputs(c.Log.Outputs)}, {"inspect", c.Inspect.Validate()}, {"sanitize", c.Sanitize.Validate()}} {
		for _, e := range unjoin(sub.err) {
			errs = append(errs, fmt.Errorf("%s.%w", sub.key, e))
		}
	}
	return errors.Join(errs...)
}

// postmaster is where mail for postmaster goes and the From of our DSNs.
func (c Config) postmaster() string {
	if c.Postmaster != "" {
		return c.Postmaster
	}
	return "postmaster@" + c.Hostname
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
