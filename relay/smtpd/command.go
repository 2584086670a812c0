package smtpd

import (
	"errors"
	"strconv"
	"strings"
)

// MailParams are the MAIL FROM parameters we implement.
type MailParams struct {
	Size     int64  // SIZE (RFC 1870); 0 if not given
	Body     string // BODY: 7BIT or 8BITMIME (RFC 6152)
	SMTPUTF8 bool   // RFC 6531
	Ret      string // RET: FULL or HDRS (RFC 3461)
	EnvID    string // ENVID, xtext decoded
	Auth     string // AUTH=, xtext decoded ("<>" for none)
}

// RcptParams are the RCPT TO parameters we implement (RFC 3461).
type RcptParams struct {
	Notify []string // NEVER, or some of SUCCESS, FAILURE, DELAY
	ORcpt  string   // "type;address", the address xtext decoded
}

// command is one parsed command line.
type command struct {
	verb string // upper case
	arg  string // the rest, leading spaces removed
}

// parseCommand splits a command line (its line ending removed).
func parseCommand(line string) command {
	verb, arg, _ := strings.Cut(line, " ")
	return command{verb: strings.ToUpper(verb), arg: strings.TrimLeft(arg, " ")}
}

// errSyntax carries the text of a 501 reply.
type errSyntax string

func (e errSyntax) Error() string { return string(e) }

// parsePathArg reads "FROM:<path> params" or "TO:<path> params": the
// keyword, the path without its brackets and the parameters. A space
// after the colon and a path without brackets are tolerated, as Postfix
// does, since old clients send them.
func parsePathArg(arg, keyword string) (path string, params []string, err error) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return "", nil, errSyntax("Syntax: " + map[string]string{"FROM:": "MAIL FROM:<address>", "TO:": "RCPT TO:<address>"}[keyword])
	}
	rest := strings.TrimLeft(arg[len(keyword):], " ")
	if strings.HasPrefix(rest, "<") {
		end := closingBracket(rest)
		if end < 0 {
			return "", nil, errSyntax("Syntax error in the address: no closing '>'")
		}
		path, rest = rest[1:end], rest[end+1:]
		if rest != "" && rest[0] != ' ' {
			return "", nil, errSyntax("Syntax error: a space must follow the address")
		}
	} else {
		path, rest, _ = strings.Cut(rest, " ")
		if path == "" {
			return "", nil, errSyntax("Syntax error: no address given")
		}
	}
	// A source route (@a,@b:user@d) is accepted and ignored (RFC 5321 §4.1.1.3).
	if strings.HasPrefix(path, "@") {
		if i := strings.IndexByte(path, ':'); i > 0 {
			path = path[i+1:]
		}
	}
	return path, strings.Fields(rest), nil
}

// closingBracket finds the '>' that closes s[0] == '<', skipping quoted
// strings and quoted pairs in the local part.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '>' && !quoted:
			return i
		}
	}
	return -1
}

// param is a MAIL or RCPT parameter we implement: the extension that
// must have been advertised for it, and its bit in a set of those seen.
type param struct {
	ext extension
	bit uint8
}

var (
	mailParams = map[string]param{
		"SIZE": {extSize, 1 << 0}, "BODY": {ext8BitMIME, 1 << 1}, "SMTPUTF8": {extSMTPUTF8, 1 << 2},
		"RET": {extDSN, 1 << 3}, "ENVID": {extDSN, 1 << 4}, "AUTH": {extAuth, 1 << 5},
	}
	rcptParams = map[string]param{"NOTIFY": {extDSN, 1 << 0}, "ORCPT": {extDSN, 1 << 1}}
)

