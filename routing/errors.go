package routing

import "fmt"

// Error is a routing failure with the SMTP reply a delivery attempt should
// record for the recipient. Temporary errors are retried; permanent ones
// bounce.
//
// The codes follow RFC 3463 and Postfix's practice:
//
//	recipient domain does not exist (NXDOMAIN)   550 5.1.2  permanent
//	null MX (RFC 7505)                           556 5.1.10 permanent
//	domain or MX hosts have no address           550 5.4.4  permanent
//	best MX is this gateway (mail loop)          554 5.4.6  permanent
//	DNS SERVFAIL, REFUSED, timeout               451 4.4.3  temporary
//	a configured target does not resolve         451 4.4.3  temporary
//	a configured target resolves to us           451 4.4.6  temporary
//	recipient is not an address                  501 5.1.3  permanent
//
// NXDOMAIN of the recipient's own domain gets 5.1.2 ("bad destination
// system address") rather than Postfix's 5.4.4: the address names a system
// that does not exist, which is what 5.1.2 says and what a sender can act
// on. 5.4.4 ("unable to route") is kept for domains that exist but lead
// nowhere. Problems in our own routing table are temporary on purpose: an
// administrator can fix them before the queue gives up, whereas a bounce
// would lose the mail.
type Error struct {
	Temporary bool
	Code      int
	Enhanced  string
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Msg)
}

func tempError(format string, a ...any) *Error {
	return &Error{Temporary: true, Code: 451, Enhanced: "4.4.3", Msg: fmt.Sprintf(format, a...)}
}

func permError(code int, enhanced, format string, a ...any) *Error {
	return &Error{Code: code, Enhanced: enhanced, Msg: fmt.Sprintf(format, a...)}
}
