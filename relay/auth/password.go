package auth

import (
	"errors"
	"net/netip"
)

// Errors of a password check outside SMTP (the console's sign-in). They
// are the replies SMTP AUTH gives, so errors.Is tells them apart and the
// SMTP side is unchanged.
var (
	// ErrLocked: the client network or the user is locked out.
	ErrLocked error = errLocked
	// ErrFailed: wrong password, unknown or disabled user.
	ErrFailed error = errAuthFailed
	// ErrUnavailable: the secret or the directory cannot be read now.
	ErrUnavailable error = errTemporary
)

// CheckPassword verifies an account's password as PLAIN does, under the
// same lockout: failures here count towards the SMTP AUTH lockout and the
// other way round. It returns the account's canonical address.
func (a *Authenticator) CheckPassword(ip netip.Addr, user, password string) (string, error) {
	var account string
	s := &session{a: a, ip: ip, key: clientKey(ip), onSuccess: func(u string) { account = u }}
	if s.locked("") { // the client first, as the SMTP server checks it at connect
		return "", errLocked
	}
	if err := s.plain("", user, password); err != nil {
		return "", err
	}
	return account, nil
}

// CheckExternal runs a check done elsewhere (an LDAP bind) under the same
// lockout: a locked client or user is refused before check runs; a
// failure (check returns ErrFailed, possibly wrapped) counts. check
// returns the principal signed in.
func (a *Authenticator) CheckExternal(ip netip.Addr, user string, check func() (string, error)) (string, error) {
	s := &session{a: a, ip: ip, key: clientKey(ip)}
	if s.locked(user) {
		return "", errLocked
	}
	p, err := check()
	if errors.Is(err, ErrFailed) {
		return "", s.fail(user, err.Error())
	}
	if err != nil {
		a.report(ip, user, err.Error())
		return "", err
	}
	a.users.reset(userKey(user))
	return p, nil
}
