// Package auth owns SMTP AUTH on the gateway: the PLAIN, LOGIN and CRAM-MD5
// SASL servers (go-sasl), the schemes account secrets are stored in, and the
// lockout after repeated failures.
//
// # Secrets
//
// Account.Secret (accounts directory or configuration) is "{SCHEME}value",
// or an indirection to one: "file:/absolute/path" (the file holds the
// secret; a trailing newline is ignored; read at each login, so it can be
// replaced without a reload) or "env:VARIABLE". Schemes:
//
//   - {SHA512-CRYPT}$6$rounds=N$salt$hash: the crypt(3) SHA-512 hash, as
//     written by Dovecot (doveadm pw -s SHA512-CRYPT), mkpasswd -m sha-512
//     and openssl passwd -6. The recommended scheme; HashPassword writes it
//     with 100000 rounds. It serves PLAIN and LOGIN only.
//   - {CRAM-MD5}64 hex digits (also {HMAC-MD5}): the HMAC-MD5 key schedule
//     of the password, Dovecot's format, so doveadm pw -s CRAM-MD5 output
//     can be copied as it is. CRAM-MD5 computes HMAC-MD5(password,
//     challenge); HMAC first hashes one block of (password XOR ipad) and one
//     of (password XOR opad), and only the MD5 chaining values after those
//     two blocks are needed later. Those 2 x 16 bytes are stored instead of
//     the password (outer a b c d, then inner a b c d, each word
//     little-endian): crypto/md5 digests implement encoding.BinaryMarshaler,
//     so a digest is resumed from them. The value serves CRAM-MD5, PLAIN and
//     LOGIN. It is password-equivalent for CRAM-MD5 and cheap to attack
//     (one MD5 block per guess), so keep it only for accounts whose clients
//     insist on CRAM-MD5.
//   - {PLAIN}password: the password itself, for tests. A stolen directory
//     file then gives away every password, which the users also use on the
//     inner server; do not use it in production. HashPassword refuses it.
//
// # Replies
//
// A wrong password, an unknown or disabled user and a malformed response
// all answer 535 5.7.8 (errAuthFailed); the protocol turns any other error
// into 454. A client network (IPv6: its /64) or a user name with MaxFailures
// failures within FailureWindow is locked for LockoutTime and answered 454
// 4.7.0 "too many failures, try again later", even with the right password,
// so guessing stops. Locking a user can be abused to keep its owner out for
// LockoutTime; the client-network lock limits how fast that can be done.
// Secrets that cannot be read (file:, env:) answer 454 4.7.0 and do not count
// as failures.
//
// Whether AUTH is offered on a connection at all (TLS, allow_insecure,
// the listener's require_tls) is the policy's decision
// (relay/policy.AuthOffered), made once per session from its snapshot;
// this package only knows which mechanisms exist and how to run them.
package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// Mechanism names.
const (
	MechPlain   = "PLAIN"
	MechLogin   = "LOGIN"
	MechCRAMMD5 = "CRAM-MD5"
)

// Config is the SMTP AUTH section (embedded by relay).
type Config struct {
	// Mechanisms offered, in order: PLAIN, LOGIN, CRAM-MD5. Empty: no AUTH.
	Mechanisms []string `koanf:"mechanisms"`
	// AllowInsecure offers AUTH on connections without TLS.
	AllowInsecure bool `koanf:"allow_insecure"`
	// MaxFailures within FailureWindow lock the client network or the user
	// name for LockoutTime. 0 disables the lockout.
	MaxFailures   int           `koanf:"max_failures"`
	FailureWindow time.Duration `koanf:"failure_window"`
	LockoutTime   time.Duration `koanf:"lockout_time"`
}

// DefaultConfig offers PLAIN and LOGIN under TLS and locks after 5 failures
// in 10 minutes for 30 minutes. CRAM-MD5 is off: it needs a
// password-equivalent secret.
func DefaultConfig() Config {
	return Config{
		Mechanisms:    []string{MechPlain, MechLogin},
		MaxFailures:   5,
		FailureWindow: 10 * time.Minute,
		LockoutTime:   30 * time.Minute,
	}
}

