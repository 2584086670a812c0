package rewrite

import (
	"errors"
	"unicode/utf8"
)

// The tokenizer reads RFC 5322 address lists from raw header bytes and
// reports where each addr-spec and its domain are, so that rewriting can
// splice just those bytes. Everything else (display names, encoded words,
// comments, groups, folding) is never decoded or rebuilt.
//
// It is lenient where real mail is sloppy and strict where guessing could
// change an address: a field it cannot read is left alone by the caller.
//   - Quoted strings, comments, domain literals and encoded words are opaque,
//     even when a sloppy encoder left '@', ',' or '"' inside an encoded word.
//   - Raw ISO-2022-JP (ESC $ B ... ESC ( B) is opaque: its two-byte codes
//     use '"', '(', '@' and '\' as ordinary bytes.
//   - A field that is not valid UTF-8 is read as Shift_JIS, whose second
//     bytes include '\' and '@' (the "表" problem).
//   - Dots are part of atoms, so carrier local parts such as taro..yamada
//     and taro. read as one word.

type tokKind uint8

const (
	tokEOF     tokKind = iota
	tokAtom            // a run of atext and dots, or an encoded word
	tokQuoted          // "..."
	tokLiteral         // [...]
	tokSpecial         // one of < > @ , : ;
	tokCFWS            // white space, folding and comments
)

type token struct {
	kind       tokKind
	start, end int
}

// errors a field can fail with; the messages go into traces.
var (
	errUnclosedQuote   = errors.New("unclosed quoted string")
	errUnclosedComment = errors.New("unclosed comment")
	errUnclosedLiteral = errors.New("unclosed domain literal")
	errStrayParen      = errors.New("')' without '('")
	errStrayBracket    = errors.New("']' without '['")
	errBareCR          = errors.New("bare CR")
	errBareLF          = errors.New("line break not followed by white space")
	errUnclosedAngle   = errors.New("'<' without '>'")
	errStrayAngle      = errors.New("'>' without '<'")
	errNestedGroup     = errors.New("a group inside a group")
	errStraySemicolon  = errors.New("';' outside a group")
	errAfterGroup      = errors.New("text after the end of a group")
)

type lexer struct {
	s      string
	i, end int
	sjis   bool // the field is not UTF-8: read two-byte Shift_JIS codes as one
}

func newLexer(s string, from, to int) lexer {
	l := lexer{s: s, i: from, end: to}
	for i := from; i < to; i++ {
		if s[i] >= 0x80 {
			l.sjis = !utf8.ValidString(s[from:to])
			break
		}
	}
	return l
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// isAtomByte reports the bytes an atom is made of: everything but white
// space, line breaks and the structural specials. '.' is included so that
// dot-atoms (and the carrier addresses that break the dot-atom rules) are
// one token.
func isAtomByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '(', ')', '<', '>', '[', ']', ':', ';', '@', ',', '"':
		return false
	}
	return true
}

func isSJISLead(c byte) bool { return c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc }

// skip returns the index after the character at i, treating a raw
// ISO-2022-JP two-byte run and (in a Shift_JIS field) a two-byte code as one
// opaque character. Opaque runs never extend over a line break.
func (l *lexer) skip(i int) int {
	s, end := l.s, l.end
	c := s[i]
	if c == 0x1b && i+2 < end && s[i+1] == '$' && (s[i+2] == 'B' || s[i+2] == '@' || s[i+2] == '(') {
		j := i + 3
		for j < end && s[j] != '\r' && s[j] != '\n' {
			if s[j] == 0x1b && j+2 < end && s[j+1] == '(' {
				return j + 3
			}
			j++
		}
		return j
	}
	if c == 0x1b && i+2 < end && s[i+1] == '(' {
		return i + 3 // a shift back to one-byte text, even a redundant one
	}
	if l.sjis && isSJISLead(c) && i+1 < end && s[i+1] != '\r' && s[i+1] != '\n' {
		return i + 2
	}
	return i + 1
}

// lineBreak checks a CR or LF at i inside a field value: it must be CRLF or
// LF followed by white space (folding). It returns the index after it.
func (l *lexer) lineBreak(i int) (int, error) {
	s, end := l.s, l.end
	if s[i] == '\r' {
		if i+1 >= end || s[i+1] != '\n' {
			return 0, errBareCR
		}
		i++
	}
	if i+1 >= end || !isWSP(s[i+1]) {
		return 0, errBareLF
	}
	return i + 1, nil
}

// encodedWordEnd returns the end of an RFC 2047 encoded word starting at i
// (=?charset?enc?text?=), or -1. Its text is opaque whatever it contains.
func (l *lexer) encodedWordEnd(i int) int {
	s, end := l.s, l.end
	if i+1 >= end || s[i] != '=' || s[i+1] != '?' {
		return -1
	}
	j := i + 2
	for j < end && s[j] != '?' && s[j] > ' ' && s[j] < 0x7f {
		j++
	}
	if j == i+2 || j+2 >= end || s[j] != '?' {
		return -1
	}
	switch s[j+1] {
	case 'B', 'b', 'Q', 'q':
	default:
		return -1
	}
	if s[j+2] != '?' {
		return -1
	}
	for j += 3; j+1 < end; j++ {
		c := s[j]
		if c == '?' {
			if s[j+1] == '=' {
				return j + 2
			}
			return -1
		}
		if c <= ' ' || c >= 0x7f {
			return -1
		}
	}
	return -1
}

