// Package rewrite owns address rewriting between the regional internet domains and the LGWAN domains: rules and tables, an RFC 5322 header tokenizer, and the one pure function used both live and in dry runs.
//
// Rewriting changes only the bytes of an addr-spec (usually just its
// domain): display names, encoded words, comments, groups, folding, field
// order and every other field stay byte-identical, and the body is never
// seen. FORMAT.md describes the rules and the table format.
package rewrite

import (
	"fmt"
	"sync"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Input is one message as the relay has it after DATA (or a dry run).
type Input struct {
	// From is the envelope sender as go-smtp hands it over (quotes removed);
	// "" is the null reverse path, which is never rewritten.
	From string
	// To are the envelope recipients, in the same form.
	To []string
	// Header is the raw header block as ReadHeader returns it, including
	// the empty line; nil for an envelope-only rewrite.
	Header []byte
	// Source is where the message came from. Required.
	Source Source
}

// Output is the rewritten message and what happened to it.
type Output struct {
	From string
	// To has one entry per Input.To, in order. Two recipients may become
	// the same address; removing duplicates is the caller's business.
	To []string
	// Header is the rewritten block. It is Input.Header itself (same
	// memory) when no header address changed.
	Header []byte
	// OrigFrom and OrigTo are the envelope as received (OrigTo is
	// Input.To itself), so that the relay can check both.
	OrigFrom string
	OrigTo   []string
	// Trace lists, in order, every rule that fired at each position and
	// every field or address that was left alone because it could not be
	// read.
	Trace []Step
	// Changed reports whether any address changed.
	Changed bool
}

// Step is one entry of a trace.
type Step struct {
	Class Class `json:"class"`
	// Position is "env-from", "env-to" or the header field name as written.
	Position string `json:"position"`
	// Field is the index of the header field in the block (-1 for the
	// envelope); Index is the recipient index for env-to, 0 for env-from,
	// the address index within a header field, or -1 for a note about a
	// whole header field.
	Field int `json:"field"`
	Index int `json:"index"`
	// Rule is the rule that fired; empty for a note.
	Rule string `json:"rule,omitempty"`
	// Set is the rule set the step comes from: a name from rewrite.sets,
	// "" for the receive-time rules (rewrite.rules).
	Set string `json:"set,omitempty"`
	// Before and After are addresses (local@domain, quotes removed).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Position names used in traces for the envelope.
const (
	PosEnvFrom = "env-from"
	PosEnvTo   = "env-to"
)

// slot is one address position being rewritten.
type slot struct {
	class    Class
	field    int // -1 for the envelope
	index    int
	mb       mailbox // header positions
	rawLocal string  // the local part as written
	rawAddr  string  // the address as written (local@domain), "" until needed
	local    string  // current local part, quotes removed, valid when localSet
	localSet bool
	domain   string // current domain, canonical; "" when there is none
	changes  int
	localMod bool // the local part changed, so the whole addr-spec is rewritten
	stopped  bool
	after    string // the latest value, local@domain
	// origLocal and origDomain are the value before the first change, and
	// history the later ones, to catch a rule list that brings an address
	// back (only regexp rules can; the others are checked at load).
	origLocal, origDomain string
	history               []string
}

func (sl *slot) localPart() string {
	if !sl.localSet {
		sl.local, sl.localSet = unquoteLocal(sl.rawLocal), true
	}
	return sl.local
}

// scratch is per-call working memory, pooled to keep the live path cheap.
type scratch struct {
	slots  []slot
	fields []field
	mbs    []mailbox
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Rewrite applies the rule set to one message. It is pure: the same input
// gives the same output, nothing is sent or logged, and the input is not
// modified. Rules run in order; each rule looks at every position it may
// touch (recipients, then the sender, then header addresses in order) and
// sees the envelope as the earlier rules left it. An error means the source
// is not set, or a rule produced an address that is not valid or brought an
// address back to an earlier value; Output then holds the envelope and
// header as they came in, and the trace up to the failing step.
func (s *RuleSet) Rewrite(in Input) (Output, error) {
	return s.rewrite(in, false)
}

// rewrite is Rewrite; with fixedRcpts the envelope recipients are read
// (for the rules' conditions) but never rewritten: a copy's recipients
// were decided when the message was received (see Rewriter.Copy).
func (s *RuleSet) rewrite(in Input, fixedRcpts bool) (out Output, err error) {
	out = Output{From: in.From, OrigFrom: in.From, OrigTo: in.To, Header: in.Header}
	out.To = append(make([]string, 0, len(in.To)), in.To...)
	if !in.Source.valid() {
		return out, fmt.Errorf("rewrite: message source not set (%v)", in.Source)
	}
	active := s.active[in.Source]
	if fixedRcpts {
		active &^= 1 << EnvelopeRecipient
	}
	if active == 0 {
		return out, nil
	}
	defer func() {
		for i := range out.Trace {
			out.Trace[i].Set = s.name
		}
	}()
	sc := scratchPool.Get().(*scratch)
	defer func() {
		clear(sc.slots)
		sc.slots, sc.fields, sc.mbs = sc.slots[:0], sc.fields[:0], sc.mbs[:0]
		scratchPool.Put(sc)
	}()

	slots := sc.slots
	slots = append(slots, envSlot(EnvelopeSender, 0, in.From))
	for i, to := range in.To {
		sl := envSlot(EnvelopeRecipient, i, to)
		sl.stopped = fixedRcpts // still seen by the recipient conditions
		slots = append(slots, sl)
	}
	var hs string
	if in.Header != nil && (active.has(HeaderSender) || active.has(HeaderRecipient)) {
		hs = string(in.Header)
		sc.fields = splitFields(hs, sc.fields)
		slots = s.headerSlots(hs, sc, active, slots, &out.Trace)
	}
	sc.slots = slots

	if err := s.run(in.Source, slots, hs, sc.fields, &out.Trace); err != nil {
		return out, err
	}
	headerChanged := false
	for i := range slots {
		sl := &slots[i]
		if sl.changes == 0 {
			continue
		}
		out.Changed = true
		switch sl.class {
		case EnvelopeSender:
			out.From = sl.after
		case EnvelopeRecipient:
			out.To[sl.index] = sl.after
		default:
			headerChanged = true
		}
	}
	if headerChanged {
		out.Header = spliceHeader(hs, sc.fields, slots, &out.Trace)
	}
	return out, nil
}

func envSlot(c Class, index int, a string) slot {
	sl := slot{class: c, field: -1, index: index, rawAddr: a}
	if l, d, ok := addr.Split(a); ok {
		if cd, err := addr.Domain(d); err == nil {
			sl.rawLocal, sl.local, sl.localSet, sl.domain = l, l, true, cd
		}
	}
	return sl
}

// headerSlots tokenizes the address fields of the classes some rule may
// touch and adds a slot for every address with a domain.
func (s *RuleSet) headerSlots(hs string, sc *scratch, active classSet, slots []slot, trace *[]Step) []slot {
	for fi, f := range sc.fields {
		c := fieldClass(f.name(hs))
		if c == 0 || !active.has(c) {
			continue
		}
		mbs, err := parseAddressList(hs, f.valStart, f.valEnd, sc.mbs[:0])
		sc.mbs = mbs
		if err != nil {
			*trace = append(*trace, Step{Class: c, Position: f.name(hs), Field: fi, Index: -1,
				Note: "field left unchanged: " + err.Error()})
			continue
		}
		for k, mb := range mbs {
			if mb.noDomain {
				continue
			}
			if mb.problem != "" {
				*trace = append(*trace, Step{Class: c, Position: f.name(hs), Field: fi, Index: k,
					Before: hs[mb.start:mb.end], Note: "address left unchanged: " + mb.problem})
				continue
			}
			d, err := addr.Domain(hs[mb.domStart:mb.domEnd])
			if err != nil {
				*trace = append(*trace, Step{Class: c, Position: f.name(hs), Field: fi, Index: k,
					Before: hs[mb.start:mb.end], Note: "address left unchanged: " + err.Error()})
				continue
			}
			slots = append(slots, slot{class: c, field: fi, index: k, mb: mb, rawLocal: hs[mb.start:mb.localEnd], domain: d})
		}
	}
	return slots
}

// run applies the rules in order to the slots.
func (s *RuleSet) run(src Source, slots []slot, hs string, fields []field, trace *[]Step) error {
	for _, r := range s.rules {
		if !r.sources.has(src) {
			continue
		}
		// Conditions look at the envelope as the earlier rules left it.
		if r.sender != nil && (slots[0].domain == "" || !matchAny(r.sender, slots[0].domain)) {
			continue
		}
		allRcpt := r.rcpt == nil || allRecipientsMatch(r.rcpt, slots)
		for i := range slots {
			sl := &slots[i]
			if sl.stopped || sl.domain == "" || !r.classes.has(sl.class) {
				continue
			}
			if sl.class == EnvelopeRecipient {
				if r.rcpt != nil && !matchAny(r.rcpt, sl.domain) {
					continue
				}
			} else if !allRcpt {
				continue
			}
			nl, nd, matched, err := r.apply(sl)
			if !matched {
				continue
			}
			step := Step{Class: sl.class, Position: position(sl, hs, fields), Field: sl.field, Index: sl.index, Rule: r.name, Before: sl.current(hs)}
			if err != nil {
				step.Note = err.Error()
				*trace = append(*trace, step)
				return fmt.Errorf("%s at %s: %w", r.key, describe(step), err)
			}
			if r.stop {
				sl.stopped = true
			}
			if nl == sl.localPart() && nd == sl.domain {
				step.After = step.Before
				if r.keep {
					step.Note = "kept: an exception, no later rule applies"
				} else {
					step.Note = "matched; the address is unchanged"
				}
				*trace = append(*trace, step)
				continue
			}
			after := nl + "@" + nd
			step.After = after
			*trace = append(*trace, step)
			if len(after) > addr.MaxAddressLen {
				return fmt.Errorf("%s at %s: the result is longer than %d octets", r.key, describe(step), addr.MaxAddressLen)
			}
			if sl.changes == 0 {
				sl.origLocal, sl.origDomain = sl.localPart(), sl.domain
			} else {
				sl.history = append(sl.history, sl.after)
				back := len(after) == len(sl.origLocal)+1+len(sl.origDomain) &&
					after[:len(sl.origLocal)] == sl.origLocal && after[len(sl.origLocal)+1:] == sl.origDomain
				for _, h := range sl.history {
					back = back || h == after
				}
				if back {
					return fmt.Errorf("%s at %s: %s is back to an earlier value: the rules loop", r.key, describe(step), after)
				}
			}
			if nl != sl.localPart() {
				sl.localMod = true
			}
			sl.local, sl.localSet, sl.domain = nl, true, nd
			sl.after = after
			sl.changes++
		}
	}
	return nil
}

// current is the slot's value as the next rule sees it: the original as
// written until a rule changed it.
func (sl *slot) current(hs string) string {
	if sl.changes > 0 {
		return sl.after
	}
	if sl.rawAddr == "" {
		if sl.localPart() == sl.rawLocal && sl.mb.localEnd+1 == sl.mb.domStart {
			sl.rawAddr = hs[sl.mb.start:sl.mb.end] // no quotes, no comments: the bytes are the address
		} else {
			sl.rawAddr = sl.localPart() + "@" + hs[sl.mb.domStart:sl.mb.domEnd]
		}
	}
	return sl.rawAddr
}

func allRecipientsMatch(ps []domainPattern, slots []slot) bool {
	n := 0
	for i := range slots {
		if slots[i].class != EnvelopeRecipient {
			continue
		}
		n++
		if slots[i].domain == "" || !matchAny(ps, slots[i].domain) {
			return false
		}
	}
	return n > 0 // no recipients: a recipient condition cannot hold
}

func position(sl *slot, hs string, fields []field) string {
	switch sl.class {
	case EnvelopeSender:
		return PosEnvFrom
	case EnvelopeRecipient:
		return PosEnvTo
	}
	return fields[sl.field].name(hs)
}

func describe(st Step) string {
	switch {
	case st.Field < 0 && st.Position == PosEnvTo:
		return fmt.Sprintf("%s #%d (%s)", st.Position, st.Index+1, st.Before)
	case st.Field < 0:
		return fmt.Sprintf("%s (%s)", st.Position, st.Before)
	}
	return fmt.Sprintf("%s: address #%d in header field #%d (%s)", st.Position, st.Index+1, st.Field+1, st.Before)
}

// spliceHeader writes the header with the changed addr-specs replaced:
// just the domain bytes when only the domain changed, the whole addr-spec
// (local part quoted as needed) when the local part changed. A field whose
// line grew past 998 octets is refolded.
func spliceHeader(hs string, fields []field, slots []slot, trace *[]Step) []byte {
	b := make([]byte, 0, len(hs)+256)
	prev := 0
	for i := 0; i < len(slots); {
		sl := &slots[i]
		if sl.field < 0 || sl.changes == 0 {
			i++
			continue
		}
		f := fields[sl.field]
		b = append(b, hs[prev:f.start]...)
		fs, pos := len(b), f.start
		for ; i < len(slots) && slots[i].field == sl.field; i++ {
			x := &slots[i]
			if x.changes == 0 {
				continue
			}
			if x.localMod {
				b = append(b, hs[pos:x.mb.start]...)
				b = append(b, addr.QuoteLocal(x.local)...)
				b = append(b, '@')
				pos = x.mb.end
			} else {
				b = append(b, hs[pos:x.mb.domStart]...)
				pos = x.mb.domEnd
			}
			b = append(b, x.domain...)
		}
		b = append(b, hs[pos:f.end]...)
		if longestLine(b[fs:]) > maxLine {
			folded, ok := refold(string(b[fs:]), f.eol(hs))
			b = append(b[:fs], folded...)
			if !ok {
				*trace = append(*trace, Step{Class: sl.class, Position: f.name(hs), Field: sl.field, Index: -1,
					Note: "a line is still longer than 998 octets: no white space to fold at"})
			}
		}
		prev = f.end
	}
	return append(b, hs[prev:]...)
}