// Validate reports every problem; each message starts with its key path
// relative to the section.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, m := range c.Mechanisms {
		u := strings.ToUpper(m)
		switch u {
		case MechPlain, MechLogin, MechCRAMMD5:
		default:
			errs = append(errs, fmt.Errorf("mechanisms[%d]: %q is not a mechanism (PLAIN, LOGIN, CRAM-MD5)", i, m))
			continue
		}
		if j, dup := seen[u]; dup {
			errs = append(errs, fmt.Errorf("mechanisms[%d]: %s is already mechanisms[%d]", i, u, j))
		}
		seen[u] = i
	}
	if c.MaxFailures < 0 {
		errs = append(errs, fmt.Errorf("max_failures: %d is negative (0 disables the lockout)", c.MaxFailures))
	}
	if c.MaxFailures > 0 {
		if c.FailureWindow <= 0 {
			errs = append(errs, fmt.Errorf("failure_window: must be positive when max_failures is set"))
		}
		if c.LockoutTime <= 0 {
			errs = append(errs, fmt.Errorf("lockout_time: must be positive when max_failures is set"))
		}
	}
	return errors.Join(errs...)
}

var (
	errLocked      = &smtpd.Reply{Code: 454, Enhanced: "4.7.0", Text: "Too many authentication failures, try again later"}
	errTemporary   = &smtpd.Reply{Code: 454, Enhanced: "4.7.0", Text: "Temporary authentication failure"}
	errAuthFailed  = &smtpd.Reply{Code: 535, Enhanced: "5.7.8", Text: "Authentication failed"}
	errUnknownMech = &smtpd.Reply{Code: 504, Enhanced: "5.5.4", Text: "Unsupported authentication mechanism"}
)

// Authenticator verifies SMTP AUTH against the accounts directory. It is
// safe for concurrent use; its lockout state lives as long as it does, so
// keep one across configuration reloads when the lockout settings do not
// change.
type Authenticator struct {
	// OnFailure, if set before use, receives every failed or refused
	// attempt with its reason, for the log. user may be "".
	OnFailure func(ip netip.Addr, user, reason string)

	cfg      Config
	mechs    []string
	dir      func() *accounts.Directory
	hostname string
	now      func() time.Time
	// challenge makes a CRAM-MD5 challenge; replaced in tests.
	challenge func() ([]byte, error)
	clients   *failureTable
	users     *failureTable
}

// NewAuthenticator returns an Authenticator for a validated cfg. dir gives
// the current directory; hostname goes into CRAM-MD5 challenges.
func NewAuthenticator(cfg Config, dir func() *accounts.Directory, hostname string) *Authenticator {
	a := &Authenticator{
		cfg:      cfg,
		dir:      dir,
		hostname: challengeHost(hostname),
		now:      time.Now,
		clients:  newFailureTable(maxTracked),
		users:    newFailureTable(maxTracked),
	}
	a.challenge = a.randomChallenge
	for _, m := range cfg.Mechanisms {
		a.mechs = append(a.mechs, strings.ToUpper(m))
	}
	return a
}

func challengeHost(h string) string {
	if h == "" {
		return "localhost"
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "localhost"
		}
	}
	return h
}

// Mechanisms lists the configured mechanisms, to advertise where the
// policy offers AUTH.
func (a *Authenticator) Mechanisms() []string {
	return append([]string(nil), a.mechs...)
}

// Server starts one AUTH exchange for a client. onSuccess receives the
// account address (canonical, as in the directory) once the client is
// authenticated. Errors are *smtpd.Reply, the reply the client gets.
func (a *Authenticator) Server(mech string, clientIP netip.Addr, onSuccess func(user string)) (sasl.Server, error) {
	m := strings.ToUpper(mech)
	enabled := false
	for _, e := range a.mechs {
		enabled = enabled || e == m
	}
	if !enabled {
		return nil, errUnknownMech
	}
	s := &session{a: a, ip: clientIP, key: clientKey(clientIP), onSuccess: onSuccess}
	if a.lockoutOn() && a.clients.locked(s.key, a.now()) {
		a.report(clientIP, "", "client locked out")
		return nil, errLocked
	}
	switch m {
	case MechPlain:
		return &plainServer{s: s, inner: sasl.NewPlainServer(s.plain)}, nil
	case MechLogin:
		return &loginServer{s: s}, nil
	}
	return &cramServer{s: s}, nil
}

