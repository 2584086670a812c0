package guard

// The effect.dat importer; the mapping is documented in the package doc.

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/charset"
)

// ImportProblem is an effect.dat line that was not converted.
type ImportProblem struct {
	Line   int
	Text   string
	Reason string
}

// Imported is the result of converting an effect.dat.
type Imported struct {
	Source   string // the file's base name, used in rule names
	Rules    []RuleConfig
	Problems []ImportProblem
	entries  []importEntry // what WriteYAML prints, in file order
}

// importEntry is one line's contribution to the output: rules (by index)
// and remarks.
type importEntry struct {
	line  int
	text  string
	notes []string
	rules []int
}

// ImportEffectDat converts an effect.dat; name is the file's path, for rule
// names. Bad lines become Problems. A file that is not UTF-8 is read as
// Shift_JIS, the encoding E-Post's Windows tools write; a line that is
// neither is a Problem too.
func ImportEffectDat(data []byte, name string) *Imported {
	im := &Imported{Source: filepath.Base(name)}
	lines, _ := charset.DecodeLines(data, charset.Auto)
	onlyLine := 0
	for i, l := range lines {
		n := i + 1
		line := strings.TrimSpace(l.Text)
		if line == "" {
			continue
		}
		if onlyLine > 0 {
			im.problem(n, line, fmt.Sprintf("never reached: E-Post stops at \"only\" on line %d", onlyLine))
			continue
		}
		if im.convertLine(n, line, l.Err) {
			onlyLine = n
		}
	}
	return im
}

func (im *Imported) problem(line int, text, reason string) {
	im.Problems = append(im.Problems, ImportProblem{Line: line, Text: text, Reason: reason})
}

// patternKind is what an effect.dat pattern matches.
type patternKind uint8

const (
	patEveryone patternKind = iota
	patNetwork
	patSender
	patNull
	patBlank
	patComment
)

// convertLine converts one non-empty line and reports whether it was an
// "only" line, after which E-Post reads no further. bad is the line's
// first byte that is neither UTF-8 nor Shift_JIS: only a comment may
// hold one.
func (im *Imported) convertLine(n int, text string, bad *charset.InvalidError) (only bool) {
	kind, value, note, err := parseEffectPattern(text)
	if kind == patComment {
		im.entries = append(im.entries, importEntry{line: n, text: text})
		return false
	}
	if bad != nil {
		im.problem(n, text, bad.LineLeftOut())
		return false
	}
	if err != nil {
		im.problem(n, text, err.Error())
		return false
	}
	fields := strings.Fields(text)
	keyword := "true"
	switch {
	case len(fields) == 1 && kind == patEveryone && strings.HasPrefix(strings.ToLower(fields[0]), "norelay"):
		keyword = strings.ToLower(fields[0])
	case len(fields) == 2:
		keyword = strings.ToLower(fields[1])
	case len(fields) > 2:
		im.problem(n, text, "expected PATTERN [true|false|default|only|norelay[,0|,2]]")
		return false
	}
	e := importEntry{line: n, text: text}
	if note != "" {
		e.notes = append(e.notes, note)
	}
	add := func(action string) {
		rc := RuleConfig{Name: fmt.Sprintf("%s:%d", im.Source, n), Action: action}
		switch kind {
		case patNetwork:
			rc.Networks = []string{value}
		case patSender:
			rc.Senders = []string{value}
		case patNull:
			rc.Senders = []string{"<>"}
		}
		e.rules = append(e.rules, len(im.Rules))
		im.Rules = append(im.Rules, rc)
	}
	refuseLine := func(reason string) bool {
		im.problem(n, text, reason)
		return false
	}
	const openRelay = "an allow for every client is an open relay; sekisho refuses such a rule"
	everyone := kind == patEveryone || kind == patNetwork && strings.HasSuffix(value, "/0")
	const senderAllow = "an allow by envelope sender alone lets anyone who forges that sender relay; add the client's networks to a rule by hand"
	switch kind {
	case patNull:
		switch keyword {
		case "default":
			e.notes = append(e.notes, "no rule needed: null_sender: local_only (the default) accepts MAIL FROM:<> for our domains only")
		case "false":
			add("deny")
		case "true":
			return refuseLine("E-Post would accept bounces for any recipient from anyone; sekisho keeps the null sender to our domains (null_sender: local_only) or to trusted clients (null_sender: trusted)")
		default:
			return refuseLine(fmt.Sprintf("keyword %q is not meaningful for #<>", keyword))
		}
	case patBlank:
		if keyword != "false" {
			return refuseLine("sekisho never accepts MAIL FROM without an address (501 from the SMTP parser)")
		}
		e.notes = append(e.notes, "no rule needed: MAIL FROM without an address is always refused with 501")
	default:
		switch keyword {
		case "true":
			if everyone {
				return refuseLine(openRelay)
			}
			if kind == patSender {
				return refuseLine(senderAllow)
			}
			add("allow")
		case "false":
			add("deny")
		case "default", "norelay,2":
			add("require_auth")
		case "norelay", "norelay,0":
			add("no_relay")
			if kind == patEveryone {
				e.notes = append(e.notes, "E-Post's plain norelay refuses relay even after SMTP AUTH; use action require_auth (norelay,2) if your users relay with AUTH")
			}
		case "norelay,1":
			return refuseLine("norelay,1 is not documented by E-Post (\"空き\"); write the rule by hand")
		case "only":
			if everyone {
				return refuseLine(openRelay)
			}
			if kind == patSender {
				return refuseLine(senderAllow)
			}
			add("allow")
			im.Rules[len(im.Rules)-1].Name += ":only"
			rc := RuleConfig{Name: fmt.Sprintf("%s:%d:others", im.Source, n), Action: "no_relay"}
			e.rules = append(e.rules, len(im.Rules))
			im.Rules = append(im.Rules, rc)
			e.notes = append(e.notes, "only: this client may relay, every other client may not (E-Post reads no further lines)")
			only = true
		default:
			return refuseLine(fmt.Sprintf("unknown keyword %q (true, false, default, only, norelay, norelay,0, norelay,2)", keyword))
		}
	}
	im.entries = append(im.entries, e)
	return only
}

