// Package rewrite maps addresses between the regional internet domains and the LGWAN domains, in the envelope and in header fields, leaving every other byte of the message alone.
package rewrite

// Config is the `rewrite` section of the configuration.
// (Placeholder shape: the owner of this package replaces it.)
type Config struct{}

// DefaultConfig returns the section's defaults.
func DefaultConfig() Config { return Config{} }

// Resolve makes relative paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {}

// Validate reports every problem in the section; each error starts with the
// key path relative to the section.
func (c Config) Validate() error { return nil }
