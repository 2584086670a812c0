package accounts

import (
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// An allow list names the foreign recipients an outbound_blocked account
// may still write to (E-Post's sender.dat "*@partner.jp,-1" before "*,0"):
//
//	*@partner.jp      every address of partner.jp
//	*@*.partner.jp    every address of its subdomains
//	sato@partner.jp   that address only
//
// A bare domain means *@domain. Entries are kept canonical: domains as
// lower-case A-labels, so that matching is a string comparison.

// NormalizeAllow checks one allow-list entry and returns it canonical.
func NormalizeAllow(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		s = "*@" + s
	}
	l, d, ok := addr.Split(s)
	if !ok {
		return "", fmt.Errorf("allow entry %q is not *@domain, *@*.domain or local@domain", s)
	}
	sub := strings.HasPrefix(d, "*.")
	dom, err := addr.Domain(strings.TrimPrefix(d, "*."))
	if err != nil {
		return "", fmt.Errorf("allow entry %q: %v", s, err)
	}
	if sub {
		dom = "*." + dom
	}
	switch {
	case l == "*":
	case strings.Contains(l, "*"):
		return "", fmt.Errorf("allow entry %q: '*' is allowed only as the whole local part", s)
	case sub:
		return "", fmt.Errorf("allow entry %q: a subdomain wildcard needs '*' as the local part", s)
	default:
		if err := addr.CheckLocal(l); err != nil {
			return "", fmt.Errorf("allow entry %q: %v", s, err)
		}
		l = addr.FoldLocal(l)
	}
	return l + "@" + dom, nil
}

// allowMatch reports whether the canonical recipient (folded local part,
// canonical domain) matches one of the canonical entries.
func allowMatch(list []string, local, domain string) bool {
	for _, e := range list {
		el, ed, _ := strings.Cut(e, "@")
		switch {
		case strings.HasPrefix(ed, "*."):
			if !strings.HasSuffix(domain, ed[1:]) {
				continue
			}
		case ed != domain:
			continue
		}
		if el == "*" || el == local {
			return true
		}
	}
	return false
}

// OutboundAllowed reports whether the account a, outbound_blocked, may
// still send to the foreign recipient rcpt: its allow list names it.
func (d *Directory) OutboundAllowed(a *Account, rcpt string) bool {
	if a == nil || len(d.allow) == 0 {
		return false
	}
	l, dom, err := addr.Parse(rcpt)
	if err != nil {
		return false
	}
	return allowMatch(d.allow[d.keyOf(a)], addr.FoldLocal(l), dom)
}

// AllowList returns the account's allow list (nil if none).
func (d *Directory) AllowList(a *Account) []string {
	if a == nil || len(d.allow) == 0 {
		return nil
	}
	return d.allow[d.keyOf(a)]
}

// keyOf returns the lookup key of one of d's accounts.
func (d *Directory) keyOf(a *Account) string {
	dom := d.domains[a.Domain]
	if dom == nil {
		return ""
	}
	dom = dom.Mailboxes()
	return addr.Key(a.Local, dom.Name, dom.FoldLocal)
}
