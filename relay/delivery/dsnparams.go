package delivery

import (
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// RcptDSN is one recipient's RFC 3461 parameters as the gateway received
// them, passed on to a next hop that offers DSN (RFC 3461 §5.2).
type RcptDSN struct {
	// Notify is "", "NEVER" or a comma list of SUCCESS, FAILURE, DELAY.
	Notify string
	// ORcpt is the original recipient, "rfc822;user@example.jp" (a bare
	// address is taken as rfc822, or utf-8 when it is not ASCII).
	ORcpt string
}

// dsnMail returns the MAIL parameters to pass on; values that are not
// valid RFC 3461 are dropped rather than sent (go-smtp would refuse the
// whole command, which reads like a lost connection).
func dsnMail(m Message) (ret smtp.DSNReturn, envID string) {
	switch r := strings.ToUpper(m.Ret); r {
	case "FULL", "HDRS":
		ret = smtp.DSNReturn(r)
	}
	if m.EnvID != "" && len(m.EnvID) <= 100 && printableASCII(m.EnvID) {
		envID = m.EnvID
	}
	return ret, envID
}

// dsnRcpt returns recipient i's parameters, nil when it has none.
func dsnRcpt(m Message, i int) *smtp.RcptOptions {
	if i >= len(m.RcptDSN) {
		return nil
	}
	d := m.RcptDSN[i]
	var o smtp.RcptOptions
	if d.Notify != "" {
		var set []smtp.DSNNotify
		never := false
		for _, n := range strings.Split(strings.ToUpper(d.Notify), ",") {
			switch n = strings.TrimSpace(n); n {
			case "NEVER":
				never = true
			case "SUCCESS", "FAILURE", "DELAY":
				set = append(set, smtp.DSNNotify(n))
			}
		}
		switch {
		case never && len(set) == 0:
			o.Notify = []smtp.DSNNotify{smtp.DSNNotifyNever}
		case !never:
			o.Notify = set
		}
	}
	if typ, a := splitORcpt(d.ORcpt); a != "" {
		switch {
		case typ == "RFC822" && printableASCII(a):
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeRFC822, a
		case typ == "UTF-8" || typ == "RFC822":
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeUTF8, a
		}
	}
	if len(o.Notify) == 0 && o.OriginalRecipient == "" {
		return nil
	}
	return &o
}

// splitORcpt splits "rfc822;addr" into the upper-case type and the
// address; a value without a type is rfc822, or utf-8 when not ASCII.
func splitORcpt(s string) (typ, address string) {
	if t, a, ok := strings.Cut(s, ";"); ok && t != "" && !strings.Contains(t, "@") {
		return strings.ToUpper(strings.TrimSpace(t)), strings.TrimSpace(a)
	}
	if isASCII(s) {
		return "RFC822", s
	}
	return "UTF-8", s
}

// dsnMailParams and dsnRcptParams write the parameters for the pipelined
// path, which builds its commands by hand, as go-smtp's Mail and Rcpt do.
func dsnMailParams(b *strings.Builder, m Message) {
	ret, envID := dsnMail(m)
	if ret != "" {
		b.WriteString(" RET=" + string(ret))
	}
	if envID != "" {
		b.WriteString(" ENVID=" + xtext(envID))
	}
}

func dsnRcptParams(b *strings.Builder, m Message, i int) {
	o := dsnRcpt(m, i)
	if o == nil {
		return
	}
	if len(o.Notify) > 0 {
		b.WriteString(" NOTIFY=")
		for j, n := range o.Notify {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(n))
		}
	}
	switch o.OriginalRecipientType {
	case smtp.DSNAddressTypeRFC822:
		b.WriteString(" ORCPT=RFC822;" + xtext(o.OriginalRecipient))
	case smtp.DSNAddressTypeUTF8:
		b.WriteString(" ORCPT=UTF-8;" + utf8AddrXtext(o.OriginalRecipient))
	}
}

// xtext encodes RFC 3461 §4 xtext: '+', '=' and anything outside
// printable ASCII as +XX.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("+" + strings.ToUpper(strconv.FormatInt(int64(c), 16)))
	}
	return b.String()
}

// utf8AddrXtext encodes RFC 6533 utf-8-addr-xtext: \x{HEX} for each
// code point outside printable ASCII, '+' and '='.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
			continue
		}
		b.WriteString(`\x{` + strings.ToUpper(strconv.FormatInt(int64(r), 16)) + "}")
	}
	return b.String()
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
