// Package smtpd owns the SMTP server protocol of the gateway: the command
// reader, the session state machine, the strict DATA and BDAT readers,
// PIPELINING, STARTTLS and the AUTH exchange. It knows nothing of policy:
// every decision is asked of a Handler, stage by stage.
package smtpd

import (
	"strconv"
	"strings"
)

// Reply is one SMTP reply: a code, an RFC 3463 enhanced status and text.
// Text may hold several lines separated by "\n"; they go out as a
// multi-line reply. A Reply is also an error, so a sasl.Server can fail
// with the exact reply it wants.
type Reply struct {
	Code     int
	Enhanced string // "2.1.0"; empty only for 220, 221 and 354
	Text     string
}

func (r *Reply) Error() string { return r.String() }

// String is the reply as one line, for logs and errors.
func (r Reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	return s + " " + strings.ReplaceAll(r.Text, "\n", " / ")
}

// Temporary reports a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Failed reports a 4xx or 5xx reply.
func (r Reply) Failed() bool { return r.Code >= 400 }

// AppendWire writes the reply in wire form to b: one line per line of
// Text, each with the code and Enhanced.
func (r Reply) AppendWire(b []byte) []byte {
	text := r.Text
	for {
		line, rest, more := strings.Cut(text, "\n")
		b = strconv.AppendInt(b, int64(r.Code), 10)
		if more {
			b = append(b, '-')
		} else {
			b = append(b, ' ')
		}
		if r.Enhanced != "" {
			b = append(b, r.Enhanced...)
			b = append(b, ' ')
		}
		b = append(b, line...)
		b = append(b, '\r', '\n')
		if !more {
			return b
		}
		text = rest
	}
}

// R builds a reply.
func R(code int, enhanced, text string) Reply {
	return Reply{Code: code, Enhanced: enhanced, Text: text}
}

// ReplyBareLineEnding refuses a message with a bare CR, a bare LF or a NUL
// under LineReject; a handler that gets ErrBareLineEnding answers it too.
var ReplyBareLineEnding = R(550, "5.6.0", "Message refused: bare CR, bare LF or NUL found; lines must end with CRLF")

// The protocol's own replies; policy replies come from the Handler.
var (
	replyBadSequenceHelo = R(503, "5.5.1", "Bad sequence of commands: send HELO or EHLO first")
	replyBadSequenceMail = R(503, "5.5.1", "Bad sequence of commands: send MAIL first")
	replyBadSequenceRcpt = R(503, "5.5.1", "Bad sequence of commands: send RCPT first")
	replyNestedMail      = R(503, "5.5.1", "Bad sequence of commands: sender already given (RSET first)")
	replyInTransaction   = R(503, "5.5.1", "Bad sequence of commands: not allowed inside a mail transaction (RSET first)")
	replyBDATMixed       = R(503, "5.5.1", "Bad sequence of commands: BDAT in progress; send BDAT or NOOP, or RSET, EHLO or QUIT to abandon the message")
	replyBDATSyntax      = R(501, "5.5.4", "Syntax: BDAT size [LAST]; closing the connection")
	replyUnknown         = R(500, "5.5.2", "Command not recognized")
	replyNotImplemented  = R(502, "5.5.1", "Command not implemented")
	replyLineTooLong     = R(500, "5.5.2", "Line too long")
	replyBadChars        = R(500, "5.5.2", "Command line contains a NUL or a bare CR")
	replyNoTLS           = R(454, "4.7.0", "TLS not available")
	replyAlreadyTLS      = R(503, "5.5.1", "Bad sequence of commands: TLS already active")
	replyAlreadyAuth     = R(503, "5.5.1", "Bad sequence of commands: already authenticated")
	replyNoAuth          = R(502, "5.5.1", "AUTH not available")
	replyBadMech         = R(504, "5.5.4", "Unrecognized authentication mechanism")
	replyAuthCancel      = R(501, "5.7.0", "Authentication cancelled")
	replyAuthBase64      = R(501, "5.5.2", "Cannot decode the base64 response")
	replyAuthOK          = R(235, "2.7.0", "Authentication successful")
	replyAuthFailed      = R(454, "4.7.0", "Temporary authentication failure")
	replyTooManyRcpts    = R(452, "4.5.3", "Too many recipients")
	replyTooLarge        = R(552, "5.3.4", "Message too large")
	replyTooManyErrors   = R(421, "4.7.0", "Too many errors; closing the connection")
	replyTimeout         = R(421, "4.4.2", "Timeout; closing the connection")
	replyShutdown        = R(421, "4.3.2", "Service shutting down; closing the connection")
	replyNoop            = R(250, "2.0.0", "OK")
	replyReset           = R(250, "2.0.0", "Reset OK")
	replyVRFY            = R(252, "2.5.0", "Cannot VRFY the user; send mail and delivery will be attempted")
	replyStartTLS        = R(220, "2.0.0", "Ready to start TLS")
	replyData            = R(354, "", "Start mail input; end with <CRLF>.<CRLF>")
	replyLocalError      = R(451, "4.3.0", "Local error in processing; try again later")
)
