package ratelimit

import (
	"errors"
	"fmt"

	"github.com/sekisho/sekisho/relay/guard"
)

// Config is the relay.rate_limits section. A limit of 0 is off; a
// negative one is an error.
type Config struct {
	// Client limits each client address (an IPv6 client by its /64)
	// that has not authenticated.
	Client ClientLimits `koanf:"client"`
	// User limits each authenticated user, from whatever address.
	User UserLimits `koanf:"user"`
	// ExemptInner exempts the inner networks (relay.guard.inner_networks):
	// the inner server sends all of a town's outgoing mail.
	ExemptInner bool `koanf:"exempt_inner"`
	// Exempt lists more networks (CIDR blocks or addresses) that no limit
	// applies to: a monitoring host, a partner's relay.
	Exempt []string `koanf:"exempt"`
}

// ClientLimits are per client address, per minute.
type ClientLimits struct {
	ConnectionsPerMinute int `koanf:"connections_per_minute"`
	MessagesPerMinute    int `koanf:"messages_per_minute"`
	RecipientsPerMinute  int `koanf:"recipients_per_minute"`
}

// UserLimits are per authenticated user.
type UserLimits struct {
	MessagesPerMinute   int `koanf:"messages_per_minute"`
	RecipientsPerMinute int `koanf:"recipients_per_minute"`
	// Sessions is how many of the user's sessions may send mail at once.
	Sessions int `koanf:"sessions"`
}

// DefaultConfig suits an MX facing the internet: ordinary senders never
// meet the limits (a mailing list host sends a few messages a second at
// most to one MX), a spam run or a stolen password is slowed within a
// minute; the inner networks are exempt.
func DefaultConfig() Config {
	return Config{
		Client:      ClientLimits{ConnectionsPerMinute: 60, MessagesPerMinute: 100, RecipientsPerMinute: 500},
		User:        UserLimits{MessagesPerMinute: 60, RecipientsPerMinute: 300, Sessions: 10},
		ExemptInner: true,
	}
}

// Validate reports every problem, each starting with its key.
func (c Config) Validate() error {
	var errs []error
	for _, v := range []struct {
		key string
		n   int
	}{
		{"client.connections_per_minute", c.Client.ConnectionsPerMinute},
		{"client.messages_per_minute", c.Client.MessagesPerMinute},
		{"client.recipients_per_minute", c.Client.RecipientsPerMinute},
		{"user.messages_per_minute", c.User.MessagesPerMinute},
		{"user.recipients_per_minute", c.User.RecipientsPerMinute},
		{"user.sessions", c.User.Sessions},
	} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative (0: no limit), got %d", v.key, v.n))
		}
	}
	for i, s := range c.Exempt {
		if _, err := guard.ParseNetwork(s); err != nil {
			errs = append(errs, fmt.Errorf("exempt[%d]: %v", i, err))
		}
	}
	return errors.Join(errs...)
}
