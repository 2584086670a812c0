package auth

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// challenges "Username:" and "Password:", each answered with the value. An
// initial response is the user name (AUTH LOGIN dGFybw==, as Windows
// clients send it), which skips the first challenge.
type loginServer struct {
	s    *session
	user string
	step loginStep
}

type loginStep uint8

const (
	loginStart loginStep = iota
	loginWantUser
	loginWantPassword
	loginDone
)

var (
	challengeUsername = []byte("Username:")
	challengePassword = []byte("Password:")
)

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case loginStart:
		if resp == nil {
			l.step = loginWantUser
			return challengeUsername, false, nil
		}
		l.user, l.step = string(resp), loginWantPassword
		return challengePassword, false, nil
	case loginWantUser:
		l.user, l.step = string(resp), loginWantPassword
		return challengePassword, false, nil
	case loginWantPassword:
		l.step = loginDone
		if err := checkUsername(l.user); err != nil {
			return nil, true, l.s.fail("", err.Error())
		}
		password := string(resp)
		return nil, true, l.s.finish(l.user, func(sec secret) (bool, error) { return sec.verifyPassword(password) })
	}
	return nil, true, errAuthFailed
}
