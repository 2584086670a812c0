package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/knadh/koanf/v2"
	"github.com/sekisho/sekisho/accounts/keyerr"
	yamlv3 "go.yaml.in/yaml/v3"
)

// locate writes one problem as FILE:LINE: key.path: reason, with the line
// where the key (or the nearest enclosing key) is written; without a line
// when the key is not in the file (a default, an environment override).
func locate(source string, data []byte, problem string) string {
	if m := lineProblem.FindStringSubmatch(problem); m != nil {
		n, _ := strconv.Atoi(m[1])
		if strings.Contains(m[2], "tab character") {
			// The YAML parser names the line of the value the tab
			// interrupts, not the line that holds the tab.
			n = tabLine(data, n)
		}
		return fmt.Sprintf("%s:%d: %s", source, n, yamlReason(m[2]))
	}
	problem = plainWords(problem)
	key, _, ok := strings.Cut(problem, ": ")
	if ok && data != nil {
		if n := lineOf(data, key); n > 0 {
			return fmt.Sprintf("%s:%d: %s", source, n, problem)
		}
	}
	return source + ": " + problem
}

var lineProblem = regexp.MustCompile(`^line (\d+): (.*)$`)

// lineOf finds the line of a key path ("relay.listeners[1].mode") in a
// YAML document: the deepest key of the path that is written there, or 0.
func lineOf(data []byte, path string) int {
	var doc yamlv3.Node
	if yamlv3.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	n, line := doc.Content[0], 0
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if n.Kind != yamlv3.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			rest = strings.TrimPrefix(after, "[")
			i, err := strconv.Atoi(idx)
			if err != nil || n.Kind != yamlv3.SequenceNode || i >= len(n.Content) {
				return line
			}
			n, line = n.Content[i], n.Content[i].Line
		}
	}
	return line
}

var (
	typeErrLine = regexp.MustCompile(`'([^']+)' (.*)$`)
	decodingErr = regexp.MustCompile(`error decoding '([^']+)': (.*)$`)
)

// typeProblems reads the decoder's messages about values of the wrong
// type, says each in words an administrator can act on, and removes the
// key (or the list holding it) so that the next decode reads the rest. It
// returns nil when no message names a key it could remove.
func typeProblems(k *koanf.Koanf, err error) []string {
	var out []string
	for _, e := range keyerr.Flatten(err) {
		for _, line := range strings.Split(e.Error(), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
			if strings.Contains(line, "has invalid keys") {
				continue
			}
			m := decodingErr.FindStringSubmatch(line)
			if m == nil {
				m = typeErrLine.FindStringSubmatch(line)
			}
			if m == nil {
				continue
			}
			key := m[1]
			root, _, _ := strings.Cut(key, "[")
			if !k.Exists(root) {
				continue
			}
			out = append(out, key+": "+typeReason(m[2], k.Get(key)))
			k.Delete(root)
		}
	}
	return out
}

// typeReason translates the decoder's words.
func typeReason(msg string, v any) string {
	got := ""
	if v != nil {
		got = fmt.Sprintf(" (got %v)", v)
	}
	switch {
	case strings.Contains(msg, "as 'int'"), strings.Contains(msg, "as 'uint'"),
		strings.Contains(msg, "type 'int"), strings.Contains(msg, "type 'uint"):
		return "must be a whole number" + got
	case strings.Contains(msg, "as 'float"), strings.Contains(msg, "type 'float"):
		return "must be a number" + got
	case strings.Contains(msg, "as 'bool'"), strings.Contains(msg, "type 'bool'"):
		return "must be true or false" + got
	case strings.Contains(msg, "type 'string'"):
		return "must be a single value (text), not a list or a mapping" + got
	case strings.Contains(msg, "type '[]"), strings.Contains(msg, "source data must be an array or slice"):
		return "must be a list ([a, b] or one \"- item\" a line)" + got
	case strings.Contains(msg, "type 'map"), strings.Contains(msg, "type 'struct"), strings.Contains(msg, "expected a map"):
		return "must be a mapping (key: value lines)" + got
	}
	return msg
}

// locateAll locates every problem once, in the order of the file's lines
// (problems without a line last, in the order found).
func locateAll(source string, data []byte, problems []string) []string {
	type located struct {
		line int
		text string
	}
	var out []located
	seen := map[string]bool{}
	for _, p := range problems {
		t := locate(source, data, p)
		if seen[t] {
			continue
		}
		seen[t] = true
		n := 1 << 30
		if rest, ok := strings.CutPrefix(t, source+":"); ok {
			if i := strings.IndexByte(rest, ':'); i > 0 {
				if v, err := strconv.Atoi(rest[:i]); err == nil {
					n = v
				}
			}
		}
		out = append(out, located{n, t})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].line < out[j].line })
	lines := make([]string, len(out))
	for i, l := range out {
		lines[i] = l.text
	}
	return lines
}

// tabLine is the first line from n on whose indentation holds a tab.
func tabLine(data []byte, n int) int {
	lines := strings.Split(string(data), "\n")
	for i := n - 1; i >= 0 && i < len(lines); i++ {
		l := lines[i]
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return n
}

// yamlReason says the YAML parser's most common complaints in words an
// administrator can act on, keeping the parser's text for searching.
func yamlReason(msg string) string {
	for _, t := range yamlTranslations {
		if strings.Contains(msg, t[0]) {
			return t[1] + " (YAML: " + msg + ")"
		}
	}
	return "YAML: " + msg
}

var yamlTranslations = [][2]string{
	{"tab character", "a tab in the indentation: YAML indents with spaces only"},
	{"mapping values are not allowed", "a \"key: value\" where none can be: check the indentation, or quote a value that contains \": \""},
	{"did not find expected key", "a line is not aligned with the keys above it (indentation)"},
	{"did not find expected ',' or ']'", "a [list] is not closed: a ']' is missing"},
	{"did not find expected ',' or '}'", "a {mapping} is not closed: a '}' is missing"},
	{"found unexpected end of stream", "the file ends inside a quoted value or a bracket: a closing quote or bracket is missing"},
	{"found character that cannot start any token", "a character that cannot start a value here (quote values starting with @, ` or %)"},
	{"did not find expected node content", "a value is missing (a \"- \" or \"key:\" with nothing usable after it)"},
	{"block sequence entries are not allowed", "a \"- item\" where a value was expected: check the indentation"},
	{"could not find expected ':'", "a key without ':' (or a value continued on the next line without quotes)"},
}

// Go library call chains in messages ('netip.ParsePrefix("300.1.1.1/8"):
// ParseAddr("300.1.1.1"): IPv4 field has value >255') say the same thing
// three times; the last part is the reason.
var (
	libCall   = regexp.MustCompile(`(?:[a-z]+\.)?[A-Z][A-Za-z]*\("[^"]*"\): `)
	strconvIn = regexp.MustCompile(`strconv\.Parse\w+: parsing "[^"]*": `)
)

func plainWords(s string) string {
	s = libCall.ReplaceAllString(s, "")
	return strconvIn.ReplaceAllString(s, "")
}
