package guard

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
