package inspect

import (
	"errors"
	"fmt"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
)

// Config is relay.inspect: content inspection of received mail
// (milters, sender authentication, connect-time DNS lists) and DKIM
// signing of mail leaving after the delivery-time rewrite.
type Config struct {
	// Milters run in order after DATA, before the message is queued.
	Milters []milter.Config `koanf:"milters"`
	// Auth are the SPF/DKIM/DMARC checks and the connect-time lists; they
	// apply to internet clients only (not the inner networks, not
	// authenticated users).
	Auth msgauth.Config `koanf:"auth"`
	// DKIMSign signs mail at delivery.
	DKIMSign dkimsign.Config `koanf:"dkim_sign"`
}

// DefaultConfig inspects nothing and signs nothing.
func DefaultConfig() Config {
	return Config{Auth: msgauth.DefaultConfig(), DKIMSign: dkimsign.DefaultConfig()}
}

// Resolve makes key files relative to base.
func (c *Config) Resolve(base string) {
	c.DKIMSign.Resolve(base)
}

// Validate reports every problem, keys relative to relay.inspect.
func (c Config) Validate() error {
	var errs []error
	prefix := func(p string, err error) {
		if err := keyerr.Prefix(p, err); err != nil {
			errs = append(errs, err)
		}
	}
	names := map[string]int{}
	for i, m := range c.Milters {
		key := fmt.Sprintf("milters[%d].", i)
		prefix(key, m.Validate())
		if j, dup := names[m.Name]; dup && m.Name != "" {
			errs = append(errs, fmt.Errorf("%sname: %q is already used by milters[%d]", key, m.Name, j))
		}
		names[m.Name] = i
	}
	prefix("auth.", c.Auth.Validate())
	prefix("dkim_sign.", c.DKIMSign.Validate())
	return errors.Join(errs...)
}
