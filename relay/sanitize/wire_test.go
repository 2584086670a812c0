package sanitize

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// wireProblems lists where a sanitized message is not what a careful MTA
// writes (RFC 5322 and RFC 2045): every line ends in CRLF and has at most
// 998 octets, no NUL anywhere, every header (the message's and its
// parts') is 7-bit field lines "Name: value" and their folds, a fold is
// never a line of white space only, and a 7bit body holds no 8-bit byte.
// It reads the structure our writer makes: one text part, or a
// multipart/mixed of it and the kept attachments.
func wireProblems(out []byte) []string {
	var probs []string
	add := func(f string, a ...any) {
		if len(probs) < 10 {
			probs = append(probs, fmt.Sprintf(f, a...))
		}
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		add("the message does not end in CRLF")
	}
	if i := bytes.IndexByte(out, 0); i >= 0 {
		add("a NUL at offset %d", i)
	}
	lines := bytes.Split(out, []byte("\r\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for n, line := range lines {
		if len(line) > maxLine {
			add("line %d: %d octets", n+1, len(line))
		}
		if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
			add("line %d: a bare %q", n+1, line[i])
		}
	}
	// Entities: the top one, then each part of a multipart we wrote.
	inHeader, sevenBit, boundary, field := true, true, "", ""
	for n, line := range lines {
		s := string(line)
		if boundary != "" && (s == "--"+boundary || s == "--"+boundary+"--") {
			inHeader, sevenBit = s == "--"+boundary, true
			continue
		}
		if inHeader {
			if s == "" {
				inHeader = false
				continue
			}
			name, value, _ := strings.Cut(s, ":")
			if s[0] != ' ' && s[0] != '\t' {
				field = name
			}
			if p := headerLineProblem(s, field); p != "" {
				add("line %d: %s: %q", n+1, p, capText(s, 80))
			}
			switch {
			case strings.EqualFold(name, "Content-Transfer-Encoding"):
				sevenBit = strings.EqualFold(strings.TrimSpace(value), "7bit")
			case strings.EqualFold(name, "Content-Type") && boundary == "":
				if _, b, ok := strings.Cut(value, `boundary="`); ok {
					boundary, _, _ = strings.Cut(b, `"`)
				}
			}
			continue
		}
		if sevenBit {
			for _, c := range line {
				if c >= 0x80 {
					add("line %d: an 8-bit byte in a 7bit body", n+1)
					break
				}
			}
		}
	}
	return probs
}

// headerLineProblem says what is wrong with one line of a field's, ""
// if nothing: printable ASCII and tabs only, but for an address in UTF-8
// between angle brackets (RFC 6532: it has no ASCII form); a field's name
// without white space before its colon; a fold that is not white space
// only.
func headerLineProblem(s, field string) string {
	inAddr := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<':
			inAddr = true
		case c == '>':
			inAddr = false
		case c >= 0x80 && inAddr && inList(addressFields, field) && utf8.ValidString(s):
		case c >= 0x7f || c < ' ' && c != '\t':
			return fmt.Sprintf("byte %#02x in the header", c)
		}
	}
	if s[0] == ' ' || s[0] == '\t' {
		if strings.TrimLeft(s, " \t") == "" {
			return "a fold of white space only"
		}
		return ""
	}
	name, _, ok := strings.Cut(s, ":")
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return "not a field"
	}
	return ""
}
