package dsn

import (
	"bytes"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sekisho/sekisho/accounts/addr"
)

// maxFieldLine keeps folded fields short; maxToken caps a single word (RFC
// 5322 allows 998 octets per line).
const (
	maxFieldLine = 78
	maxToken     = 900
	maxLine      = 998
)

// deliveryStatus renders the message/delivery-status body: the per-message
// fields, then one block per recipient, blocks separated by an empty line.
func deliveryStatus(p *Params) []byte {
	var b bytes.Buffer
	writeField(&b, "Reporting-MTA", "dns; "+p.ReportingMTA)
	if env := sanitizeASCII(p.OrigEnvID); env != "" {
		writeField(&b, "Original-Envelope-Id", env)
	}
	if !p.ArrivalDate.IsZero() {
		writeField(&b, "Arrival-Date", p.ArrivalDate.Format(time.RFC1123Z))
	}
	for _, r := range p.Recipients {
		b.WriteString("\r\n")
		// Addresses are written unfolded: folding could change the
		// spaces inside a quoted local part.
		if orig, ok := originalField(r.Original); ok {
			b.WriteString("Original-Recipient: " + orig + "\r\n")
		}
		b.WriteString("Final-Recipient: " + addressField(r.Final) + "\r\n")
		writeField(&b, "Action", string(r.Action))
		writeField(&b, "Status", r.Status)
		if mta := typedValue(r.RemoteMTA, "dns"); mta != "" {
			writeField(&b, "Remote-MTA", mta)
		}
		if diag := typedValue(r.DiagnosticCode, diagnosticType(r.DiagnosticCode)); diag != "" {
			writeField(&b, "Diagnostic-Code", diag)
		}
		if !r.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", r.LastAttempt.Format(time.RFC1123Z))
		}
		if r.Action == Delayed && !r.WillRetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", r.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.Bytes()
}

// writeField writes "Name: value" folded at spaces. The value must already
// be printable US-ASCII without line breaks.
func writeField(b *bytes.Buffer, name, value string) {
	line := len(name) + 1
	b.WriteString(name + ":")
	for _, word := range strings.Fields(value) {
		if len(word) > maxToken {
			word = word[:maxToken]
		}
		if line+1+len(word) > maxFieldLine && line > len(name)+1 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" " + word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
}

// typedValue renders "type; value" fields (Remote-MTA, Diagnostic-Code):
// a value without a type gets def. Remote text is sanitized to US-ASCII.
func typedValue(v, def string) string {
	v = sanitizeASCII(v)
	if v == "" {
		return ""
	}
	if i := strings.IndexByte(v, ';'); i > 0 && isAtom(strings.TrimSpace(v[:i])) {
		t, rest := strings.TrimSpace(v[:i]), strings.TrimSpace(v[i+1:])
		if rest == "" {
			return ""
		}
		return t + "; " + rest
	}
	return def + "; " + v
}

// diagnosticType is the type given to a bare Diagnostic-Code: "smtp" when
// it is a server reply (it starts with a reply code), "x-sekisho" for our
// own description of a failure, such as a refused connection.
func diagnosticType(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 3 && strings.IndexByte("245", v[0]) >= 0 && isDigit(v[1]) && isDigit(v[2]) &&
		(len(v) == 3 || v[3] == ' ' || v[3] == '-') {
		return "smtp"
	}
	return "x-sekisho"
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// addressField renders an envelope address with its RFC 3464 address type:
// rfc822 for ASCII, utf-8 (RFC 6533 utf-8-addr-xtext) otherwise, because the
// delivery-status part must stay US-ASCII.
func addressField(a string) string {
	w := wireAddress(a)
	if isASCII(w) {
		return "rfc822; " + w
	}
	return "utf-8; " + utf8AddrXtext(w)
}

// originalField renders an ORCPT value. It comes from the SMTP client, so a
// malformed one is dropped rather than allowed to stop the notification.
func originalField(o string) (string, bool) {
	o = strings.TrimSpace(o)
	if o == "" || strings.ContainsAny(o, "\r\n") || !utf8.ValidString(o) {
		return "", false
	}
	typ, val := "rfc822", o
	if i := strings.IndexByte(o, ';'); i > 0 && isAtom(strings.TrimSpace(o[:i])) {
		typ, val = strings.ToLower(strings.TrimSpace(o[:i])), strings.TrimSpace(o[i+1:])
	}
	if val == "" || len(val) > maxToken {
		return "", false
	}
	if typ == "rfc822" && isPrintableASCII(val) {
		return "rfc822; " + val, true
	}
	if typ == "rfc822" || typ == "utf-8" {
		return "utf-8; " + utf8AddrXtext(val), true
	}
	if !isPrintableASCII(val) {
		return "", false
	}
	return typ + "; " + val, true
}

// utf8AddrXtext encodes an address as RFC 6533 utf-8-addr-xtext: QCHARs as
// themselves, everything else as \x{HEX}.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && r > 0x20 && r != '+' && r != '=' && r != '\\' && r != 0x7f {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\x{%X}`, r)
	}
	return b.String()
}

