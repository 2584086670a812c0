package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/accounts/export"
	"github.com/sekisho/sekisho/accounts/secretfile"
	"github.com/sekisho/sekisho/relay/auth"
)

// ldapSignIn checks people against the directory (console.ldap).
type ldapSignIn struct {
	cfg      LDAPConfig
	password string
	tls      *tls.Config
}

func newLDAPSignIn(c LDAPConfig) (*ldapSignIn, error) {
	l := &ldapSignIn{cfg: c}
	var err error
	if c.PasswordFile != "" {
		if l.password, err = secretfile.Password(c.PasswordFile); err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
	}
	if c.CAFile != "" {
		if l.tls, err = secretfile.CATLS(c.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	return l, nil
}

// ldapUser is a user with the LDAP groups their roles come from.
type ldapUser struct {
	user
	groups []string
}

// check binds as the person; a wrong name or password is auth.ErrFailed
// (it counts towards the lockout), an unreachable directory is not.
func (l *ldapSignIn) check(ctx context.Context, login, password string) (*ldapUser, error) {
	u, err := export.LDAPAuthenticate(ctx, export.LDAPBindOptions{
		LDAPOptions: export.LDAPOptions{URL: l.cfg.URL, BindDN: l.cfg.BindDN, Password: l.password, StartTLS: l.cfg.StartTLS,
			TLS: l.tls, Timeout: l.cfg.Timeout},
		Login: l.cfg.Login, Mail: l.cfg.Mail, GroupsAttr: l.cfg.GroupsAttribute, GroupBase: l.cfg.GroupBase,
	}, login, password)
	if errors.Is(err, export.ErrLDAPCredentials) {
		return nil, fmt.Errorf("ldap: %w", auth.ErrFailed)
	}
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	p := strings.ToLower(u.Mail)
	if p == "" {
		p = strings.ToLower(login)
	}
	return &ldapUser{user: user{Principal: p, Name: u.Name, Method: "ldap"}, groups: u.Groups}, nil
}

func sameDN(a, b string) bool { return export.SameDN(a, b) }
