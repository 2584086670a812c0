package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// ParsePath reads an address as a client writes it after MAIL FROM: or
// RCPT TO: ("<a@b>", "a@b", "<\"user 1\"@b>", "<>") into the form the
// server's command parser hands to the stages: brackets and quoting
// removed, a source route ("@relay1,@relay2:") dropped as RFC 5321 §4.1.1.3
// lets a server ignore it. Dry runs use it so that what they decide is the
// address the live server would decide.
func ParsePath(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "<>" {
		return "", nil
	}
	bracket := strings.HasPrefix(s, "<")
	if bracket {
		if !strings.HasSuffix(s, ">") {
			return "", errors.New("missing '>'")
		}
		s = s[1 : len(s)-1]
	}
	if strings.EqualFold(s, "postmaster") {
		return s, nil // RCPT TO:<Postmaster>, without a domain (RFC 5321 §4.5.1)
	}
	if strings.HasPrefix(s, "@") {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return "", errors.New("malformed source route")
		}
		s = s[i+1:]
	}
	var local strings.Builder
	rest := s
	if strings.HasPrefix(s, `"`) {
		i := 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				local.WriteByte(s[i])
				continue
			}
			if c == '"' {
				break
			}
			local.WriteByte(c)
		}
		if i >= len(s) {
			return "", errors.New("malformed quoted local part")
		}
		rest = s[i+1:]
	} else {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			return "", fmt.Errorf("%q is not of the form local@domain", s)
		}
		if strings.ContainsAny(s[:i], "()<>[]:;\\,\" \t") {
			return "", errors.New("malformed local part")
		}
		local.WriteString(s[:i])
		rest = s[i:]
	}
	if local.Len() == 0 {
		return "", errors.New("empty local part")
	}
	if !strings.HasPrefix(rest, "@") || len(rest) == 1 {
		return "", errors.New("empty domain")
	}
	if strings.ContainsAny(rest[1:], " \t<>") {
		return "", errors.New("malformed domain")
	}
	return local.String() + rest, nil
}

// ParseAddress is ParsePath for a dry run's address that must be a
// mailbox: local@domain, checked as the directory checks addresses
// (rewrite test's --from and --rcpt, the console's rewrite form).
func ParseAddress(s string) (string, error) {
	a, err := ParsePath(s)
	if err != nil {
		return "", err
	}
	_, _, err = addr.Parse(a)
	return a, err
}
