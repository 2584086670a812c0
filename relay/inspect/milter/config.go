package milter

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sekisho/sekisho/rewrite"
)

// Failure policies: what a milter that cannot be reached, times out or
// breaks the protocol means for the message.
const (
	OnFailureTempfail = "tempfail" // answer 451; the client retries, nothing is lost
	OnFailureAccept   = "accept"   // go on without this milter's opinion
)

// Config is one milter.
type Config struct {
	// Name appears in logs and in Result.Milter.
	Name string `koanf:"name"`
	// Address is "inet:HOST:PORT", "inet6:[HOST]:PORT", "unix:/path" or
	// "HOST:PORT".
	Address string `koanf:"address"`
	// ConnectTimeout bounds the dial and the option negotiation.
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	// Timeout bounds the wait for each reply.
	Timeout time.Duration `koanf:"timeout"`
	// TotalTimeout bounds the whole conversation for one message, so that a
	// milter sending endless progress packets cannot hold a session.
	TotalTimeout time.Duration `koanf:"total_timeout"`
	// OnFailure is "tempfail" or "accept".
	OnFailure string `koanf:"on_failure"`
	// MaxMessageBytes skips the milter for larger messages (E-Post's
	// VirusMailSize); 0 means no limit.
	MaxMessageBytes int64 `koanf:"max_message_bytes"`
	// Sources limits the milter to mail from these kinds of client:
	// "internet", "inner" (the inner networks), "authenticated". Empty:
	// all.
	Sources []string `koanf:"sources"`
}

// DefaultConfig returns the defaults for one milter entry.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout: 5 * time.Second,
		Timeout:        30 * time.Second,
		TotalTimeout:   2 * time.Minute,
		OnFailure:      OnFailureTempfail,
	}
}

// takes reports whether the milter is asked about mail from src (a
// validated configuration).
func (c Config) takes(src rewrite.Source) bool {
	if len(c.Sources) == 0 {
		return true
	}
	for _, name := range c.Sources {
		if s, _ := rewrite.ParseSource(name); s == src {
			return true
		}
	}
	return false
}

// Takes reports whether any of the milters is asked about mail from src.
func Takes(list []Config, src rewrite.Source) bool {
	for _, c := range list {
		if c.takes(src) {
			return true
		}
	}
	return false
}

// withDefaults fills the zero fields of c from DefaultConfig, so a list
// entry in the configuration only needs name and address.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.TotalTimeout == 0 {
		c.TotalTimeout = d.TotalTimeout
	}
	if c.OnFailure == "" {
		c.OnFailure = d.OnFailure
	}
	return c
}

// Validate reports every problem, each starting with its key.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Name) == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if _, _, err := splitAddress(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("address: %v", err))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"timeout", c.Timeout}, {"total_timeout", c.TotalTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: negative", d.key))
		}
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, errors.New("max_message_bytes: negative"))
	}
	for i, src := range c.Sources {
		if _, err := rewrite.ParseSource(src); err != nil {
			errs = append(errs, fmt.Errorf("sources[%d]: %v", i, err))
		}
	}
	switch c.OnFailure {
	case "", OnFailureTempfail, OnFailureAccept:
	default:
		errs = append(errs, fmt.Errorf("on_failure: %q is neither tempfail nor accept", c.OnFailure))
	}
	return errors.Join(errs...)
}

// splitAddress turns the sendmail-style milter address into a network and
// an address for net.Dial.
func splitAddress(a string) (network, address string, err error) {
	switch {
	case a == "":
		return "", "", errors.New("empty")
	case strings.HasPrefix(a, "unix:"), strings.HasPrefix(a, "local:"):
		p := a[strings.IndexByte(a, ':')+1:]
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("%q: a unix socket needs an absolute path", a)
		}
		return "unix", p, nil
	case strings.HasPrefix(a, "inet:"), strings.HasPrefix(a, "inet6:"):
		a = a[strings.IndexByte(a, ':')+1:]
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", "", fmt.Errorf("%q: %v", a, err)
	}
	if host == "" || port == "" {
		return "", "", fmt.Errorf("%q: host and port needed", a)
	}
	return "tcp", a, nil
}
