package rewrite

import (
	"strings"
)

// UndisclosedRecipients is the empty group that stands in To for
// recipients the header no longer names (RFC 5322 §3.4 allows a group
// with no member; mail clients show it as is).
const UndisclosedRecipients = "undisclosed-recipients:;"

// BccResult is what MoveToBcc did.
type BccResult struct {
	// Header is the new header block; nil when nothing changed.
	Header []byte
	// Outside counts the outside addresses To and Cc named.
	Outside int
	// Moved lists the addresses taken out of the header, as written
	// there (without display names).
	Moved []string
	// Unreadable counts To and Cc fields that could not be read and were
	// taken out whole: which of their addresses are outside cannot be
	// told, so none of them may stay.
	Unreadable int
}

// MoveToBcc takes the outside addresses out of the To and Cc fields of a
// header block when there are more than limit of them (outside reports
// which are). The envelope is not this function's: every address stays
// a recipient there, so each gets the message without seeing the
// others. Inside addresses keep their place, display name and bytes as
// written; To ends with an undisclosed-recipients group; a Cc left empty
// goes. Every other field, Bcc and Resent-* included, is left as it was.
// With limit or fewer outside addresses the header is not touched.
func MoveToBcc(header []byte, outside func(address string) bool, limit int) BccResult {
	hs := string(header)
	type elem struct {
		text    string
		address string
		keep    bool
	}
	type rfield struct {
		f      field
		to     bool
		elems  []elem
		broken bool
	}
	var res BccResult
	var rfs []rfield
	var mbs []mailbox
	fields := splitFields(hs, nil)
	for _, f := range fields {
		name := strings.ToLower(f.name(hs))
		if name != "to" && name != "cc" {
			continue
		}
		rf := rfield{f: f, to: name == "to"}
		var err error
		mbs, err = parseAddressList(hs, f.valStart, f.valEnd, mbs[:0])
		if err != nil {
			rf.broken = true
			rfs = append(rfs, rf)
			continue
		}
		for _, mb := range mbs {
			e := elem{text: hs[mb.elemStart:mb.elemEnd]}
			if mb.problem == "" && !mb.noDomain {
				e.address = unquoteLocal(hs[mb.start:mb.localEnd]) + "@" + hs[mb.domStart:mb.domEnd]
				e.keep = !outside(e.address)
				if !e.keep {
					res.Outside++
				}
			}
			rf.elems = append(rf.elems, e)
		}
		rfs = append(rfs, rf)
	}
	if res.Outside <= limit {
		return res
	}
	// Build the new To and Cc, in the place of the first field of each.
	var to, cc []string
	haveTo := false
	for _, rf := range rfs {
		if rf.broken {
			res.Unreadable++
			continue
		}
		for _, e := range rf.elems {
			switch {
			case e.keep:
				if rf.to {
					to = append(to, e.text)
				} else {
					cc = append(cc, e.text)
				}
			case e.address != "":
				res.Moved = append(res.Moved, e.address)
			}
		}
		haveTo = haveTo || rf.to
	}
	to = append(to, UndisclosedRecipients)
	var b strings.Builder
	b.Grow(len(hs))
	wroteTo, wroteCc := false, false
	at := 0
	for _, rf := range rfs {
		b.WriteString(hs[at:rf.f.start])
		at = rf.f.end
		eol := rf.f.eol(hs)
		switch {
		case rf.to && !wroteTo, !haveTo && !wroteTo:
			// With no To at all, the first Cc's place takes it.
			writeList(&b, "To", to, eol)
			wroteTo = true
			if !rf.to && !wroteCc && len(cc) > 0 {
				writeList(&b, "Cc", cc, eol)
				wroteCc = true
			}
		case !rf.to && !wroteCc && len(cc) > 0:
			writeList(&b, "Cc", cc, eol)
			wroteCc = true
		}
	}
	b.WriteString(hs[at:])
	res.Header = []byte(b.String())
	return res
}

// writeList writes an address field, folded before an element that would
// take the line past 78 characters (RFC 5322 §2.1.1).
func writeList(b *strings.Builder, name string, elems []string, eol string) {
	line := len(name) + 2
	b.WriteString(name + ": ")
	for i, e := range elems {
		if i > 0 {
			if line+2+len(e) > 78 {
				b.WriteString("," + eol + " ")
				line = 1
			} else {
				b.WriteString(", ")
				line += 2
			}
		}
		b.WriteString(e)
		line += len(e)
	}
	b.WriteString(eol)
}