// wireAddress re-quotes the local part the way it must appear in a header
// or an SMTP command ("john doe@x" becomes "\"john doe\"@x").
func wireAddress(a string) string {
	local, domain, ok := addr.Split(a)
	if !ok {
		return a
	}
	return addr.QuoteLocal(local) + "@" + domain
}

// checkAddress accepts what an SMTP server could have handed over: local@domain,
// valid UTF-8, no control characters, short enough for one header line.
func checkAddress(a string) error {
	if _, _, ok := addr.Split(a); !ok {
		return fmt.Errorf("%q is not of the form local@domain", a)
	}
	if !utf8.ValidString(a) {
		return fmt.Errorf("%q is not valid UTF-8", a)
	}
	for _, r := range a {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains control character 0x%02x", a, r)
		}
	}
	if len(a) > maxToken/2 {
		return fmt.Errorf("address of %d octets is too long", len(a))
	}
	return nil
}

// checkHostname accepts an LDH host name (with '_') or an address literal.
func checkHostname(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if addr.IsDomainLiteral(h) && isPrintableASCII(h) && !strings.ContainsAny(h, " <>;") {
		return nil
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("%q is not a host name", h)
		}
	}
	if len(h) > addr.MaxDomainLen {
		return fmt.Errorf("host name of %d octets is too long", len(h))
	}
	return nil
}

// originalHeader returns the original header with CRLF line ends, ready for
// the text/rfc822-headers part, and the transfer encoding it needs ("" for
// 7bit). Only the header is kept: everything after the first empty line is
// dropped.
func originalHeader(raw []byte) ([]byte, string) {
	var out bytes.Buffer
	needQP := false
	for len(raw) > 0 {
		i := bytes.IndexAny(raw, "\r\n")
		line := raw
		rest := []byte(nil)
		if i >= 0 {
			line = raw[:i]
			// A line ends at CRLF, LF or a bare CR; each becomes CRLF.
			if raw[i] == '\r' && i+1 < len(raw) && raw[i+1] == '\n' {
				rest = raw[i+2:]
			} else {
				rest = raw[i+1:]
			}
		}
		if len(line) == 0 {
			break
		}
		if len(line) > maxLine || bytes.IndexByte(line, 0) >= 0 || !isASCII(string(line)) {
			needQP = true
		}
		out.Write(line)
		out.WriteString("\r\n")
		raw = rest
	}
	if out.Len() == 0 {
		return nil, ""
	}
	if !needQP {
		return out.Bytes(), ""
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	_, _ = w.Write(out.Bytes()) // writes to a bytes.Buffer cannot fail
	_ = w.Close()
	if !bytes.HasSuffix(qp.Bytes(), []byte("\r\n")) {
		qp.WriteString("\r\n")
	}
	return qp.Bytes(), "quoted-printable"
}

// sanitizeASCII turns remote text into one line of printable US-ASCII:
// line breaks and tabs become spaces, anything else unprintable becomes '?'.
func sanitizeASCII(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			space = true
			continue
		case r > 0x20 && r < 0x7f:
		default:
			r = '?'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// sanitizeText is sanitizeASCII for the UTF-8 human-readable part: it keeps
// printable non-ASCII characters.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u3000':
			space = true
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' || r == '\ufeff':
			r = '?'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// originalMessage returns the whole original message for a message/rfc822
// part, every line ending in CRLF, and "8bit" when it is not 7-bit (RFC
// 2046 §5.2.1 allows no other encoding there); the notification is then
// 8-bit, and BodyType says so.
func originalMessage(raw []byte) ([]byte, string) {
	var out bytes.Buffer
	out.Grow(len(raw) + len(raw)/40)
	cte := ""
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r' && i+1 < len(raw) && raw[i+1] == '\n':
			out.WriteString("\r\n")
			i++
		case c == '\r' || c == '\n':
			out.WriteString("\r\n")
		default:
			if c >= 0x80 || c == 0 {
				cte = "8bit"
			}
			out.WriteByte(c)
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	return out.Bytes(), cte
}
