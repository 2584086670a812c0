// Package dkimsign owns DKIM signing at the gateway: per-domain keys loaded from files (reloadable), the signature computed in one streaming pass over the exact bytes that will be sent, after the delivery-time rewrite.
package dkimsign

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/rewrite"
)

// KeyConfig is one signing key.
type KeyConfig struct {
	// Domain is the d= of the signature. It signs mail whose header From
	// is this domain or a subdomain of it (relaxed DMARC alignment).
	Domain   string `koanf:"domain"`
	Selector string `koanf:"selector"`
	// KeyFile is a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1 RSA).
	KeyFile string `koanf:"key_file"`
}

// Config is the inspect.dkim_sign section.
type Config struct {
	Keys []KeyConfig `koanf:"keys"`
	// Headers are the fields signed, in order; a name listed twice is
	// over-signed (a field of that name added later breaks the signature).
	Headers []string `koanf:"headers"`
}

// DefaultHeaders is RFC 6376 section 5.4.1's list, From over-signed.
var DefaultHeaders = []string{
	"From", "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding",
}

// DefaultConfig signs nothing: keys must be configured.
func DefaultConfig() Config {
	return Config{Headers: append([]string(nil), DefaultHeaders...)}
}

// Resolve makes key files relative to base (the configuration's folder).
func (c *Config) Resolve(base string) {
	for i, k := range c.Keys {
		if k.KeyFile != "" && !filepath.IsAbs(k.KeyFile) {
			c.Keys[i].KeyFile = filepath.Join(base, k.KeyFile)
		}
	}
}

// Validate reports every problem, each starting with its key. It does not
// read key files; New does.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, k := range c.Keys {
		d := strings.ToLower(strings.TrimSuffix(k.Domain, "."))
		if _, ok := dns.IsDomainName(d); !ok || !strings.Contains(d, ".") {
			errs = append(errs, fmt.Errorf("keys[%d].domain: %q is not a domain", i, k.Domain))
		} else if j, dup := seen[d]; dup {
			errs = append(errs, fmt.Errorf("keys[%d].domain: %s already has a key at keys[%d]", i, d, j))
		}
		seen[d] = i
		if _, ok := dns.IsDomainName(k.Selector); !ok || k.Selector == "" || strings.Contains(k.Selector, " ") {
			errs = append(errs, fmt.Errorf("keys[%d].selector: %q is not a DNS label", i, k.Selector))
		}
		if k.KeyFile == "" {
			errs = append(errs, fmt.Errorf("keys[%d].key_file: empty", i))
		}
	}
	from := false
	for i, h := range c.Headers {
		if h == "" || strings.ContainsAny(h, ": \t") {
			errs = append(errs, fmt.Errorf("headers[%d]: %q is not a field name", i, h))
		}
		from = from || strings.EqualFold(h, "From")
	}
	if len(c.Keys) > 0 && !from {
		errs = append(errs, errors.New("headers: must include From (RFC 6376)"))
	}
	return errors.Join(errs...)
}

type key struct {
	domain, selector string
	signer           crypto.Signer
}

// Signer signs messages with the key of their From domain. It is safe for
// concurrent use; Reload swaps the keys atomically.
type Signer struct {
	cfg  Config
	keys atomic.Pointer[map[string]key]
}

// New loads every key file of cfg.
func New(cfg Config) (*Signer, error) {
	s := &Signer{cfg: cfg}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the key files again (on SIGHUP, after a key rollover). On
// any error the keys in use stay as they were.
func (s *Signer) Reload() error {
	m := map[string]key{}
	var errs []error
	for i, k := range s.cfg.Keys {
		sg, err := LoadKey(k.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys[%d].key_file: %v", i, err))
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(k.Domain, "."))
		m[d] = key{domain: d, selector: k.Selector, signer: sg}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.keys.Store(&m)
	return nil
}

// LoadKey reads a PEM private key file.
func LoadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKey(b)
}

// ParseKey decodes a PEM private key: PKCS#8 (RSA or Ed25519) or PKCS#1.
func ParseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return checkRSA(k)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return checkRSA(k)
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%T keys cannot sign DKIM (RSA or Ed25519)", k)
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
}

