package export

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
)

// row holds the trimmed cells of one line, by role.
type row [roleCount]string

// problems collects the reasons a line is refused; a line reports all of
// them at once so that one pass over the file fixes it.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// rowDomain returns the canonical domain a row without '@' falls back to:
// the domain column, else the default domain ("" if neither). ok is false
// when the domain cell is bad (and reported).
func (p *parser) rowDomain(v *row, bad *problems) (domain string, ok bool) {
	d := strings.TrimPrefix(v[roleDomain], "@")
	if d == "" {
		return p.domain, true
	}
	canon, err := addr.Domain(d)
	if err != nil {
		bad.add("domain column: %v", err)
		return "", false
	}
	if addr.IsDomainLiteral(canon) {
		bad.add("domain column: %q is an address literal, not a mail domain", d)
		return "", false
	}
	return canon, true
}

// account builds an account record. The mail cell wins over the account
// cell when both are filled: the account cell then is a login name, which
// need not be the address.
func (p *parser) account(v *row, bad *problems) accounts.Record {
	var rec accounts.Record
	a, col := v[roleMail], "mail"
	if a == "" {
		a, col = v[roleAccount], "account"
	}
	if v[roleTarget] != "" {
		bad.add("target %q without an alias", v[roleTarget])
	}
	colDom, domOK := p.rowDomain(v, bad)
	switch {
	case a == "":
		bad.add("no address: the %s cell is empty", p.addressColumns())
	case !strings.Contains(a, "@") && col == "mail":
		bad.add("mail %q is not an address (no '@')", a)
	case !strings.Contains(a, "@"):
		if colDom == "" {
			if domOK {
				bad.add("account %q has no '@', and neither a domain column nor a default domain gives its domain", a)
			}
			break
		}
		if err := checkLocal(a); err != nil {
			bad.add("account %q: %v", a, err)
			break
		}
		if n := len(a) + 1 + len(colDom); n > addr.MaxAddressLen {
			bad.add("account %q: %s@%s is longer than %d octets", a, a, colDom, addr.MaxAddressLen)
			break
		}
		rec.Local, rec.Domain = a, colDom
	default:
		l, d, err := parseAddress(a)
		if err != nil {
			bad.add("%s %v", col, err)
			break
		}
		if v[roleDomain] != "" && colDom != "" && d != colDom {
			bad.add("%s %q is in %s, but the domain column says %s", col, a, d, colDom)
			break
		}
		rec.Local, rec.Domain = l, d
	}
	if rec.Domain != "" && p.opt.Restrict && p.opt.Mailboxes(rec.Domain) != p.opt.Mailboxes(p.domain) {
		bad.add("domain %s is not %s, the only domain this export may hold", rec.Domain, p.domain)
	}
	rec.Name = v[roleName]
	if err := checkText(rec.Name); err != nil {
		bad.add("name: %v", err)
	}
	if err := checkText(v[roleSecret]); err != nil {
		bad.add("secret: %v", err) // never echo the value
	}
	rec.Secret = v[roleSecret]
	f, err := parseFlags(v[roleFlags])
	if err != nil {
		bad.add("flags: %v", err)
	}
	rec.Flags = f
	return rec
}

func (p *parser) addressColumns() string {
	switch {
	case p.lay.index[roleMail] >= 0 && p.lay.index[roleAccount] >= 0:
		return "mail and account"
	case p.lay.index[roleMail] >= 0:
		return "mail"
	}
	return "account"
}

// parseAddress parses a full address for an account; addr.Parse's errors
// already quote it.
func parseAddress(a string) (local, domain string, err error) {
	if _, _, ok := addr.Split(a); !ok {
		return "", "", fmt.Errorf("%q is not of the form local@domain", a)
	}
	l, d, err := addr.Parse(a)
	if err == nil {
		err = checkLocal(l)
	}
	if err != nil {
		return "", "", fmt.Errorf("%q: %v", a, err)
	}
	if addr.IsDomainLiteral(d) {
		return "", "", fmt.Errorf("%q: an address literal is not a mail domain", a)
	}
	return l, d, nil
}

// alias builds an alias record: pattern info@d, prefix*@d or *@d; target an
// address or *@d (keep the local part). A pattern or target without '@'
// takes the row's domain, as an account cell does.
func (p *parser) alias(v *row, bad *problems) accounts.Record {
	var rec accounts.Record
	if v[roleAccount] != "" || v[roleMail] != "" {
		bad.add("both an address (%q) and an alias (%q): an alias row has only alias and target", v[roleMail]+v[roleAccount], v[roleAlias])
		return rec
	}
	if f, err := parseFlags(v[roleFlags]); err != nil || f != 0 {
		bad.add("flags %q on an alias: aliases have no flags (remove the row to disable an alias)", v[roleFlags])
	}
	colDom, domOK := p.rowDomain(v, bad)
	withDomain := func(s string) (string, bool) {
		if strings.Contains(s, "@") {
			return s, true
		}
		if colDom == "" {
			if domOK {
				bad.add("%q has no '@', and neither a domain column nor a default domain gives its domain", s)
			}
			return "", false
		}
		return s + "@" + colDom, true
	}
	if pat, ok := withDomain(v[roleAlias]); ok {
		norm, dom, err := normalizePattern(pat)
		switch {
		case err != nil:
			bad.add("alias %v", err)
		case p.opt.Restrict && p.opt.Mailboxes(dom) != p.opt.Mailboxes(p.domain):
			bad.add("alias %s: domain %s is not %s, the only domain this export may hold", norm, dom, p.domain)
		default:
			rec.Alias = norm
		}
	}
	if v[roleTarget] == "" {
		bad.add("alias %q has an empty target", v[roleAlias])
	} else if t, ok := withDomain(v[roleTarget]); ok {
		norm, err := epostTarget(rec.Alias, t)
		if err != nil {
			bad.add("target %v", err)
		}
		rec.Target = norm
	}
	return rec
}

