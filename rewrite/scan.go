package rewrite

import (
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// HeaderAddress is one address found in an address field of a header
// block, as the rewriter sees it.
type HeaderAddress struct {
	Class Class `json:"class"`
	// Field is the field name as written; FieldIndex its index in the block
	// (the same numbering as Step.Field).
	Field      string `json:"field"`
	FieldIndex int    `json:"field_index"`
	// Index is the address's index within the field (as Step.Index), or -1
	// when the whole field cannot be read.
	Index int `json:"index"`
	// AddrSpec is the address as written, quotes included.
	AddrSpec string `json:"addr_spec,omitempty"`
	// Address is local@domain with quotes removed; "" without a domain.
	Address string `json:"address,omitempty"`
	// Problem says why the address (or field) is never rewritten.
	Problem string `json:"problem,omitempty"`
}

// ScanHeader lists the addresses of every address field of a header block
// (From, To, Cc, Resent-*, ...), in order, with the reason for any that
// rewriting would leave alone. Dry runs use it to show every position.
func ScanHeader(header []byte) []HeaderAddress {
	hs := string(header)
	var out []HeaderAddress
	var mbs []mailbox
	for fi, f := range splitFields(hs, nil) {
		if c := fieldClass(f.name(hs)); c != 0 {
			out, mbs = appendAddresses(out, hs, f, fi, c, mbs[:0])
		}
	}
	return out
}

// FromField is one From field of a header block.
type FromField struct {
	// FieldIndex is the field's index in the block, as
	// HeaderAddress.FieldIndex numbers it.
	FieldIndex int
	// Problem says why the field cannot be read; Mailboxes is then nil.
	Problem string
	// Mailboxes are the field's addresses in order (a group's members
	// included). One that is not local@domain has Address "" and a
	// Problem (ProblemNoDomain for one without '@').
	Mailboxes []HeaderAddress
}

// HeaderFrom returns every From field of a header block, in order, and
// every address of each. RFC 5322 wants one field, which may hold several
// mailboxes; RFC 7489 §6.6.1 leaves messages with several fields or
// addresses to the receiver, so the choice is the caller's (DMARC, DKIM
// signing and the sender trust check choose differently). Display names
// are never decoded: encoded words, raw UTF-8, Shift_JIS or ISO-2022-JP in
// them do not disturb the addresses, and a field that cannot be read
// reliably says so instead of guessing.
func HeaderFrom(header []byte) []FromField {
	hs := string(header)
	var out []FromField
	var mbs []mailbox
	for fi, f := range splitFields(hs, nil) {
		if !strings.EqualFold(f.name(hs), "From") {
			continue
		}
		var addrs []HeaderAddress
		addrs, mbs = appendAddresses(nil, hs, f, fi, HeaderSender, mbs[:0])
		ff := FromField{FieldIndex: fi, Mailboxes: addrs}
		if len(addrs) == 1 && addrs[0].Index < 0 {
			ff.Problem, ff.Mailboxes = addrs[0].Problem, nil
		}
		out = append(out, ff)
	}
	return out
}

// appendAddresses appends the addresses of field f (index fi, class c),
// or one entry with Index -1 when the field cannot be read. mbs is
// scratch space, returned for reuse.
func appendAddresses(out []HeaderAddress, hs string, f field, fi int, c Class, mbs []mailbox) ([]HeaderAddress, []mailbox) {
	mbs, err := parseAddressList(hs, f.valStart, f.valEnd, mbs)
	if err != nil {
		return append(out, HeaderAddress{Class: c, Field: f.name(hs), FieldIndex: fi, Index: -1,
			Problem: "field cannot be read: " + err.Error()}), mbs
	}
	for k, mb := range mbs {
		ha := HeaderAddress{Class: c, Field: f.name(hs), FieldIndex: fi, Index: k, AddrSpec: hs[mb.start:mb.end]}
		switch {
		case mb.problem != "":
			ha.Problem = mb.problem
		case mb.noDomain:
			ha.Problem = ProblemNoDomain
		default:
			d := hs[mb.domStart:mb.domEnd]
			ha.Address = unquoteLocal(hs[mb.start:mb.localEnd]) + "@" + d
			if _, err := addr.Domain(d); err != nil {
				ha.Problem = err.Error()
			}
		}
		out = append(out, ha)
	}
	return out, mbs
}

// ProblemNoDomain is HeaderAddress.Problem for an address without '@'
// (a bare "postmaster"): a name, not a parse failure.
const ProblemNoDomain = "no domain"
