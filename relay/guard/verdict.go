package guard

import (
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// Action is what the server does with a command.
type Action uint8

const (
	Accept   Action = iota // 2xx: go on
	Reject                 // 5xx: refused for good
	TempFail               // 4xx: try again later
)

var actionNames = [...]string{"accept", "reject", "tempfail"}

func (a Action) String() string { return actionNames[a] }

// MarshalText writes the action's name, so JSON shows "accept", "reject"
// or "tempfail".
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Verdict is one decision of the guard. Rule names the configured rule or
// the built-in check (prefixed "builtin:") that decided; Reason explains it
// for logs and `relay test`. Text is what the client sees.
type Verdict struct {
	Action   Action
	Code     int    // SMTP reply code; 0 for Accept
	Enhanced string // RFC 3463 status, "5.7.1"; "" for Accept
	Text     string
	Rule     string
	Reason   string
}

// Accepted reports whether the command may go on.
func (v Verdict) Accepted() bool { return v.Action == Accept }

// SMTPError returns the reply for a refusal, or nil for Accept. go-smtp
// recognises the reply only as an unwrapped *smtp.SMTPError (a type
// assertion, not errors.As): return it as it is.
func (v Verdict) SMTPError() *smtp.SMTPError {
	if v.Action == Accept {
		return nil
	}
	return &smtp.SMTPError{Code: v.Code, EnhancedCode: parseEnhanced(v.Enhanced), Message: v.Text}
}

// Err is SMTPError as an error: a nil interface for Accept (a nil
// *smtp.SMTPError stored in an error would be non-nil, and go-smtp would
// then dereference it).
func (v Verdict) Err() error {
	if v.Action == Accept {
		return nil
	}
	return v.SMTPError()
}

func parseEnhanced(s string) smtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCodeNotSet
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return smtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	return ec
}

func accept(rule, reason string) Verdict {
	return Verdict{Action: Accept, Rule: rule, Reason: reason}
}

func refuse(code int, enhanced, text, rule, reason string) Verdict {
	a := Reject
	if code < 500 {
		a = TempFail
	}
	return Verdict{Action: a, Code: code, Enhanced: enhanced, Text: text, Rule: rule, Reason: reason}
}