// next returns the next token; tokEOF at the end of the value.
func (l *lexer) next() (token, error) {
	s, end := l.s, l.end
	start := l.i
	if start >= end {
		return token{kind: tokEOF, start: end, end: end}, nil
	}
	switch c := s[start]; {
	case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '(':
		i := start
		for i < end {
			switch s[i] {
			case ' ', '\t':
				i++
			case '\r', '\n':
				j, err := l.lineBreak(i)
				if err != nil {
					return token{}, err
				}
				i = j
			case '(':
				j, err := l.comment(i)
				if err != nil {
					return token{}, err
				}
				i = j
			default:
				l.i = i
				return token{tokCFWS, start, i}, nil
			}
		}
		l.i = i
		return token{tokCFWS, start, i}, nil
	case c == '"':
		i := start + 1
		for i < end {
			switch s[i] {
			case '"':
				l.i = i + 1
				return token{tokQuoted, start, i + 1}, nil
			case '\\':
				if i+1 >= end || s[i+1] == '\r' || s[i+1] == '\n' {
					return token{}, errUnclosedQuote
				}
				i = l.skip(i + 1)
			case '\r', '\n':
				j, err := l.lineBreak(i)
				if err != nil {
					return token{}, err
				}
				i = j
			default:
				i = l.skip(i)
			}
		}
		return token{}, errUnclosedQuote
	case c == '[':
		i := start + 1
		for i < end {
			switch s[i] {
			case ']':
				l.i = i + 1
				return token{tokLiteral, start, i + 1}, nil
			case '\\':
				if i+1 >= end {
					return token{}, errUnclosedLiteral
				}
				i = l.skip(i + 1)
			case '[':
				return token{}, errUnclosedLiteral
			case '\r', '\n':
				j, err := l.lineBreak(i)
				if err != nil {
					return token{}, err
				}
				i = j
			default:
				i = l.skip(i)
			}
		}
		return token{}, errUnclosedLiteral
	case c == ')':
		return token{}, errStrayParen
	case c == ']':
		return token{}, errStrayBracket
	case c == '<' || c == '>' || c == '@' || c == ',' || c == ':' || c == ';':
		l.i = start + 1
		return token{tokSpecial, start, start + 1}, nil
	default:
		i := start
		for i < end && isAtomByte(s[i]) {
			if e := l.encodedWordEnd(i); e > 0 {
				i = e
				continue
			}
			i = l.skip(i)
		}
		l.i = i
		return token{tokAtom, start, i}, nil
	}
}

// comment returns the index after the (possibly nested) comment at i.
func (l *lexer) comment(i int) (int, error) {
	s, end := l.s, l.end
	depth := 0
	for i < end {
		switch s[i] {
		case '(':
			depth++
			i++
		case ')':
			depth--
			i++
			if depth == 0 {
				return i, nil
			}
		case '\\':
			if i+1 >= end || s[i+1] == '\r' || s[i+1] == '\n' {
				return 0, errUnclosedComment
			}
			i = l.skip(i + 1)
		case '\r', '\n':
			j, err := l.lineBreak(i)
			if err != nil {
				return 0, err
			}
			i = j
		case '=':
			if e := l.encodedWordEnd(i); e > 0 {
				i = e
			} else {
				i++
			}
		default:
			i = l.skip(i)
		}
	}
	return 0, errUnclosedComment
}

// mailbox is one address of a field. Offsets are absolute in the string
// given to parseAddressList.
type mailbox struct {
	start, end       int // the addr-spec; for a problem, the whole element
	elemStart        int // the whole element: display name, <addr-spec>, comments inside
	elemEnd          int
	localEnd         int // end of the local part
	domStart, domEnd int // the domain's bytes
	// problem says why this mailbox must not be rewritten; noDomain marks
	// a mailbox without '@' (<>, a bare "postmaster", a lone phrase).
	problem  string
	noDomain bool
}

// element gathers one address between separators.
type element struct {
	first, last int // token range of the element, for problem reports
	started     bool
	angle       int // 0: none yet, 1: inside <>, 2: after >
	route       bool
	routeDone   bool
	specStart   int
	localEnd    int
	ats         int
	domStart    int
	domEnd      int
	domTokens   int
	gapLocal    bool
	gapDomain   bool
	pending     bool // CFWS since the last addr-spec token
	problem     string
}

func (e *element) reset() { *e = element{specStart: -1, first: -1} }

func (e *element) resetSpec() {
	e.specStart, e.ats, e.domTokens = -1, 0, 0
	e.gapLocal, e.gapDomain, e.pending = false, false, false
}