// normalizePattern checks an alias pattern and returns it with its domain
// canonical, and the domain.
func normalizePattern(s string) (pattern, domain string, err error) {
	l, d, ok := addr.Split(s)
	if !ok {
		return "", "", fmt.Errorf("%q is not local@domain, prefix*@domain or *@domain", s)
	}
	dom, err := addr.Domain(d)
	if err != nil {
		return "", "", fmt.Errorf("%q: %v", s, err)
	}
	if addr.IsDomainLiteral(dom) {
		return "", "", fmt.Errorf("%q: an address literal is not a mail domain", s)
	}
	if star := strings.IndexByte(l, '*'); star >= 0 && star != len(l)-1 {
		return "", "", fmt.Errorf("%q: '*' is allowed only at the end of the local part", s)
	}
	if l != "*" {
		if err := checkLocal(strings.TrimSuffix(l, "*")); err != nil {
			return "", "", fmt.Errorf("%q: %v", s, err)
		}
	}
	p := l + "@" + dom
	if len(p) > addr.MaxAddressLen {
		return "", "", fmt.Errorf("%q: longer than %d octets", s, addr.MaxAddressLen)
	}
	return p, dom, nil
}

// normalizeTarget checks an alias target: an address, or *@domain to keep
// the local part. A '*' anywhere else is refused: as an address character
// it is legal, but in an alias export it is always a mistake.
func normalizeTarget(t string) (string, error) {
	if d, ok := strings.CutPrefix(t, "*@"); ok {
		dom, err := addr.Domain(d)
		if err != nil {
			return "", fmt.Errorf("%q: %v", t, err)
		}
		if addr.IsDomainLiteral(dom) {
			return "", fmt.Errorf("%q: an address literal is not a mail domain", t)
		}
		return "*@" + dom, nil
	}
	if l, _, ok := addr.Split(t); ok && strings.Contains(l, "*") {
		return "", fmt.Errorf("%q: '*' is allowed only as the whole local part (*@domain)", t)
	}
	l, d, err := parseAddress(t)
	if err != nil {
		return "", err
	}
	return l + "@" + d, nil
}

// checkLocal is addr.CheckLocal plus what no inner server allows in an
// account name, so that a mangled cell ("tanaka taro@d", "a@b@d") is an
// error rather than a strange account.
func checkLocal(l string) error {
	if err := addr.CheckLocal(l); err != nil {
		return err
	}
	if strings.Contains(l, "@") {
		return fmt.Errorf("more than one '@'")
	}
	if strings.IndexFunc(l, unicode.IsSpace) >= 0 {
		return fmt.Errorf("white space in the local part")
	}
	return nil
}

// checkText refuses control characters (tabs and newlines included), line
// separators and bidirectional overrides, which can make a name display as
// something else in a log or a list.
func checkText(s string) error {
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return fmt.Errorf("contains the control character U+%04X", r)
		}
	}
	return nil
}

// flagWords are the flag spellings accepted besides accounts.ParseFlags'
// own. The Japanese ones are the states Windows mail servers show in their
// account lists (有効/無効) and the seeds' wording for an account that may
// not send outside (外部送信禁止, "特定アカウントのみ外部送信をさせない").
var flagWords = map[string]accounts.Flags{}

// flagNone marks words that say "no flag" (an enabled, ordinary account).
const flagNone accounts.Flags = 1 << 7

func init() {
	for f, words := range map[accounts.Flags][]string{
		accounts.OutboundBlocked: {"outbound_blocked", "outboundblocked", "outbound-blocked", "no_outbound", "receive_only", "receiveonly",
			"送信禁止", "外部送信禁止", "送信不可", "外部送信不可", "受信のみ"},
		accounts.Disabled: {"disabled", "disable", "inactive", "suspended", "locked", "無効", "停止", "利用停止", "休止"},
		flagNone:          {"-", "none", "enabled", "enable", "active", "normal", "有効", "通常", "利用中"},
	} {
		for _, w := range words {
			flagWords[w] = f
		}
	}
}

// parseFlags reads the flags cell: accounts.ParseFlags syntax first, else
// words from flagWords separated by ',', ';', '|', '、' or spaces.
func parseFlags(s string) (accounts.Flags, error) {
	if f, ok := flagWords[s]; ok { // the common single word, without allocating
		return f &^ flagNone, nil
	}
	if f, err := accounts.ParseFlags(s); err == nil {
		return f, nil
	}
	var f accounts.Flags
	none := false
	words := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == '|' || r == '、' || r == '，' || unicode.IsSpace(r)
	})
	for _, w := range words {
		v, ok := flagWords[strings.ToLower(w)]
		if !ok {
			return 0, fmt.Errorf("unknown flag %q (known: outbound_blocked, disabled; also 外部送信禁止, 受信のみ, 無効, 停止, 有効, enabled, -)", w)
		}
		if v == flagNone {
			none = true
		} else {
			f |= v
		}
	}
	if none && f&accounts.Disabled != 0 {
		return 0, fmt.Errorf("%q says both enabled and disabled", s)
	}
	return f, nil
}
