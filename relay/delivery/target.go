package delivery

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// TLSMode says whether STARTTLS is used with a next hop.
type TLSMode string

// The TLS modes. The empty mode means TLSOpportunistic.
const (
	// TLSNone never sends STARTTLS.
	TLSNone TLSMode = "none"
	// TLSOpportunistic uses STARTTLS when offered and delivers in plain
	// text when it is not offered or the handshake fails (RFC 7435).
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSRequired delivers only over a verified TLS session; anything else
	// is a temporary failure.
	TLSRequired TLSMode = "required"
)

// ParseTLSMode maps a configuration word to a TLSMode.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case TLSNone, TLSOpportunistic, TLSRequired:
		return m, nil
	case "":
		return TLSOpportunistic, nil
	}
	return "", fmt.Errorf("unknown TLS mode %q (want none, opportunistic or required)", s)
}

// TLSPolicy is how one next hop is secured.
type TLSPolicy struct {
	Mode TLSMode
	// CAFile is a PEM bundle of roots to verify the server with; empty
	// means the system roots.
	CAFile string
	// ServerName is the name verified in the certificate; empty means
	// Target.Host.
	ServerName string
	// InsecureSkipVerify encrypts without checking the certificate. Only
	// allowed with TLSOpportunistic: without it, a certificate that fails
	// verification makes opportunistic delivery fall back to plain text.
	InsecureSkipVerify bool
}

// Mechanism is a SASL mechanism for SMTP AUTH.
type Mechanism string

// The supported mechanisms.
const (
	MechPlain Mechanism = "PLAIN"
	MechLogin Mechanism = "LOGIN"
)

// Auth is the SMTP AUTH login at a next hop (a smart host).
type Auth struct {
	Mechanism Mechanism
	Username  string
	Password  string
	// AllowPlaintext sends the credentials over an unencrypted session.
	// Without it, AUTH is only attempted after STARTTLS succeeded.
	AllowPlaintext bool
}

// Target is one next hop: where to connect and how.
type Target struct {
	// Host names the next hop in logs, in the TLS certificate check (unless
	// TLS.ServerName is set) and in results.
	Host string
	// Addrs are "ip:port" addresses tried in order until one accepts a
	// session (MX failover).
	Addrs []string
	TLS   TLSPolicy
	Auth  *Auth
	// HeloName overrides Options.HeloName for this next hop.
	HeloName string
	// MaxConns caps this next hop's connections below
	// Options.MaxConnsPerTarget (a route's max_connections); 0 = no
	// extra cap.
	MaxConns int
}

// Validate reports every problem with the target.
func (t Target) Validate() error {
	var errs []error
	if len(t.Addrs) == 0 {
		errs = append(errs, errors.New("addrs: no address to connect to"))
	}
	for i, a := range t.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("addrs[%d]: %q is not host:port", i, a))
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("addrs[%d]: %q has no valid port", i, a))
		}
	}
	if err := checkName(t.Host); t.Host != "" && err != nil {
		errs = append(errs, fmt.Errorf("host: %w", err))
	}
	if t.HeloName != "" {
		if err := checkName(t.HeloName); err != nil {
			errs = append(errs, fmt.Errorf("helo_name: %w", err))
		}
	}
	mode, err := ParseTLSMode(string(t.TLS.Mode))
	if err != nil {
		errs = append(errs, fmt.Errorf("tls.mode: %w", err))
	}
	if mode != TLSNone && !t.TLS.InsecureSkipVerify && t.TLS.ServerName == "" && t.Host == "" {
		errs = append(errs, fmt.Errorf("tls.server_name: mode %s verifies the certificate and needs a name (set host or server_name)", mode))
	}
	if t.TLS.InsecureSkipVerify && mode != TLSOpportunistic {
		errs = append(errs, fmt.Errorf("tls.insecure_skip_verify: only allowed with mode opportunistic, not %q", mode))
	}
	if a := t.Auth; a != nil {
		switch Mechanism(strings.ToUpper(string(a.Mechanism))) {
		case MechPlain, MechLogin:
		default:
			errs = append(errs, fmt.Errorf("auth.mechanism: unknown %q (want PLAIN or LOGIN)", a.Mechanism))
		}
		if a.Username == "" {
			errs = append(errs, errors.New("auth.username: empty"))
		}
		if mode == TLSNone && !a.AllowPlaintext {
			errs = append(errs, errors.New("auth: tls.mode none sends credentials in plain text; set allow_plaintext to accept that"))
		}
	}
	return errors.Join(errs...)
}

// checkName accepts a host name that can go into a command line.
func checkName(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n") || !isPrintableASCII(s) {
		return fmt.Errorf("%q is not a host name", s)
	}
	return nil
}

// poolKey identifies the connections that can serve a target: everything
// that shapes a session goes in, the password only as a hash.
func (t Target) poolKey(helo string) string {
	// Built by hand, not with fmt: it is computed for every delivery.
	b := make([]byte, 0, 128)
	b = strconv.AppendQuote(b, t.Host)
	b = append(b, '|')
	// The addresses as a set: round-robin DNS reorders them per lookup,
	// and one pool per order would defeat MaxConns.
	addrs := t.Addrs
	if len(addrs) > 1 {
		addrs = slices.Compact(slices.Sorted(slices.Values(addrs)))
	}
	b = strconv.AppendQuote(b, strings.Join(addrs, ","))
	b = append(b, '|')
	b = strconv.AppendQuote(b, helo)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(t.MaxConns), 10)
	b = append(b, '|')
	b = append(b, t.TLS.Mode...)
	b = append(b, '|')
	b = strconv.AppendQuote(b, t.TLS.CAFile)
	b = append(b, '|')
	b = strconv.AppendQuote(b, t.TLS.ServerName)
	b = append(b, '|')
	b = strconv.AppendBool(b, t.TLS.InsecureSkipVerify)
	b = append(b, '|')
	if a := t.Auth; a != nil {
		sum := sha256.Sum256([]byte(a.Password))
		b = append(b, strings.ToUpper(string(a.Mechanism))...)
		b = append(b, '|')
		b = strconv.AppendQuote(b, a.Username)
		b = append(b, '|')
		b = hex.AppendEncode(b, sum[:])
		b = append(b, '|')
		b = strconv.AppendBool(b, a.AllowPlaintext)
	}
	return string(b)
}

// tlsConfig builds the client TLS configuration for a target, reading
// CAFile once per pool.
func (t Target) tlsConfig() (*tls.Config, error) {
	name := t.TLS.ServerName
	if name == "" {
		name = t.Host
	}
	cfg := &tls.Config{
		ServerName:         name,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.TLS.InsecureSkipVerify,
	}
	if t.TLS.CAFile != "" {
		pem, err := os.ReadFile(t.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s: no PEM certificate found", t.TLS.CAFile)
		}
		cfg.RootCAs = roots
	}
	return cfg, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