// parseEffectPattern classifies the first field of a line. value is the
// network or sender pattern in sekisho's syntax.
func parseEffectPattern(text string) (kind patternKind, value, note string, err error) {
	p := strings.Fields(text)[0]
	lp := strings.ToLower(p)
	switch {
	case lp == "#<>":
		return patNull, "", "", nil
	case lp == "#blank":
		return patBlank, "", "", nil
	case strings.HasPrefix(p, "#"):
		return patComment, "", "", nil
	case p == "*" || p == "*.*.*.*" || strings.HasPrefix(lp, "norelay"):
		return patEveryone, "", "", nil
	case strings.Contains(p, "@"):
		if _, err := compilePattern(p); err != nil {
			return 0, "", "", err
		}
		return patSender, p, "", nil
	}
	if looksLikeIPv4(p) || strings.Contains(p, ":") || strings.Contains(p, "/") {
		v, err := effectNetwork(p)
		return patNetwork, v, "", err
	}
	if labels := strings.Split(p, "."); len(labels) == 4 && isDigits(labels[0]) {
		return 0, "", "", fmt.Errorf("%q looks like an IPv4 address but is not one", p)
	}
	d, err := addr.Domain(p)
	if err != nil || !strings.Contains(d, ".") || addr.IsDomainLiteral(d) {
		return 0, "", "", fmt.Errorf("%q is not an IP address, network, address or domain", p)
	}
	return patSender, "*@" + d, "a bare domain is matched against the envelope sender's domain, not the client's host name", nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// looksLikeIPv4 reports four dot-separated parts of digits or '*'.
func looksLikeIPv4(s string) bool {
	parts := strings.Split(strings.SplitN(s, "/", 2)[0], ".")
	if len(parts) != 4 {
		return false
	}
	for _, q := range parts {
		if q == "" {
			return false
		}
		for _, c := range q {
			if c != '*' && (c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// effectNetwork converts an address, a CIDR block or an IPv4 address with
// trailing '*' octets to a CIDR block.
func effectNetwork(s string) (string, error) {
	if !strings.Contains(s, "*") {
		p, err := ParseNetwork(s)
		if err != nil {
			return "", err
		}
		return p.String(), nil
	}
	if strings.Contains(s, "/") {
		return "", fmt.Errorf("%q: a wildcard and a prefix length together", s)
	}
	parts := strings.Split(s, ".")
	var b [4]byte
	bits := 0
	for i, q := range parts {
		if q == "*" {
			continue
		}
		if i > 0 && parts[i-1] == "*" {
			return "", fmt.Errorf("%q: '*' only in trailing octets can be written as a CIDR block", s)
		}
		v, err := strconv.Atoi(q)
		if err != nil || v > 255 {
			return "", fmt.Errorf("%q: octet %q is not 0-255", s, q)
		}
		b[i] = byte(v)
		bits += 8
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), bits).String(), nil
}

// WriteYAML prints the converted rules as a whole relay.guard.rules block
// that pastes into a configuration as it is, each rule after a comment
// quoting its effect.dat line.
func (im *Imported) WriteYAML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Converted from %s by `sekisho import effect-dat`.\n", commentSafe(im.Source))
	fmt.Fprintf(bw, "# The rules keep the file's order: the first rule that matches decides, so\n")
	fmt.Fprintf(bw, "# the inner mail server's allow rule must stay above a final no_relay. List\n")
	fmt.Fprintf(bw, "# its addresses in relay.guard.inner_networks as well, so its mail counts as\n")
	fmt.Fprintf(bw, "# source \"inner\" for rewrite rules and line-ending policy. When the\n")
	fmt.Fprintf(bw, "# configuration has a relay section already, merge guard: into it.\n")
	fmt.Fprintln(bw, "relay:")
	fmt.Fprintln(bw, "  guard:")
	if len(im.Rules) == 0 {
		fmt.Fprintln(bw, "    rules: []")
	} else {
		fmt.Fprintln(bw, "    rules:")
	}
	const ind = "      "
	for _, e := range im.entries {
		fmt.Fprintf(bw, "%s# %s:%d: %s\n", ind, commentSafe(im.Source), e.line, commentSafe(e.text))
		for _, n := range e.notes {
			fmt.Fprintf(bw, "%s#   %s\n", ind, n)
		}
		for _, i := range e.rules {
			writeRuleYAML(bw, ind, im.Rules[i])
		}
	}
	if len(im.Problems) > 0 {
		fmt.Fprintf(bw, "# %d line(s) were not converted; see the report on standard error.\n", len(im.Problems))
	}
	return bw.Flush()
}

func writeRuleYAML(w io.Writer, ind string, r RuleConfig) {
	fmt.Fprintf(w, "%s- name: %s\n", ind, strconv.Quote(r.Name))
	fmt.Fprintf(w, "%s  action: %s\n", ind, r.Action)
	list := func(key string, v []string) {
		if len(v) == 0 {
			return
		}
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = strconv.Quote(s)
		}
		fmt.Fprintf(w, "%s  %s: [%s]\n", ind, key, strings.Join(q, ", "))
	}
	list("networks", r.Networks)
	list("senders", r.Senders)
	list("recipients", r.Recipients)
}

// commentSafe keeps a YAML comment on one printable line.
func commentSafe(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) && r != ' ' {
			return '?'
		}
		return r
	}, s)
}