// checkRSA refuses keys that receivers reject (RFC 8301: at least 1024
// bits; we ask 1024 so old published keys keep working).
func checkRSA(k *rsa.PrivateKey) (crypto.Signer, error) {
	if k.N.BitLen() < 1024 {
		return nil, fmt.Errorf("RSA key of %d bits: DKIM needs at least 1024", k.N.BitLen())
	}
	return k, nil
}

// GenerateKey makes a new key: "rsa" (2048 bits, what every receiver
// verifies) or "ed25519" (RFC 8463, not yet verified everywhere). It
// returns the PKCS#8 PEM and the key.
func GenerateKey(kind string) ([]byte, crypto.Signer, error) {
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("key type %q is neither rsa nor ed25519", kind)
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), k, nil
}

// TXTRecord is the DNS TXT value publishing pub.
func TXTRecord(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("%T is not a DKIM key type", pub)
}

// For returns the signing domain whose key would sign mail from the given
// header From domain: the domain itself or its nearest configured parent.
func (s *Signer) For(fromDomain string) (domain string, ok bool) {
	k, ok := s.lookup(fromDomain)
	return k.domain, ok
}

func (s *Signer) lookup(d string) (key, bool) {
	m := *s.keys.Load()
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	for d != "" {
		if k, ok := m[d]; ok {
			return k, true
		}
		_, rest, found := strings.Cut(d, ".")
		if !found {
			break
		}
		d = rest
	}
	return key{}, false
}

// Sign reads the whole message (header and body, CRLF line ends, not
// dot-stuffed) and returns the DKIM-Signature field to put on top of it,
// "DKIM-Signature: ...\r\n", or "" when no key covers its From domain.
// The message is streamed, never held in memory: callers read the spool
// twice, once here and once to send.
func (s *Signer) Sign(msg io.Reader) (string, error) {
	tr := &trackingReader{r: msg}
	sig, err := s.sign(tr)
	if err != nil && tr.err == nil {
		// Not the reader's fault: the message itself cannot be signed.
		err = fmt.Errorf("%w: %w", ErrUnsignable, err)
	}
	return sig, err
}

// maxHeader bounds the header block read to find the From domain: more
// than any header the gateway accepts.
const maxHeader = 16 << 20

// ErrUnsignable marks a message that cannot be signed (no single header
// From, a broken header): callers send it unsigned. Other errors of Sign
// come from reading the message.
var ErrUnsignable = errors.New("dkim: message cannot be signed")

func (s *Signer) sign(msg io.Reader) (string, error) {
	br := bufio.NewReaderSize(msg, 32<<10)
	head, err := rewrite.ReadHeader(br, maxHeader)
	if err != nil {
		return "", fmt.Errorf("reading the header: %w", err)
	}
	d, err := fromDomain(head)
	if err != nil {
		return "", err
	}
	k, ok := s.lookup(d)
	if !ok {
		return "", nil
	}
	sg, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 k.domain,
		Selector:               k.selector,
		Signer:                 k.signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             s.cfg.Headers,
	})
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(sg, io.MultiReader(bytes.NewReader(head), br)); err != nil {
		sg.Close()
		return "", fmt.Errorf("reading the message: %w", err)
	}
	if err := sg.Close(); err != nil {
		return "", err
	}
	return sg.Signature(), nil
}

// trackingReader remembers the first read error other than EOF, which
// tells a spool failure from a message that cannot be signed.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// fromDomain is the domain of the header From's first address; a message
// with no From field or several cannot be signed meaningfully.
func fromDomain(header []byte) (string, error) {
	froms := rewrite.HeaderFrom(header)
	if len(froms) != 1 {
		return "", fmt.Errorf("%d From fields", len(froms))
	}
	f := froms[0]
	if f.Problem != "" || len(f.Mailboxes) == 0 {
		return "", fmt.Errorf("header from: unparsable (%s)", cmp.Or(f.Problem, "no address"))
	}
	a := f.Mailboxes[0]
	switch {
	case a.Problem == rewrite.ProblemNoDomain:
		return "", fmt.Errorf("header from %q has no domain", a.AddrSpec)
	case a.Address == "":
		return "", fmt.Errorf("header from: unparsable (%s)", a.Problem)
	}
	return a.Address[strings.LastIndexByte(a.Address, '@')+1:], nil
}
