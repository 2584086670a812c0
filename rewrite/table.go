package rewrite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Table is a validated regional <-> LG domain mapping. Both directions are
// one-to-one, so either can be used for rewriting.
type Table struct {
	// Forward maps a regional domain to its LG domain, Reverse the other way.
	// Keys and values are canonical domains (lower case, A-labels).
	Forward, Reverse map[string]string
}

// maxTableProblems bounds the error list for a file that is wholly wrong
// (say, a CSV given by mistake): the first lines tell the story.
const maxTableProblems = 20

// LoadTable reads a table file; see ParseTable.
func LoadTable(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseTable(f, path)
}

// ParseTable reads "regional<TAB>lg" lines. Blank lines and lines starting
// with '#' are ignored, as is anything after a '#' that follows white space.
// Every problem is reported as NAME:LINE: reason: a malformed domain, a
// missing or extra column, a domain mapped to itself, a regional domain
// mapped twice, an LG domain used for two regional domains, and a domain
// appearing in both columns (a chain, which one pass would not follow).
func ParseTable(r io.Reader, name string) (*Table, error) {
	t := &Table{Forward: map[string]string{}, Reverse: map[string]string{}}
	regionalLine := map[string]int{}
	lgLine := map[string]int{}
	var errs []error
	extra := 0
	bad := func(line int, format string, a ...any) {
		if len(errs) == maxTableProblems {
			extra++
			return
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...)))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
		}
		text = stripComment(text)
		fields := strings.Fields(string(text))
		if len(fields) == 0 {
			continue
		}
		if !utf8.Valid(text) {
			bad(line, "not UTF-8 text")
			continue
		}
		if len(fields) != 2 {
			bad(line, "want two columns, regional domain and LG domain, separated by a TAB; found %d", len(fields))
			continue
		}
		reg, err1 := tableDomain(fields[0])
		lg, err2 := tableDomain(fields[1])
		if err1 != nil || err2 != nil {
			if err1 != nil {
				bad(line, "regional domain: %v", err1)
			}
			if err2 != nil {
				bad(line, "LG domain: %v", err2)
			}
			continue
		}
		if reg == lg {
			bad(line, "%s is mapped to itself", reg)
			continue
		}
		ok := true
		if prev, dup := regionalLine[reg]; dup {
			if t.Forward[reg] == lg {
				bad(line, "duplicate of line %d (%s -> %s)", prev, reg, lg)
			} else {
				bad(line, "%s is already mapped to %s at line %d; one regional domain cannot map to two LG domains", reg, t.Forward[reg], prev)
			}
			ok = false
		} else if prev, dup := lgLine[lg]; dup {
			bad(line, "%s is already the LG domain of %s at line %d; two regional domains cannot share one LG domain", lg, t.Reverse[lg], prev)
			ok = false
		}
		if prev, both := lgLine[reg]; both {
			bad(line, "%s is an LG domain at line %d and a regional domain here; a chain would not be followed", reg, prev)
			ok = false
		}
		if prev, both := regionalLine[lg]; both {
			bad(line, "%s is a regional domain at line %d and an LG domain here; a chain would not be followed", lg, prev)
			ok = false
		}
		if !ok {
			continue
		}
		regionalLine[reg], lgLine[lg] = line, line
		t.Forward[reg], t.Reverse[lg] = lg, reg
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = errors.New("line longer than 64 KiB")
		}
		errs = append(errs, fmt.Errorf("%s:%d: %v", name, line+1, err))
	}
	if extra > 0 {
		errs = append(errs, fmt.Errorf("%s: %d more problems not shown", name, extra))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// stripComment drops a '#' comment: the whole line when it starts with '#'
// (after white space), or the rest after " #" / "\t#".
func stripComment(b []byte) []byte {
	for i, c := range b {
		if c == '#' && (i == 0 || b[i-1] == ' ' || b[i-1] == '\t') {
			return b[:i]
		}
	}
	return b
}

func tableDomain(s string) (string, error) {
	if strings.ContainsAny(s, "@*") {
		return "", fmt.Errorf("%q: a table holds plain domains (no @, no *)", s)
	}
	d, err := addr.Domain(s)
	if err != nil {
		return "", err
	}
	if addr.IsDomainLiteral(d) {
		return "", fmt.Errorf("%q: address literals cannot be rewritten", s)
	}
	return d, nil
}
