package session

import (
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
)

// ArchiveConfig is one archive copy (E-Post's Carbon Copy List): every
// message accepted in a direction is also queued for Address, a blind
// copy. The copy is an extra recipient of the queued message, added at
// DATA: it is in no header, it is stored, retried and survives a crash
// like any recipient, and its failures never bounce to the sender
// (NOTIFY=NEVER). A route for Address with a "dir:PATH" target archives
// into a folder.
type ArchiveConfig struct {
	// Direction is "inbound" (from the internet to us), "outbound" (from
	// the inner server or an authenticated client) or "all".
	Direction string `koanf:"direction"`
	Address   string `koanf:"address"`
}

// archives reports whether the copy applies to mail from src.
func (a ArchiveConfig) archives(src rewrite.Source) bool {
	switch a.Direction {
	case "all":
		return true
	case "inbound":
		return src == rewrite.SourceInternet
	case "outbound":
		return src == rewrite.SourceInner || src == rewrite.SourceAuthenticated
	}
	return false
}

// ValidateArchive checks relay.archive; keys are relative to relay.
func ValidateArchive(list []ArchiveConfig) []error {
	var errs []error
	seen := map[string]int{}
	for i, a := range list {
		key := fmt.Sprintf("archive[%d]", i)
		switch a.Direction {
		case "inbound", "outbound", "all":
		default:
			errs = append(errs, fmt.Errorf("%s.direction: %q is not a direction (inbound, outbound, all)", key, a.Direction))
		}
		if _, _, err := addr.Parse(a.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %v", key, err))
			continue
		}
		k := a.Direction + " " + strings.ToLower(a.Address)
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("%s: repeats archive[%d]", key, j))
		}
		seen[k] = i
	}
	return errs
}

// archiveCopies returns the archive recipients to add to a message from
// src whose recipients are have: each archive address once, and not if
// the message already goes to it.
func archiveCopies(list []ArchiveConfig, src rewrite.Source, have []queue.Recipient) []queue.Recipient {
	var out []queue.Recipient
next:
	for _, a := range list {
		if !a.archives(src) {
			continue
		}
		for _, r := range have {
			if strings.EqualFold(r.Addr, a.Address) {
				continue next
			}
		}
		for _, r := range out {
			if strings.EqualFold(r.Addr, a.Address) {
				continue next
			}
		}
		out = append(out, queue.Recipient{Addr: a.Address, OrigAddr: a.Address, Notify: "NEVER"})
	}
	return out
}
