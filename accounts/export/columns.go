package export

import (
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// role is what a column holds.
type role uint8

const (
	roleIgnore  role = iota
	roleAccount      // a local part, or a full address
	roleMail         // a full address
	roleDomain
	roleName
	roleFlags
	roleSecret
	roleAlias
	roleTarget
	roleCount
)

var roleNames = [roleCount]string{"", "account", "mail", "domain", "name", "flags", "secret", "alias", "target"}

func (r role) String() string { return roleNames[r] }

// columnNames maps header names, as normalized by headerKey, to roles. The
// Japanese names are the labels of E-Post, Active! mail and Windows-server
// account lists and of hand-made Excel sheets; the English ones cover the
// rest. ユーザ名 means the login name on those servers, not the person.
var columnNames = map[string]role{}

func init() {
	for r, names := range map[role][]string{
		roleAccount: {"account", "accountname", "user", "username", "userid", "login", "loginid", "loginname",
			"アカウント", "アカウント名", "アカウントid", "ユーザー", "ユーザ", "ユーザー名", "ユーザ名", "ユーザーid", "ユーザid",
			"ログイン名", "ログインid"},
		roleMail: {"mail", "address", "email", "mailaddress", "emailaddress", "smtpaddress",
			"メールアドレス", "メール", "アドレス", "電子メール", "電子メールアドレス", "eメール", "eメールアドレス"},
		roleDomain: {"domain", "domainname", "maildomain", "ドメイン", "ドメイン名", "メールドメイン"},
		roleName: {"name", "display", "displayname", "fullname", "realname", "cn",
			"氏名", "名前", "表示名", "名称", "姓名"},
		roleFlags:  {"flags", "flag", "status", "state", "フラグ", "状態", "ステータス"},
		roleSecret: {"secret"},
		roleAlias:  {"alias", "aliasaddress", "エイリアス", "エイリアス名", "別名"},
		roleTarget: {"target", "mappedto", "mapto", "forward", "forwardto", "destination",
			"転送先", "転送先アドレス", "実アドレス"},
	} {
		for _, n := range names {
			columnNames[headerKey(n)] = r
		}
	}
}

// headerKey folds a header cell so that "E-Mail", "ｅｍａｉｌ", "Mail Address"
// and "ﾒｰﾙｱﾄﾞﾚｽ" (half-width katakana, common in old Windows tools) find
// their column: NFKC, lower case, without spaces, '_', '-' and '.'.
func headerKey(s string) string {
	s = strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '.', '\u3000', '・':
			return -1
		}
		return r
	}, s)
}

// lookupColumn returns the role of a header cell and whether it is known.
func lookupColumn(cell string) (role, bool) {
	r, ok := columnNames[headerKey(cell)]
	return r, ok
}

// Column describes one column of the export as it was understood.
type Column struct {
	Name string `json:"name"` // as written in the header or in Options.Columns
	Role string `json:"role"` // account, mail, domain, name, flags, secret, alias, target; "" when ignored
}

// layout is the meaning of each column, with the index of every role.
type layout struct {
	roles []role
	index [roleCount]int // -1 when absent
	names []string
}

// newLayout checks that the roles make a usable export: an address or an
// alias column, alias and target together, no role twice.
func newLayout(names []string, roles []role) (*layout, error) {
	l := &layout{roles: roles, names: names}
	for i := range l.index {
		l.index[i] = -1
	}
	for i, r := range roles {
		if r == roleIgnore {
			continue
		}
		if j := l.index[r]; j >= 0 {
			return nil, fmt.Errorf("columns %d (%q) and %d (%q) both give the %s", j+1, names[j], i+1, names[i], r)
		}
		l.index[r] = i
	}
	switch {
	case l.index[roleAccount] < 0 && l.index[roleMail] < 0 && l.index[roleAlias] < 0:
		return nil, fmt.Errorf("no account, mail or alias column among %s", quoteList(names))
	case l.index[roleAlias] >= 0 && l.index[roleTarget] < 0:
		return nil, fmt.Errorf("an alias column needs a target column (target, mappedto, 転送先, 実アドレス)")
	case l.index[roleTarget] >= 0 && l.index[roleAlias] < 0:
		return nil, fmt.Errorf("a target column needs an alias column (alias, エイリアス)")
	}
	return l, nil
}

func (l *layout) columns() []Column {
	out := make([]Column, len(l.roles))
	for i, r := range l.roles {
		out[i] = Column{Name: l.names[i], Role: r.String()}
	}
	return out
}

// headerLayout reads a header row (one that looksLikeHeader). Unknown
// cells are ignored columns: exports carry quotas, dates and the like.
func headerLayout(cells []string) (*layout, error) {
	roles := make([]role, len(cells))
	names := make([]string, len(cells))
	for i, c := range cells {
		names[i] = strings.TrimSpace(c)
		if r, ok := lookupColumn(c); ok {
			roles[i] = r
		}
	}
	return newLayout(names, roles)
}

// looksLikeHeader reports whether a row is a header: at least one cell is a
// column name and none holds an address.
func looksLikeHeader(cells []string) bool {
	known := false
	for _, c := range cells {
		if strings.Contains(c, "@") {
			return false
		}
		if _, ok := lookupColumn(c); ok {
			known = true
		}
	}
	return known
}

// optionLayout reads Options.Columns. Each element may itself be a
// comma-separated list, as given on a command line. "-", "skip" and
// "ignore" name a column to ignore.
func optionLayout(cols []string) (*layout, error) {
	var names []string
	var roles []role
	for _, c := range cols {
		for _, n := range strings.Split(c, ",") {
			n = strings.TrimSpace(n)
			var r role
			switch strings.ToLower(n) {
			case "-", "skip", "ignore":
				r = roleIgnore
			default:
				var ok bool
				if r, ok = lookupColumn(n); !ok {
					return nil, fmt.Errorf("columns: unknown column name %q (known: account, mail, domain, name, flags, secret, alias, target, or - to ignore)", n)
				}
			}
			names = append(names, n)
			roles = append(roles, r)
		}
	}
	l, err := newLayout(names, roles)
	if err != nil {
		return nil, fmt.Errorf("columns: %v", err)
	}
	return l, nil
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
