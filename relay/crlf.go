package relay

import "github.com/sekisho/sekisho/relay/smtpd"

// LinePolicy says what to do with a bare CR, a bare LF or a NUL inside a
// message; the strict readers of relay/smtpd apply it line by line, and
// the session chooses it per message source (relay.bare_line_endings).
type LinePolicy = smtpd.LinePolicy

const (
	// LineReject reads to the real end of data, then answers 550 5.6.0.
	LineReject = smtpd.LineReject
	// LineNormalize turns bare CR and LF into CRLF and drops NULs
	// (Postfix >= 3.9's smtpd_forbid_bare_newline = normalize).
	LineNormalize = smtpd.LineNormalize
)

// ParseLinePolicy reads "reject" or "normalize".
func ParseLinePolicy(s string) (LinePolicy, error) { return smtpd.ParseLinePolicy(s) }
