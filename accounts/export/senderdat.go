package export

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/accounts"
)

// SenderDatOptions steer ReadSenderDat.
type SenderDatOptions struct {
	Encoding string // auto, utf-8 or shift_jis
	// Local and Domain name the account the file belongs to (E-Post keeps
	// it as inbox\USER\sender.dat); both empty for the global file, which
	// applies to every account. An empty Domain matches Local in every
	// domain.
	Local, Domain string
}

// SenderDat is what a sender.dat says, as one patch of the directory.
type SenderDat struct {
	Patches []accounts.Patch
	Errors  []LineError
	Lines   int
}

type senderRule struct {
	line    int
	pattern string // canonical allow entry, or "*"
	allow   bool
}

// ReadSenderDat reads an E-Post sender.dat: "pattern,value" lines
// evaluated top-down, the first match deciding; -1 allows, 0 refuses; a
// destination no line matches is allowed. sekisho expresses what it can:
//
//	(nothing refused)                    -> not outbound_blocked, no allow list
//	                                        (the global file: no change)
//	P1,-1 ... Pn,-1 then *,0             -> outbound_blocked, allow list P1..Pn
//
// Refusing only some destinations while allowing the rest, or refusing one
// before allowing another, cannot be expressed and is an error naming the
// line, as are values other than -1 and 0 and lines after "*".
func ReadSenderDat(r io.Reader, name string, opt SenderDatOptions) (SenderDat, error) {
	d, err := readText(r, name, opt.Encoding)
	if err != nil {
		return SenderDat{}, err
	}
	text := d.text
	out := SenderDat{Lines: countLines(text)}
	fail := func(n int, format string, a ...any) {
		out.Errors = append(out.Errors, LineError{Name: name, Line: n, Reason: fmt.Sprintf(format, a...)})
	}
	var rules []senderRule
	star := 0 // line of the "*" rule
	eachLine(text, func(n int, line string) {
		i := strings.LastIndexByte(line, ',')
		if i < 0 {
			fail(n, "%q is not pattern,value (e.g. *@partner.jp,-1)", line)
			return
		}
		pat, val := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		var bad problems
		v, err := strconv.Atoi(val)
		switch {
		case err != nil:
			bad.add("value %q is not a number (-1 allows, 0 refuses)", val)
		case v != -1 && v != 0:
			bad.add("value %d: only -1 (allow) and 0 (refuse) are known", v)
		}
		if pat != "*" {
			norm, err := accounts.NormalizeAllow(pat)
			if err != nil {
				bad.add("%v", err)
			}
			pat = norm
		}
		if star > 0 {
			bad.add("never reached: the \"*\" on line %d matches every destination first", star)
		}
		if len(bad) > 0 {
			fail(n, "%s", strings.Join(bad, "; "))
			return
		}
		if pat == "*" {
			star = n
		}
		rules = append(rules, senderRule{line: n, pattern: pat, allow: v == -1})
	})
	line := 1
	if len(rules) > 0 {
		line = rules[0].line
	}
	patch := accounts.Patch{Source: name, Line: line, Local: opt.Local, Domain: opt.Domain, SetAllow: true}
	restAllowed := star == 0 || rules[len(rules)-1].allow
	var refusedAt int
	for _, r := range rules {
		switch {
		case r.pattern == "*":
		case !r.allow && restAllowed:
			fail(r.line, "refusing only %s while allowing the rest cannot be expressed: outbound_blocked refuses every foreign destination except an allow list", r.pattern)
		case !r.allow:
			if refusedAt == 0 {
				refusedAt = r.line
			}
		case refusedAt > 0:
			fail(r.line, "allowing %s after refusing on line %d cannot be expressed: an allow list has no exceptions", r.pattern, refusedAt)
		default:
			patch.Allow = append(patch.Allow, r.pattern)
		}
	}
	if len(out.Errors) > 0 {
		sort.SliceStable(out.Errors, func(i, j int) bool { return out.Errors[i].Line < out.Errors[j].Line })
		return out, invalidLines{name: name, n: len(out.Errors), first: out.Errors[0]}
	}
	switch {
	case restAllowed && opt.Local == "":
		// A global file that refuses nothing says nothing: it must not
		// lift the blocks an export or a per-account file sets.
		return out, nil
	case restAllowed:
		patch.Clear, patch.Allow = accounts.OutboundBlocked, nil
	default:
		patch.Set = accounts.OutboundBlocked
	}
	out.Patches = []accounts.Patch{patch}
	return out, nil
}
