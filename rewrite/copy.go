package rewrite

import (
	"fmt"

	"github.com/sekisho/sekisho/accounts/addr"
)

// CopyInput is one copy of a queued message: the recipients that leave by
// one next hop, and the message as the spool keeps it (as received, our
// Received field on top).
type CopyInput struct {
	// From is the envelope sender as received ("" is the null sender).
	From string
	// To are the copy's recipients as queued: alias targets after the
	// receive-time rewrite, which decided where they go.
	To []string
	// Header is the header block as queued, with its empty line; nil
	// rewrites the envelope only (see CopyReadsHeader).
	Header []byte
	Source Source
	// Set is the rewrite set of the copy's route (routing's `rewrite:`);
	// "" for none.
	Set string
	// Received is what the route does to the trace fields added inside.
	Received ReceivedPolicy
}

// CopyOutput is what one next hop is sent.
type CopyOutput struct {
	From string
	// To are the recipients to send, each once: two recipients the set
	// maps to one address get one RCPT.
	To []string
	// Of has one entry per CopyInput.To: the index in To of what that
	// recipient became, so that one reply answers for both.
	Of []int
	// Header is CopyInput.Header itself (same memory) when HeaderChanged
	// is false.
	Header        []byte
	HeaderChanged bool
	// Trace lists the steps of the receive-time rules (Set "") and then
	// of the route's set, in order.
	Trace []Step
	// Received lists the trace fields the route removed or masked.
	Received []ReceivedChange
}

// Copy rewrites one copy of a message for its route. It is the one
// decision of what a copy carries: the delivery runner calls it for every
// next hop, `rewrite test --message` to show each copy. Pure, like
// Rewrite.
//
// In order: the receive-time rules (rewrite.rules) rewrite the envelope
// sender and the header addresses, their recipient conditions looking at
// this copy's recipients only, so a sender rewritten for LGWAN reaches
// only the LGWAN copy; the recipients themselves stay as queued (they
// decided the route). Then the route's set rewrites every position,
// recipients included. Then the Received fields added inside are masked or
// removed as the route says. The spool's message is never changed: each
// copy starts from it.
func (w *Rewriter) Copy(in CopyInput) (CopyOutput, error) {
	out := CopyOutput{From: in.From, To: in.To, Header: in.Header}
	out.Of = make([]int, len(in.To))
	for i := range out.Of {
		out.Of[i] = i
	}
	var set *RuleSet
	if in.Set != "" {
		s, ok := w.sets[in.Set]
		if !ok {
			return out, fmt.Errorf("rewrite set %q does not exist", in.Set)
		}
		set = s
	}
	recv, err := w.def.rewrite(Input{From: in.From, To: in.To, Header: in.Header, Source: in.Source}, true)
	out.Trace = recv.Trace
	if err != nil {
		return out, fmt.Errorf("rewrite.%w", err)
	}
	from, to, header := recv.From, in.To, recv.Header
	if set != nil {
		o, err := set.Rewrite(Input{From: from, To: to, Header: header, Source: in.Source})
		out.Trace = append(out.Trace, o.Trace...)
		if err != nil {
			return out, fmt.Errorf("rewrite.%w", err)
		}
		from, to, header = o.From, o.To, o.Header
	}
	if header != nil && in.Received.active() {
		header, out.Received = in.Received.apply(header)
	}
	out.From, out.Header = from, header
	out.HeaderChanged = !sameMemory(header, in.Header)
	out.To, out.Of = distinct(to)
	return out, nil
}

// CopyReadsHeader reports whether Copy would look at the header for in:
// when it would not, the runner sends the stored bytes without reading
// them first.
func (w *Rewriter) CopyReadsHeader(in CopyInput) bool {
	const headerClasses = 1<<HeaderSender | 1<<HeaderRecipient
	if in.Received.active() || w.def.active[in.Source]&headerClasses != 0 {
		return true
	}
	s, ok := w.sets[in.Set]
	return ok && s.active[in.Source]&headerClasses != 0
}

// distinct removes repeated addresses (the domain compared without case,
// the local part exactly: RFC 5321 leaves its case to the receiving host)
// and maps every position to the address it keeps.
func distinct(to []string) ([]string, []int) {
	of := make([]int, len(to))
	out := make([]string, 0, len(to))
	seen := make(map[string]int, len(to))
	for i, a := range to {
		k := a
		if l, d, ok := addr.Split(a); ok {
			if cd, err := addr.Domain(d); err == nil {
				k = l + "@" + cd
			}
		}
		j, dup := seen[k]
		if !dup {
			j = len(out)
			seen[k] = j
			out = append(out, a)
		}
		of[i] = j
	}
	return out, of
}

// sameMemory reports whether a and b are the same bytes in memory (the
// rewrite hands its input back when nothing changed).
func sameMemory(a, b []byte) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
