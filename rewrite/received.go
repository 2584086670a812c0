package rewrite

import (
	"net/netip"
	"strings"
)

// ReceivedPolicy is what a copy keeps of the Received fields written
// inside the inner networks (routing's `received:` on a route): the names
// and private addresses of the inner mail server and the staff's PCs mean
// nothing outside and tell too much.
type ReceivedPolicy struct {
	// Mask replaces, in every Received field, each address Inner accepts
	// and each host name seen with one by "internal".
	Mask bool
	// Remove drops the fields added inside and masks the others as Mask
	// does (see innerFields for which fields were added inside).
	Remove bool
	// Inner reports whether an address is in the inner networks
	// (relay.guard.inner_networks). Nil: nothing is inner.
	Inner func(netip.Addr) bool
	// Self is this gateway's name (relay.hostname): a field it added is
	// never removed, and its name never masked.
	Self string
}

// ReceivedChange is one Received field a copy removed or masked.
type ReceivedChange struct {
	// Field is the field's index in the header block as queued.
	Field int `json:"field"`
	// By is the host that added it, as the field says.
	By      string `json:"by,omitempty"`
	Removed bool   `json:"removed,omitempty"`
	// Masked lists what was replaced, each once, in order.
	Masked []string `json:"masked,omitempty"`
}

// masked is what an inner address or name becomes.
const masked = "internal"

func (p ReceivedPolicy) active() bool { return (p.Mask || p.Remove) && p.Inner != nil }

// receivedHop is what one Received field says about its hop.
type receivedHop struct {
	field     int // index among the block's fields
	fromAddrs []netip.Addr
	fromNames []string // the HELO name and the names in the from comment
	by        string   // the host that added the field; "" when it names none
	byAddr    netip.Addr
	fromInner bool
	inner     bool // added inside: removed by Remove
}

// apply masks or removes the inner Received fields of header. It returns
// header itself when nothing changed.
func (p ReceivedPolicy) apply(header []byte) ([]byte, []ReceivedChange) {
	hs := string(header)
	fields := splitFields(hs, nil)
	hops, names := p.innerFields(hs, fields)
	if len(hops) == 0 {
		return header, nil
	}

	var b []byte
	var changes []ReceivedChange
	prev := 0
	for _, h := range hops {
		f := fields[h.field]
		if p.Remove && h.inner {
			b = append(b, hs[prev:f.start]...)
			prev = f.end
			changes = append(changes, ReceivedChange{Field: h.field, By: h.by, Removed: true})
			continue
		}
		text, what := p.mask(hs[f.start:f.end], f.valStart-f.start, names)
		if len(what) == 0 {
			continue
		}
		if longestLine(text) > maxLine {
			text, _ = refold(text, f.eol(hs))
		}
		b = append(b, hs[prev:f.start]...)
		b = append(b, text...)
		prev = f.end
		changes = append(changes, ReceivedChange{Field: h.field, By: h.by, Masked: what})
	}
	if len(changes) == 0 {
		return header, nil
	}
	return append(b, hs[prev:]...), changes
}

// innerFields reads every Received field and marks those added inside: a
// field whose adding host is an inner address or a name an inner address
// used; a field recording a hop from an inner address to any host but
// this gateway; and the field below one whose sending host was inner
// (that host added it when it received the message, whatever name it
// gives itself there). names are the inner hosts' names: those an inner
// address used and those of the hosts that added inner fields.
func (p ReceivedPolicy) innerFields(hs string, fields []field) (hops []receivedHop, names map[string]bool) {
	for i, f := range fields {
		if !strings.EqualFold(f.name(hs), "Received") {
			continue
		}
		h := parseReceived(hs[f.valStart:f.valEnd])
		h.field = i
		for _, a := range h.fromAddrs {
			h.fromInner = h.fromInner || p.Inner(a)
		}
		hops = append(hops, h)
	}
	names = map[string]bool{}
	for _, h := range hops {
		if h.fromInner {
			for _, n := range h.fromNames {
				names[n] = true
			}
		}
	}
	self := hostKey(p.Self)
	delete(names, self)
	// The host that added an inner field is an inner host: its other
	// fields are inner too (Postfix's pickup field names no sender).
	for changed := true; changed; {
		changed = false
		for i := range hops {
			h := &hops[i]
			by := hostKey(h.by)
			byInner := names[by] || (h.byAddr.IsValid() && p.Inner(h.byAddr))
			below := i > 0 && hops[i-1].fromInner
			if h.inner || by == self && by != "" || !(byInner || h.fromInner || below) {
				continue
			}
			h.inner, changed = true, true
			if by != "" && !h.byAddr.IsValid() {
				names[by] = true
			}
		}
	}
	delete(names, "")
	return hops, names
}

