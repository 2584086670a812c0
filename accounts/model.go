// Package accounts owns the gateway's mirror of the inner mail server: its
// domains, accounts and aliases (the seeds' configuration C, with A and B
// expressible as wildcard domains and explicit aliases), the directory file
// that stores them, and the sync that brings them up to date from an export.
// It answers, in one O(1) lookup, whether an address is ours, what it
// resolves to and which flags apply.
package accounts

import (
	"fmt"
	"strings"
)

// Mode says which local parts of a domain exist.
type Mode uint8

const (
	// ModeMirror: only listed accounts and aliases exist (configuration C).
	ModeMirror Mode = iota
	// ModeWildcard: every local part exists (configuration A). Weak.
	ModeWildcard
)

func (m Mode) String() string {
	if m == ModeWildcard {
		return "wildcard"
	}
	return "mirror"
}

// Flags are per-account switches.
type Flags uint8

const (
	// OutboundBlocked: may receive, may not send outside our domains (the
	// seeds' baito@ case, E-Post's sender.dat "*@domain,-1").
	OutboundBlocked Flags = 1 << iota
	// Disabled: neither receives nor sends nor authenticates.
	Disabled
)

var flagNames = []struct {
	f    Flags
	name string
}{{OutboundBlocked, "outbound_blocked"}, {Disabled, "disabled"}}

// String lists the flags comma-separated, or "-" when none is set.
func (f Flags) String() string {
	var parts []string
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			parts = append(parts, fn.name)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// ParseFlags reads a comma-separated flag list; "" and "-" mean none.
func ParseFlags(s string) (Flags, error) {
	var f Flags
	if s == "" || s == "-" {
		return 0, nil
	}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		found := false
		for _, fn := range flagNames {
			if p == fn.name {
				f |= fn.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown flag %q (known: outbound_blocked, disabled)", p)
		}
	}
	return f, nil
}

// Domain is one of our domains.
type Domain struct {
	Name      string // canonical: lower-case A-labels
	Mode      Mode
	FoldLocal bool   // local parts compare case-insensitively
	ord       uint16 // the domain's number in its Directory, for the index
	// Twin is the domain whose mailboxes this one shares (see
	// DomainConfig.Twin), or nil. Lookups key every address by the twin, and
	// mail is addressed to it.
	Twin *Domain
}

// Mailboxes returns the domain whose mailboxes this one's addresses name:
// its twin, or itself.
func (d *Domain) Mailboxes() *Domain {
	if d.Twin != nil {
		return d.Twin
	}
	return d
}

// Account is a mirrored account. Local keeps the case it was given in.
type Account struct {
	Local  string
	Domain string
	Name   string // display name
	Secret string // SMTP AUTH secret reference, interpreted by relay
	Flags  Flags
	mbox   uint16 // the ord of the account's mailbox domain (fits the padding after Flags)
}

// Address returns local@domain.
func (a *Account) Address() string { return a.Local + "@" + a.Domain }

// Record is one entry of the directory file or of an export: an account or
// an alias. Line is the source line, for error messages (0 if none).
type Record struct {
	Line int
	// Alias is empty for an account; for an alias it is the pattern
	// (info@d, 2009*@d or *@d) and Target the address it maps to.
	Alias  string
	Target string
	// Account fields (Alias == "").
	Local, Domain string
	Name          string
	Secret        string
	Flags         Flags
	// Missing lists the account fields the source did not carry (an export
	// without a flags column): a sync keeps the directory's values for them
	// unless told to reset them.
	Missing Fields
	// Allow lists the recipients an outbound_blocked account may still
	// write to (see OutboundAllowed).
	Allow []string
}

// Fields names account fields, as a set.
type Fields uint8

const (
	FieldName Fields = 1 << iota
	FieldFlags
	FieldSecret
	FieldAllow
)

// Address returns local@domain of an account record.
func (r *Record) Address() string { return r.Local + "@" + r.Domain }

// IsAlias reports whether the record is an alias.
func (r *Record) IsAlias() bool { return r.Alias != "" }

// Kind is what an address is to the gateway.
type Kind uint8

const (
	KindForeign  Kind = iota // not one of our domains
	KindUnknown              // our domain, but no such account
	KindAccount              // a mirrored account
	KindAlias                // reached through one or more aliases
	KindWildcard             // a wildcard domain: any local part
)

var kindNames = [...]string{"foreign", "unknown", "account", "alias", "wildcard"}

func (k Kind) String() string { return kindNames[k] }

// Result answers a lookup.
type Result struct {
	Input  string // the address as asked
	Kind   Kind
	Domain *Domain // nil when foreign
	// Target is the address mail for Input is forwarded to, after alias
	// resolution (equal to Input for accounts and wildcard domains). It may
	// be foreign when an alias points outside.
	Target string
	// Account is the account reached, if any; its Flags apply.
	Account *Account
	// Chain lists the alias patterns followed, in order.
	Chain []string
	// Protected is true for a protected local part (postmaster@, abuse@)
	// in one of our domains.
	Protected bool
}

// Ours reports whether the address belongs to one of our domains.
func (r Result) Ours() bool { return r.Kind != KindForeign }

// Exists reports whether mail to the address is accepted: ours and known, or
// an alias that resolves, and not disabled.
func (r Result) Exists() bool {
	switch r.Kind {
	case KindAccount, KindAlias, KindWildcard:
		return r.Account == nil || r.Account.Flags&Disabled == 0
	}
	return false
}

// Flags returns the flags of the account reached, or 0.
func (r Result) Flags() Flags {
	if r.Account == nil {
		return 0
	}
	return r.Account.Flags
}