// parseAddressList finds the mailboxes in the field value s[from:to] and
// appends them to mbs. An error means the field cannot be read reliably and
// must be left as it is.
func parseAddressList(s string, from, to int, mbs []mailbox) ([]mailbox, error) {
	l := newLexer(s, from, to)
	var e element
	e.reset()
	inGroup, afterGroup := false, false
	finish := func() {
		if !e.started {
			return
		}
		mb := mailbox{start: e.first, end: e.last}
		switch {
		case e.problem != "":
			mb.problem = e.problem
		case e.ats == 0:
			mb.noDomain = true
			if e.specStart >= 0 {
				mb.start, mb.end = e.specStart, e.localEnd
			}
		case e.ats > 1:
			mb.problem = "more than one '@'"
		case e.specStart < 0:
			mb.problem = "nothing before '@'"
		case e.domTokens == 0:
			mb.problem = "nothing after '@'"
		case e.domTokens > 1 || e.gapDomain:
			mb.problem = "white space or comments inside the domain (obsolete syntax)"
		case e.gapLocal && e.angle == 0:
			mb.problem = "words before an address that has no <...>"
		default:
			mb = mailbox{start: e.specStart, end: e.domEnd, localEnd: e.localEnd, domStart: e.domStart, domEnd: e.domEnd}
		}
		mb.elemStart, mb.elemEnd = e.first, e.last
		mbs = append(mbs, mb)
	}
	for {
		t, err := l.next()
		if err != nil {
			return mbs, err
		}
		if t.kind == tokEOF {
			break
		}
		if t.kind == tokCFWS {
			if e.specStart >= 0 {
				e.pending = true
			}
			continue
		}
		if afterGroup {
			if t.kind != tokSpecial || s[t.start] != ',' {
				return mbs, errAfterGroup
			}
			afterGroup = false
			continue
		}
		if t.kind != tokSpecial || e.route || (s[t.start] != ',' && s[t.start] != ';') {
			if !e.started {
				e.started, e.first = true, t.start
			}
			e.last = t.end
		}
		if t.kind == tokSpecial {
			switch s[t.start] {
			case '<':
				if e.angle != 0 {
					e.problem = "more than one <...> in one address"
					e.angle = 1 // to pair with the coming '>'
					continue
				}
				e.angle = 1
				e.resetSpec()
				continue
			case '>':
				if e.angle != 1 {
					return mbs, errStrayAngle
				}
				e.angle, e.route = 2, false
				continue
			case ',':
				if e.route {
					continue
				}
				if e.angle == 1 {
					return mbs, errUnclosedAngle
				}
				finish()
				e.reset()
				continue
			case ':':
				switch {
				case e.route:
					e.route, e.routeDone = false, true
				case e.angle == 0 && inGroup:
					return mbs, errNestedGroup
				case e.angle == 0 && e.ats == 0:
					// The words so far were the group's display name.
					inGroup = true
					e.reset()
				default:
					e.problem = "unexpected ':'"
				}
				continue
			case ';':
				if e.angle == 1 {
					return mbs, errUnclosedAngle
				}
				if !inGroup {
					return mbs, errStraySemicolon
				}
				finish()
				e.reset()
				inGroup, afterGroup = false, true
				continue
			case '@':
				if e.route {
					continue
				}
				if e.angle == 1 && e.specStart < 0 && e.ats == 0 && !e.routeDone {
					e.route = true // <@relay1,@relay2:user@domain>
					continue
				}
			}
		} else if e.route {
			continue
		}
		if e.angle == 2 {
			e.problem = "text after <...>"
			continue
		}
		// A token of the addr-spec (or of a phrase that a later '<' discards).
		switch {
		case t.kind == tokSpecial: // '@'
			e.ats++
			if e.pending {
				e.gapLocal = true
			}
		case e.ats == 0:
			if e.specStart < 0 {
				e.specStart = t.start
			} else if e.pending {
				e.gapLocal = true
			}
			e.localEnd = t.end
		default:
			if e.domTokens == 0 {
				e.domStart = t.start
				e.gapDomain = e.pending
			}
			e.domTokens++
			e.domEnd = t.end
		}
		e.pending = false
	}
	if e.angle == 1 {
		return mbs, errUnclosedAngle
	}
	finish()
	return mbs, nil
}

// unquoteLocal returns a local part as an address: quotes and escapes
// removed, comments and folding white space dropped.
func unquoteLocal(raw string) string {
	plain := true
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c == '"' || c == '(' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			plain = false
			break
		}
	}
	if plain {
		return raw
	}
	b := make([]byte, 0, len(raw))
	quoted, depth := false, 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r' || c == '\n':
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
		case quoted:
			switch c {
			case '"':
				quoted = false
			case '\\':
				if i+1 < len(raw) {
					i++
					b = append(b, raw[i])
				}
			default:
				b = append(b, c)
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ' ' || c == '\t':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
