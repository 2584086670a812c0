package rewrite

import "github.com/sekisho/sekisho/accounts/addr"

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
// rewriting would leave alone. Dry runs use it to show every position;
// the relay can use it to read the header From.
func ScanHeader(header []byte) []HeaderAddress {
	hs := string(header)
	var out []HeaderAddress
	var mbs []mailbox
	for fi, f := range splitFields(hs, nil) {
		c := fieldClass(f.name(hs))
		if c == 0 {
			continue
		}
		var err error
		mbs, err = parseAddressList(hs, f.valStart, f.valEnd, mbs[:0])
		if err != nil {
			out = append(out, HeaderAddress{Class: c, Field: f.name(hs), FieldIndex: fi, Index: -1,
				Problem: "field cannot be read: " + err.Error()})
			continue
		}
		for k, mb := range mbs {
			ha := HeaderAddress{Class: c, Field: f.name(hs), FieldIndex: fi, Index: k, AddrSpec: hs[mb.start:mb.end]}
			switch {
			case mb.problem != "":
				ha.Problem = mb.problem
			case mb.noDomain:
				ha.Problem = "no domain"
			default:
				d := hs[mb.domStart:mb.domEnd]
				ha.Address = unquoteLocal(hs[mb.start:mb.localEnd]) + "@" + d
				if _, err := addr.Domain(d); err != nil {
					ha.Problem = err.Error()
				}
			}
			out = append(out, ha)
		}
	}
	return out
}
