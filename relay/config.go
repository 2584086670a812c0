//go:build !sekisho_wip

// Package relay is the SMTP engine: the server session, the relay guard, the durable queue and delivery.
package relay

// Config is the `relay` section of the configuration.
// (Placeholder shape: the owner of this package replaces it.)
type Config struct{}

// DefaultConfig returns the section's defaults.
func DefaultConfig() Config { return Config{} }

// Resolve makes relative paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {}

// Validate reports every problem in the section; each error starts with the
// key path relative to the section.
func (c Config) Validate() error { return nil }