// checkParam refuses a parameter we do not implement or whose extension
// was not advertised on this connection (555, RFC 5321 §4.1.1.11), or
// one given twice (501, RFC 3461 §4).
func checkParam(known map[string]param, kind, key string, offered extension, seen *uint8) *Reply {
	p, ok := known[key]
	switch {
	case !ok:
		return &Reply{555, "5.5.4", "Unsupported " + kind + " parameter " + key}
	case offered&p.ext == 0:
		return &Reply{555, "5.5.4", kind + " parameter " + key + " belongs to a service extension not offered here (EHLO lists them)"}
	case *seen&p.bit != 0:
		return &Reply{501, "5.5.4", "Duplicate " + kind + " parameter " + key}
	}
	*seen |= p.bit
	return nil
}

// parseMailParams reads MAIL FROM's parameters; max is the size limit,
// offered the extensions that may be used.
func parseMailParams(params []string, max int64, offered extension) (MailParams, *Reply) {
	var p MailParams
	var seen uint8
	for _, kv := range params {
		k, v, _ := strings.Cut(kv, "=")
		key := strings.ToUpper(k)
		if bad := checkParam(mailParams, "MAIL", key, offered, &seen); bad != nil {
			return p, bad
		}
		switch key {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return p, &Reply{501, "5.5.4", "Syntax error in the SIZE parameter"}
			}
			if max > 0 && n > max {
				return p, &Reply{552, "5.3.4", "Message size exceeds the limit of " + strconv.FormatInt(max, 10) + " bytes"}
			}
			p.Size = n
		case "BODY":
			switch v = strings.ToUpper(v); v {
			case "7BIT", "8BITMIME":
				p.Body = v
			default:
				return p, &Reply{501, "5.5.4", "Unknown BODY value (7BIT, 8BITMIME)"}
			}
		case "SMTPUTF8":
			if v != "" {
				return p, &Reply{501, "5.5.4", "SMTPUTF8 takes no value"}
			}
			p.SMTPUTF8 = true
		case "RET":
			switch v = strings.ToUpper(v); v {
			case "FULL", "HDRS":
				p.Ret = v
			default:
				return p, &Reply{501, "5.5.4", "Unknown RET value (FULL, HDRS)"}
			}
		case "ENVID":
			d, err := decodeXtext(v)
			if err != nil || d == "" || len(d) > 100 {
				return p, &Reply{501, "5.5.4", "Malformed ENVID parameter"}
			}
			p.EnvID = d
		case "AUTH":
			d, err := decodeXtext(v)
			if err != nil || d == "" {
				return p, &Reply{501, "5.5.4", "Malformed AUTH parameter"}
			}
			p.Auth = d
		}
	}
	return p, nil
}

// parseRcptParams reads RCPT TO's parameters.
func parseRcptParams(params []string, offered extension) (RcptParams, *Reply) {
	var p RcptParams
	var seen uint8
	for _, kv := range params {
		k, v, _ := strings.Cut(kv, "=")
		key := strings.ToUpper(k)
		if bad := checkParam(rcptParams, "RCPT", key, offered, &seen); bad != nil {
			return p, bad
		}
		switch key {
		case "NOTIFY":
			n, ok := parseNotify(v)
			if !ok {
				return p, &Reply{501, "5.5.4", "Malformed NOTIFY parameter (NEVER, or SUCCESS, FAILURE, DELAY)"}
			}
			p.Notify = n
		case "ORCPT":
			typ, addr, ok := strings.Cut(v, ";")
			d, err := decodeXtext(addr)
			if !ok || typ == "" || err != nil || d == "" {
				return p, &Reply{501, "5.5.4", "Malformed ORCPT parameter"}
			}
			p.ORcpt = typ + ";" + d
		}
	}
	return p, nil
}

func parseNotify(v string) ([]string, bool) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(strings.ToUpper(v), ",") {
		switch n {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return nil, false
		}
		if seen[n] {
			return nil, false
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, !seen["NEVER"] || len(out) == 1
}

var errXtext = errors.New("malformed xtext")

// decodeXtext decodes RFC 3461 xtext: "+HH" stands for one byte.
func decodeXtext(s string) (string, error) {
	if strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errXtext
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
			return "", errXtext
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}