func (a *Authenticator) lockoutOn() bool { return a.cfg.MaxFailures > 0 }

func (a *Authenticator) report(ip netip.Addr, user, reason string) {
	if a.OnFailure != nil {
		a.OnFailure(ip, user, reason)
	}
}

// session is one AUTH exchange.
type session struct {
	a         *Authenticator
	ip        netip.Addr
	key       string
	onSuccess func(string)
}

// userKey folds ASCII case: Taro@City.JP and taro@city.jp share a lockout.
func userKey(u string) string { return strings.ToLower(u) }

// fail counts a failure for the client and, if known, the user name.
func (s *session) fail(user, reason string) error {
	a := s.a
	if a.lockoutOn() {
		now := a.now()
		if a.clients.fail(s.key, now, a.cfg.MaxFailures, a.cfg.FailureWindow, a.cfg.LockoutTime) {
			reason += "; client network " + s.key + " now locked out"
		}
		if user != "" && a.users.fail(userKey(user), now, a.cfg.MaxFailures, a.cfg.FailureWindow, a.cfg.LockoutTime) {
			reason += "; user now locked out"
		}
	}
	a.report(s.ip, user, reason)
	return errAuthFailed
}

// locked reports (and logs) whether the client, or user when given, is
// locked out.
func (s *session) locked(user string) bool {
	a := s.a
	if !a.lockoutOn() {
		return false
	}
	now := a.now()
	if a.clients.locked(s.key, now) || user != "" && a.users.locked(userKey(user), now) {
		a.report(s.ip, user, "locked out")
		return true
	}
	return false
}

// finish looks the user up and runs check against its secret.
func (s *session) finish(user string, check func(secret) (bool, error)) error {
	a := s.a
	if s.locked(user) {
		return errLocked
	}
	d := a.dir()
	if d == nil {
		a.report(s.ip, user, "accounts directory not loaded")
		return errTemporary
	}
	acct := d.Account(user)
	if acct == nil || acct.Flags&accounts.Disabled != 0 || acct.Secret == "" {
		check(dummySecret()) // the same work as for a real user: no timing hint
		why := "no such account"
		if acct != nil && acct.Secret == "" {
			why = "account has no secret"
		} else if acct != nil {
			why = "account disabled"
		}
		return s.fail(user, why)
	}
	sec, err := resolveSecret(acct.Secret)
	if errors.Is(err, errSecretIO) {
		a.report(s.ip, user, err.Error())
		return errTemporary
	}
	if err != nil {
		a.report(s.ip, user, "unusable secret: "+err.Error())
		return errAuthFailed
	}
	ok, err := check(sec)
	if err != nil {
		a.report(s.ip, user, err.Error())
		return errAuthFailed
	}
	if !ok {
		return s.fail(user, "wrong password")
	}
	a.users.reset(userKey(user))
	if s.onSuccess != nil {
		s.onSuccess(acct.Address())
	}
	return nil
}

// plain is go-sasl's PlainAuthenticator.
func (s *session) plain(identity, user, password string) error {
	if err := checkUsername(user); err != nil {
		return s.fail("", err.Error())
	}
	if identity != "" && identity != user {
		return s.fail(user, "authorization identity "+identity+" differs from the user (not supported)")
	}
	return s.finish(user, func(sec secret) (bool, error) { return sec.verifyPassword(password) })
}

// plainServer maps go-sasl's plain errors (a malformed response) to 535.
type plainServer struct {
	s     *session
	inner sasl.Server
}

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := p.inner.Next(resp)
	if err != nil {
		if _, ok := err.(*smtpd.Reply); !ok {
			return nil, true, p.s.fail("", "malformed PLAIN response: "+err.Error())
		}
	}
	return ch, done, err
}

var (
	dummyOnce sync.Once
	dummy     secret
)

// dummySecret is checked for unknown users so that they cost as much time
// as known ones.
func dummySecret() secret {
	dummyOnce.Do(func() {
		dummy = secret{scheme: SchemeSHA512Crypt, value: sha512Crypt("sekisho-dummy", "sekishodummysalt", sha512HashRounds, true)}
	})
	return dummy
}
