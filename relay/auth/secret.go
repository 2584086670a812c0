package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Secret schemes, written "{SCHEME}value" in Account.Secret.
const (
	SchemeSHA512Crypt = "SHA512-CRYPT"
	SchemeCRAMMD5     = "CRAM-MD5"
	SchemePlain       = "PLAIN"
)

// secret is a resolved Account.Secret.
type secret struct {
	scheme string
	value  string
}

// maxSecretFile bounds a file: secret; a hash is under 200 bytes.
const maxSecretFile = 4096

// errSecretIO marks a secret that could not be read: a temporary failure
// of the server, not a wrong password.
var errSecretIO = errors.New("secret unreadable")

// resolveSecret follows one file: or env: indirection and splits the
// scheme. Only schemes this package knows are accepted.
func resolveSecret(ref string) (secret, error) {
	switch {
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		if !filepath.IsAbs(path) {
			return secret{}, fmt.Errorf("file: secret %q must be an absolute path", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return secret{}, fmt.Errorf("%w: %v", errSecretIO, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		if err != nil {
			return secret{}, fmt.Errorf("%w: %v", errSecretIO, err)
		}
		if len(b) > maxSecretFile {
			return secret{}, fmt.Errorf("file: secret %s is longer than %d bytes", path, maxSecretFile)
		}
		return parseScheme(strings.TrimRight(string(b), "\r\n"), "file "+path)
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || name == "" {
			return secret{}, fmt.Errorf("%w: environment variable %q is not set", errSecretIO, name)
		}
		return parseScheme(v, "environment variable "+name)
	}
	return parseScheme(ref, "secret")
}

func parseScheme(s, where string) (secret, error) {
	if strings.HasPrefix(s, "file:") || strings.HasPrefix(s, "env:") {
		return secret{}, fmt.Errorf("%s: an indirection may not lead to another", where)
	}
	if !strings.HasPrefix(s, "{") {
		return secret{}, fmt.Errorf("%s: no {SCHEME} prefix", where)
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return secret{}, fmt.Errorf("%s: unterminated {SCHEME}", where)
	}
	sec := secret{scheme: strings.ToUpper(s[1:end]), value: s[end+1:]}
	switch sec.scheme {
	case SchemeSHA512Crypt:
		if _, _, _, _, err := sha512CryptParts(sec.value); err != nil {
			return secret{}, fmt.Errorf("%s: {SHA512-CRYPT}: %v", where, err)
		}
	case SchemeCRAMMD5, "HMAC-MD5": // Dovecot's two names for the same thing
		sec.scheme = SchemeCRAMMD5
		if _, err := parseCRAMState(sec.value); err != nil {
			return secret{}, fmt.Errorf("%s: %v", where, err)
		}
	case SchemePlain:
	default:
		return secret{}, fmt.Errorf("%s: unknown scheme {%s} (SHA512-CRYPT, CRAM-MD5, PLAIN)", where, sec.scheme)
	}
	return sec, nil
}

// CheckSecret reports whether an Account.Secret reference is well formed,
// reading file: and env: indirections; for configuration checks.
func CheckSecret(ref string) error {
	_, err := resolveSecret(ref)
	return err
}

// verifyPassword checks a password given in the clear (PLAIN, LOGIN).
func (s secret) verifyPassword(password string) (bool, error) {
	switch s.scheme {
	case SchemeSHA512Crypt:
		return sha512CryptVerify(s.value, password)
	case SchemeCRAMMD5:
		st, _ := parseCRAMState(s.value)
		got := newCRAMState([]byte(password))
		return subtle.ConstantTimeCompare([]byte(got.String()), []byte(st.String())) == 1, nil
	case SchemePlain:
		return subtle.ConstantTimeCompare([]byte(s.value), []byte(password)) == 1, nil
	}
	return false, fmt.Errorf("unknown scheme %s", s.scheme)
}

// cramState returns the HMAC-MD5 key schedule, if the scheme keeps one.
func (s secret) cramState() (cramState, bool) {
	switch s.scheme {
	case SchemeCRAMMD5:
		st, err := parseCRAMState(s.value)
		return st, err == nil
	case SchemePlain:
		return newCRAMState([]byte(s.value)), true
	}
	return cramState{}, false
}

// HashPassword returns an Account.Secret for password: scheme
// SHA512-CRYPT (the default when scheme is "") with a random salt and
// 100000 rounds, or CRAM-MD5 (the HMAC-MD5 key schedule, needed only for
// CRAM-MD5 clients; it also verifies PLAIN and LOGIN). PLAIN is refused: it
// would store the password itself.
func HashPassword(scheme, password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if strings.ContainsAny(password, "\x00\r\n") {
		return "", errors.New("a password cannot contain NUL, CR or LF (SASL PLAIN and LOGIN could not carry it)")
	}
	switch strings.ToUpper(scheme) {
	case "", SchemeSHA512Crypt:
		salt, err := randomSalt()
		if err != nil {
			return "", err
		}
		return "{" + SchemeSHA512Crypt + "}" + sha512Crypt(password, salt, sha512HashRounds, true), nil
	case SchemeCRAMMD5:
		return "{" + SchemeCRAMMD5 + "}" + newCRAMState([]byte(password)).String(), nil
	case SchemePlain:
		return "", errors.New("{PLAIN} stores the password itself; write it by hand, in test configurations only")
	}
	return "", fmt.Errorf("unknown scheme %q (SHA512-CRYPT, CRAM-MD5)", scheme)
}

func randomSalt() (string, error) {
	var b [sha512MaxSalt]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = cryptAlphabet[b[i]&0x3f]
	}
	return string(b[:]), nil
}
