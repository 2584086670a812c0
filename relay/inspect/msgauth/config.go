package msgauth

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Policy is what a check does with its result.
type Policy string

// The policies of one check.
const (
	Off    Policy = "off"    // not checked
	Header Policy = "header" // result recorded in Authentication-Results only
	Reject Policy = "reject" // a failure is refused (5xx), a DNS error deferred (4xx)
)

// Reverse-DNS requirement at connect (E-Post's "reverse DNS required").
const (
	ReverseOff      = "off"
	ReversePTR      = "ptr"       // some PTR name must exist
	ReverseForwards = "confirmed" // a PTR name must resolve back to the client's address
)

// Config is the inspect.auth section.
type Config struct {
	// AuthservID names us in Authentication-Results; empty means the relay
	// hostname. Fields from outside carrying it are removed.
	AuthservID string `koanf:"authserv_id"`
	SPF        Policy `koanf:"spf"`
	DKIM       Policy `koanf:"dkim"`
	DMARC      Policy `koanf:"dmarc"`
	// MaxSignatures bounds how many DKIM signatures are verified per
	// message (each costs a DNS lookup and an RSA operation).
	MaxSignatures int `koanf:"max_signatures"`
	// DNSServers are "ip" or "ip:port" for every lookup of this section;
	// empty means the system resolver.
	DNSServers []string `koanf:"dns_servers"`
	// Timeout bounds all lookups for one message or one connection.
	Timeout time.Duration `koanf:"timeout"`
	// Blocklists and Allowlists are DNS list zones (zen.example.org),
	// queried at connect; an address on an allow list skips the block
	// lists.
	Blocklists []string `koanf:"blocklists"`
	Allowlists []string `koanf:"allowlists"`
	// ReverseDNS is off, ptr or confirmed.
	ReverseDNS string `koanf:"reverse_dns"`
}

// DefaultConfig turns every check off: checks that consult the internet's
// DNS are for the internet-facing listener and must be asked for.
func DefaultConfig() Config {
	return Config{
		SPF:           Off,
		DKIM:          Off,
		DMARC:         Off,
		MaxSignatures: 5,
		Timeout:       20 * time.Second,
		ReverseDNS:    ReverseOff,
	}
}

// Validate reports every problem, each starting with its key.
func (c Config) Validate() error {
	var errs []error
	for _, p := range []struct {
		key string
		v   Policy
	}{{"spf", c.SPF}, {"dkim", c.DKIM}, {"dmarc", c.DMARC}} {
		switch p.v {
		case Off, Header, Reject:
		default:
			errs = append(errs, fmt.Errorf("%s: %q is not off, header or reject", p.key, p.v))
		}
	}
	if c.DMARC != Off && (c.SPF == Off || c.DKIM == Off) {
		errs = append(errs, errors.New("dmarc: needs spf and dkim checked (header or reject)"))
	}
	if c.AuthservID != "" {
		if _, ok := dns.IsDomainName(c.AuthservID); !ok || strings.ContainsAny(c.AuthservID, " ;") {
			errs = append(errs, fmt.Errorf("authserv_id: %q is not a host name", c.AuthservID))
		}
	}
	if c.MaxSignatures < 1 {
		errs = append(errs, fmt.Errorf("max_signatures: %d, need at least 1", c.MaxSignatures))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %v, need more than 0", c.Timeout))
	}
	for i, s := range c.DNSServers {
		if _, err := serverAddr(s); err != nil {
			errs = append(errs, fmt.Errorf("dns_servers[%d]: %v", i, err))
		}
	}
	for key, zones := range map[string][]string{"blocklists": c.Blocklists, "allowlists": c.Allowlists} {
		for i, z := range zones {
			if _, ok := dns.IsDomainName(z); !ok || !strings.Contains(strings.Trim(z, "."), ".") {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not a DNS zone", key, i, z))
			}
		}
	}
	switch c.ReverseDNS {
	case ReverseOff, ReversePTR, ReverseForwards:
	default:
		errs = append(errs, fmt.Errorf("reverse_dns: %q is not off, ptr or confirmed", c.ReverseDNS))
	}
	return errors.Join(errs...)
}

// serverAddr accepts "ip" or "ip:port" (port 53 by default).
func serverAddr(s string) (string, error) {
	if ip := net.ParseIP(s); ip != nil {
		return net.JoinHostPort(s, "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || net.ParseIP(host) == nil || port == "" {
		return "", fmt.Errorf("%q is not an IP address with an optional port", s)
	}
	return s, nil
}
