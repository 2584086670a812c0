package guard

import "github.com/sekisho/sekisho/relay/smtpd"

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
// for logs and `relay test`. The reply is what the client sees (zero for
// Accept: the stage's own success reply is given).
type Verdict struct {
	Action Action
	smtpd.Reply
	Rule   string
	Reason string
}

// Accepted reports whether the command may go on.
func (v Verdict) Accepted() bool { return v.Action == Accept }

func accept(rule, reason string) Verdict {
	return Verdict{Action: Accept, Rule: rule, Reason: reason}
}

func refuse(code int, enhanced, text, rule, reason string) Verdict {
	a := Reject
	if code < 500 {
		a = TempFail
	}
	return Verdict{Action: a, Reply: smtpd.R(code, enhanced, text), Rule: rule, Reason: reason}
}