func hostKey(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// mask replaces the inner addresses and names in one Received field
// (its text, the value starting at val), up to the ';' before its date.
func (p ReceivedPolicy) mask(text string, val int, names map[string]bool) (string, []string) {
	end := strings.LastIndexByte(text, ';')
	if end < val {
		end = len(text)
	}
	var b strings.Builder
	var what []string
	seen := map[string]bool{}
	prev := 0
	for i := val; i < end; {
		if !isHostByte(text[i]) {
			i++
			continue
		}
		j := i
		for j < end && isHostByte(text[j]) {
			j++
		}
		run := text[i:j]
		if (i > 0 && text[i-1] == '@') || (j < len(text) && text[j] == '@') {
			i = j // a mailbox (the "for" clause), not a host
			continue
		}
		repl := ""
		if a, ok := parseHostAddr(run); ok && p.Inner(a) {
			repl = run
		} else if n := strings.TrimRight(run, "."); names[strings.ToLower(n)] {
			repl = n
		}
		if repl != "" {
			b.WriteString(text[prev:i])
			b.WriteString(masked)
			prev = i + len(repl)
			if !seen[repl] {
				seen[repl] = true
				what = append(what, repl)
			}
		}
		i = j
	}
	if len(what) == 0 {
		return text, nil
	}
	b.WriteString(text[prev:])
	return b.String(), what
}

// isHostByte: the bytes of a host name or an address, as they appear in
// a Received field (IPv6 with its colons, "IPv6:" tags included).
func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':'
}

// parseHostAddr reads an address as Received fields write it: 192.0.2.1,
// 2001:db8::1 or IPv6:2001:db8::1.
func parseHostAddr(s string) (netip.Addr, bool) {
	if len(s) > 5 && strings.EqualFold(s[:5], "IPv6:") {
		s = s[5:]
	}
	if !strings.ContainsAny(s, ".:") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseReceived reads the clauses of a Received value (RFC 5321 §4.4:
// "from" host with its TCP-info comment, "by" host, then via, with, id,
// for) up to the ';' before the date. What it cannot read it skips: a
// field it cannot understand is never counted as added inside.
func parseReceived(v string) receivedHop {
	var h receivedHop
	clause, want := "", false
	for _, t := range receivedTokens(v) {
		if t.kind == 'w' {
			switch k := strings.ToLower(t.text); k {
			case "from", "by", "via", "with", "id", "for":
				clause, want = k, true
				continue
			}
		}
		switch {
		case want && clause == "from":
			h.addHost(t)
		case want && clause == "by":
			switch t.kind {
			case 'w':
				h.by = t.text
			case 'l':
				h.by = "[" + t.text + "]"
				h.byAddr, _ = parseHostAddr(t.text)
			}
		case clause == "from" && t.kind == 'c':
			h.addComment(t.text)
		}
		want = false
	}
	return h
}

// addHost records the host after "from": a name (the HELO) or an address.
func (h *receivedHop) addHost(t rtoken) {
	switch t.kind {
	case 'l':
		if a, ok := parseHostAddr(t.text); ok {
			h.fromAddrs = append(h.fromAddrs, a)
		}
	case 'w':
		if a, ok := parseHostAddr(t.text); ok {
			h.fromAddrs = append(h.fromAddrs, a)
		} else if isHostName(t.text) {
			h.fromNames = append(h.fromNames, hostKey(t.text))
		}
	}
}

// addComment reads a from clause's comment, the TCP-info: "name [addr]",
// "[addr]", "helo=name", "may be forged". Names are the word before an
// address literal, a helo= value and words with a dot.
func (h *receivedHop) addComment(c string) {
	words := strings.FieldsFunc(c, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '(' || r == ')' })
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "[") && strings.HasSuffix(w, "]"):
			if a, ok := parseHostAddr(w[1 : len(w)-1]); ok {
				h.fromAddrs = append(h.fromAddrs, a)
			}
			if i > 0 && isHostName(words[i-1]) {
				h.fromNames = append(h.fromNames, hostKey(words[i-1]))
			}
		case strings.HasPrefix(strings.ToLower(w), "helo="):
			if n := w[5:]; isHostName(n) {
				h.fromNames = append(h.fromNames, hostKey(n))
			}
		default:
			if a, ok := parseHostAddr(w); ok {
				h.fromAddrs = append(h.fromAddrs, a)
			} else if strings.Contains(strings.Trim(w, "."), ".") && isHostName(w) {
				h.fromNames = append(h.fromNames, hostKey(w))
			}
		}
	}
}

// isHostName: letters, digits, '.', '-', '_' and at least one letter.
func isHostName(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_':
		default:
			return false
		}
	}
	return letter
}

// rtoken is one token of a Received value: 'w' a word, 'c' a comment
// (its text without the outer parentheses), 'l' a domain literal (without
// brackets), '<' an angle address, '"' a quoted string.
type rtoken struct {
	kind byte
	text string
}

// receivedTokens splits a Received value into tokens up to the first ';'
// outside comments, quotes and brackets.
func receivedTokens(v string) []rtoken {
	var out []rtoken
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == ';':
			return out
		case c == '(':
			depth, j := 0, i
			for ; j < len(v); j++ {
				if v[j] == '\\' {
					j++
					continue
				}
				if v[j] == '(' {
					depth++
				} else if v[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			if j >= len(v) {
				return out // unclosed: the rest is unreadable
			}
			out = append(out, rtoken{'c', v[i+1 : j]})
			i = j + 1
		case c == '[' || c == '<' || c == '"':
			closer := byte('"')
			switch c {
			case '[':
				closer = ']'
			case '<':
				closer = '>'
			}
			j := strings.IndexByte(v[i+1:], closer)
			if j < 0 {
				return out
			}
			kind := c
			if c == '[' {
				kind = 'l'
			}
			out = append(out, rtoken{kind, v[i+1 : i+1+j]})
			i += j + 2
		case c == ')' || c == ']' || c == '>':
			i++ // a stray closer: nothing to read
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\r\n;()[]<>\"", rune(v[j])) {
				j++
			}
			out = append(out, rtoken{'w', v[i:j]})
			i = j
		}
	}
	return out
}
