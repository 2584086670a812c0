// Package addr normalizes mail addresses: the split at the last '@', domains
// as lower-case IDNA A-labels without a trailing dot, local parts checked and
// quoted for the wire. Every lookup key in sekisho is built here.
package addr

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 §4.5.3.1.
const (
	MaxLocalLen   = 64
	MaxDomainLen  = 253
	MaxAddressLen = 254
)

// idnaProfile maps full-width and upper-case input to lower-case A-labels.
// StrictDomainName(false) allows '_' (seen in real hostnames); VerifyDNSLength
// rejects empty labels such as "a..b".
var idnaProfile = idna.New(idna.MapForLookup(), idna.StrictDomainName(false), idna.VerifyDNSLength(true))

// Domain returns the canonical form of a domain name: lower case, A-labels,
// no trailing dot. Domain literals ("[192.0.2.1]") are returned lower-cased
// and unchanged otherwise; callers decide whether they are acceptable.
func Domain(d string) (string, error) {
	if d == "" {
		return "", errors.New("empty domain")
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' || len(d) < 3 {
			return "", fmt.Errorf("malformed domain literal %q", d)
		}
		return strings.ToLower(d), nil
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if ascii, ok := asciiDomain(d); ok {
		return ascii, nil
	}
	a, err := idnaProfile.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q: %v", d, err)
	}
	if ascii, ok := asciiDomain(a); ok {
		return ascii, nil
	}
	return "", fmt.Errorf("domain %q: invalid characters", d)
}

// asciiDomain is the fast path: a plain LDH name (plus '_') lower-cased
// without allocating when it is already canonical.
func asciiDomain(d string) (string, bool) {
	if len(d) > MaxDomainLen {
		return "", false
	}
	upper := false
	labelLen := 0
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			labelLen++
		case c >= 'A' && c <= 'Z':
			upper = true
			labelLen++
		case c == '-':
			if labelLen == 0 || i+1 == len(d) || d[i+1] == '.' {
				return "", false
			}
			labelLen++
		case c == '.':
			if labelLen == 0 {
				return "", false
			}
			labelLen = 0
			continue
		default:
			return "", false
		}
		if labelLen > 63 {
			return "", false
		}
	}
	if labelLen == 0 {
		return "", false
	}
	if upper {
		return strings.ToLower(d), true
	}
	return d, true
}

// IsDomainLiteral reports whether d is an address literal like [192.0.2.1].
func IsDomainLiteral(d string) bool {
	return strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]")
}

// Split splits an address at its last '@'. ok is false when there is no '@'
// or either side is empty.
func Split(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// Parse splits and checks an unquoted address (as go-smtp hands it over,
// quotes already removed) and returns the local part as given and the
// canonical domain.
func Parse(a string) (local, domain string, err error) {
	if len(a) > MaxAddressLen {
		return "", "", fmt.Errorf("address longer than %d octets", MaxAddressLen)
	}
	l, d, ok := Split(a)
	if !ok {
		return "", "", fmt.Errorf("%q is not of the form local@domain", a)
	}
	if err := CheckLocal(l); err != nil {
		return "", "", err
	}
	dom, err := Domain(d)
	if err != nil {
		return "", "", err
	}
	return l, dom, nil
}

// CheckLocal rejects local parts that cannot be carried safely: empty, too
// long, or containing control characters. Japanese carrier addresses such as
// "taro..yamada" and "taro." are accepted on purpose: they exist.
func CheckLocal(l string) error {
	if l == "" {
		return errors.New("empty local part")
	}
	if len(l) > MaxLocalLen {
		return fmt.Errorf("local part longer than %d octets", MaxLocalLen)
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("control character 0x%02x in local part", c)
		}
	}
	return nil
}

// FoldLocal lower-cases ASCII letters of a local part. Non-ASCII bytes are
// kept: folding UTF-8 local parts is not something mail servers agree on.
func FoldLocal(l string) string {
	for i := 0; i < len(l); i++ {
		if c := l[i]; c >= 'A' && c <= 'Z' {
			return asciiLower(l)
		}
	}
	return l
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Key is the lookup key for an address: folded (or not) local part, '@',
// canonical domain.
func Key(local, domain string, foldLocal bool) string {
	if foldLocal {
		local = FoldLocal(local)
	}
	return local + "@" + domain
}

// QuoteLocal returns the local part as it must be written in an SMTP command
// or header: unchanged when it is a valid dot-atom (or a carrier-style
// near-dot-atom), otherwise as a quoted string with '"' and '\' escaped.
func QuoteLocal(l string) string {
	needs := false
	for i := 0; i < len(l); i++ {
		if !isAtext(l[i]) && l[i] != '.' {
			needs = true
			break
		}
	}
	if !needs {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(l); i++ {
		if l[i] == '"' || l[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext reports RFC 5322 atext, plus 8-bit bytes (RFC 6532 UTF-8).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
