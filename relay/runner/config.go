package runner

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Config is relay.delivery: the workers, the retry schedule, the SMTP
// client's timeouts, and the postmaster's copies of bounces.
type Config struct {
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

// DefaultConfig is E-Post's retry schedule: every 120 s, a 5xx tried once
// more, 4xx for 8 hours, no answer for 24.
func DefaultConfig() Config {
	return Config{
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
	}
}

// Validate reports every problem, keyed relative to relay.delivery.
func (d Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if d.Workers <= 0 {
		bad("workers", "must be positive")
	}
	if d.RetryInterval <= 0 {
		bad("retry_interval", "must be positive")
	}
	if d.Backoff < 1 {
		bad("backoff", "must be at least 1 (1 = fixed interval), got %v", d.Backoff)
	}
	if d.RefusalRetries < 0 {
		bad("refusal_retries", "must not be negative")
	}
	if d.TempFailLifetime <= 0 {
		bad("tempfail_lifetime", "must be positive")
	}
	if d.NoResponseLifetime <= 0 {
		bad("no_response_lifetime", "must be positive")
	}
	switch d.FailReportContent {
	case "", "headers", "full":
	default:
		bad("fail_report_content", "%q is not headers or full", d.FailReportContent)
	}
	if a := d.FailReportTo; a != "" {
		if _, _, ok := addr.Split(a); !ok || strings.ContainsAny(a, "<> \t\r\n") {
			bad("fail_report_to", "%q is not an address (local@domain)", a)
		}
	}
	return errors.Join(errs...)
}
