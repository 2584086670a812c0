package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/store"
)

// Roles. Every signed-in person with an address is staff; administrators
// and approvers are named in the configuration.
const (
	roleAny      = ""
	roleStaff    = "staff"
	roleApprover = "approver"
	roleAdmin    = "admin"
)

// user is the person a request comes from.
type user struct {
	Principal string // lower-case address (or the LDAP login without one)
	Name      string
	Roles     []string
	Method    string
	session   string // the session's ID (hash of the token)
	CSRF      string
}

// Is reports whether the user has a role.
func (u *user) Is(role string) bool { return role == roleAny || slices.Contains(u.Roles, role) }

// Cookie names. On HTTPS the __Host- prefix binds the cookie to this
// host, path / and Secure (a sibling host cannot plant one).
func sessionCookie(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-sekisho"
	}
	return "sekisho"
}

func preCookie(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-sekisho-signin"
	}
	return "sekisho-signin"
}

// cookieKey is the key that signs cookies, kept in the store so that
// every console of a shared store accepts the others' cookies.
func (s *Server) cookieKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	k := s.key
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	st := s.eng.Store()
	if st == nil {
		return nil, errUnavailable
	}
	k, err := st.SecretKey(ctx, "console.cookie_key", "sign-ins")
	if err != nil {
		s.log.Error("console: the key that signs its cookies cannot be read", "kind", "store", "error", err)
		return nil, err
	}
	s.mu.Lock()
	s.key = k
	s.mu.Unlock()
	return k, nil
}

var errUnavailable = errors.New("the console's database is not available")

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func sign(key []byte, v string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionID is what the store keeps for a token: its hash.
func sessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: true, SameSite: http.SameSiteStrictMode})
}

// clientIP is the peer's address (the console is reached directly; a
// proxy in front would make every sign-in come from it).
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// current returns the signed-in user, or why there is none: "" (no
// cookie) or "expired".
func (s *Server) current(r *http.Request) (*user, string) {
	c, err := r.Cookie(sessionCookie(r))
	if err != nil {
		return nil, ""
	}
	token, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, ""
	}
	key, err := s.cookieKey(r.Context())
	if err != nil || !hmac.Equal([]byte(mac), []byte(sign(key, token))) {
		return nil, ""
	}
	st := s.eng.Store()
	if st == nil {
		return nil, ""
	}
	id := sessionID(token)
	se, err := st.Session(r.Context(), id)
	if err != nil {
		return nil, "expired" // signed out, revoked or purged
	}
	now := s.opt.Now()
	if now.After(se.Expires) || now.Sub(se.LastSeen) > s.cfg.IdleTimeout {
		st.DeleteSession(r.Context(), id)
		return nil, "expired"
	}
	if now.Sub(se.LastSeen) > time.Minute {
		st.TouchSession(r.Context(), id, now)
	}
	return &user{Principal: se.Principal, Name: se.Name, Roles: se.Roles, Method: se.Method, session: id, CSRF: se.CSRF}, ""
}

// auth wraps a handler for signed-in users with a role; a POST must carry
// the session's CSRF token.
func (s *Server) auth(role string, h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, why := s.current(r)
		if u == nil {
			if r.Method != http.MethodGet {
				s.fail(w, r, nil, http.StatusForbidden, "err.signin_needed")
				return
			}
			q := url.Values{"next": {r.URL.RequestURI()}}
			if why != "" {
				q.Set("why", why)
			}
			http.Redirect(w, r, "/signin?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if !u.Is(role) {
			s.fail(w, r, u, http.StatusForbidden, "err.forbidden")
			return
		}
		if r.Method == http.MethodPost {
			if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
				s.fail(w, r, u, http.StatusForbidden, "err.csrf")
				return
			}
			var got string
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
				if err := r.ParseMultipartForm(maxUpload); err == nil {
					got = r.PostFormValue("csrf")
				}
			} else {
				got = r.PostFormValue("csrf")
			}
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(u.CSRF)) != 1 {
				s.audit(r, u.Principal, "csrf-refused", r.URL.Path, "a form without this session's token", false)
				s.fail(w, r, u, http.StatusForbidden, "err.csrf")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, u)
	}
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	u, _ := s.current(r)
	switch {
	case u == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case u.Is(roleAdmin):
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	case u.Is(roleApprover):
		http.Redirect(w, r, "/approvals", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/my/quarantine", http.StatusSeeOther)
	}
}

// signinPage shows the form; a pre-session cookie and its signed twin in
// the form keep another site from signing a victim in as someone else.
func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	s.signinForm(w, r, http.StatusOK, "")
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	key, err := s.cookieKey(r.Context())
	if err != nil {
		s.fail(w, r, nil, http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	pre := randomToken(18)
	s.setCookie(w, r, preCookie(r), pre, 900)
	if msg == "" && r.URL.Query().Get("why") == "expired" {
		msg = "signin.expired"
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, nil, status, "signin", map[string]any{"Token": sign(key, "signin:"+pre), "Next": safeNext(r.FormValue("next")),
		"Message": msg, "User": r.PostFormValue("user")})
}

// safeNext keeps a redirect after sign-in on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.ContainsAny(n, "\r\n") {
		return ""
	}
	return n
}

func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	key, err := s.cookieKey(r.Context())
	st := s.eng.Store()
	if err != nil || st == nil {
		s.fail(w, r, nil, http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	pre, err := r.Cookie(preCookie(r))
	if err != nil || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(sign(key, "signin:"+pre.Value))) {
		s.audit(r, "-", "csrf-refused", "/signin", "a sign-in form without its token", false)
		s.fail(w, r, nil, http.StatusForbidden, "err.csrf")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("user"))
	password := r.PostFormValue("password")
	u, err := s.checkSignIn(r.Context(), clientIP(r), name, password)
	if err != nil {
		msg := "signin.failed"
		switch {
		case errors.Is(err, auth.ErrLocked):
			msg = "signin.locked"
		case errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, auth.ErrFailed):
			msg = "signin.unavailable"
		}
		s.audit(r, name, "signin", "", err.Error(), false)
		s.signinForm(w, r, http.StatusUnauthorized, msg)
		return
	}
	token := randomToken(32)
	now := s.opt.Now()
	se := store.Session{ID: sessionID(token), Principal: u.Principal, Name: u.Name, Roles: u.Roles, Method: u.Method,
		CSRF: randomToken(24), Client: clientIP(r).String(), Created: now, LastSeen: now, Expires: now.Add(s.cfg.SessionLifetime)}
	if err := st.CreateSession(r.Context(), se); err != nil {
		s.fail(w, r, nil, http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	s.setCookie(w, r, preCookie(r), "", -1)
	s.setCookie(w, r, sessionCookie(r), token+"."+sign(key, token), int(s.cfg.SessionLifetime/time.Second))
	s.audit(r, u.Principal, "signin", "", u.Method+" as "+strings.Join(u.Roles, ","), true)
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request, u *user) {
	if st := s.eng.Store(); st != nil {
		st.DeleteSession(r.Context(), u.session)
	}
	s.setCookie(w, r, sessionCookie(r), "", -1)
	s.audit(r, u.Principal, "signout", "", "", true)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// checkSignIn checks a name and password: an account with a secret by
// its secret (relay/auth), anyone else by an LDAP bind when configured;
// both under the AUTH lockout.
func (s *Server) checkSignIn(ctx context.Context, ip netip.Addr, name, password string) (*user, error) {
	a := s.eng.Authenticator()
	if s.ldap == nil || s.hasSecret(name) {
		acct, err := a.CheckPassword(ip, name, password)
		if err != nil {
			return nil, err
		}
		p := strings.ToLower(acct)
		u := &user{Principal: p, Method: "secret", Roles: s.roles(p, nil)}
		if ac := s.eng.Directory().Account(acct); ac != nil {
			u.Name = ac.Name
		}
		return u, nil
	}
	var lu *ldapUser
	_, err := a.CheckExternal(ip, name, func() (string, error) {
		var err error
		lu, err = s.ldap.check(ctx, name, password)
		if err != nil {
			return "", err
		}
		lu.Roles = s.roles(lu.Principal, lu.groups)
		return lu.Principal, nil
	})
	if err != nil {
		return nil, err
	}
	return &lu.user, nil
}

// hasSecret reports whether name is an account that has a secret.
func (s *Server) hasSecret(name string) bool {
	ac := s.eng.Directory().Account(name)
	return ac != nil && ac.Secret != ""
}

// roles are a principal's roles from the configuration and its LDAP
// groups.
func (s *Server) roles(principal string, groups []string) []string {
	var rs []string
	if strings.Contains(principal, "@") {
		rs = append(rs, roleStaff)
	}
	in := func(list []string) bool {
		for _, p := range list {
			if dn, ok := strings.CutPrefix(p, ldapGroupPrefix); ok {
				for _, g := range groups {
					if sameDN(g, dn) {
						return true
					}
				}
			} else if strings.EqualFold(p, principal) {
				return true
			}
		}
		return false
	}
	admin := in(s.cfg.Administrators)
	if admin || in(s.cfg.Approvers) {
		rs = append(rs, roleApprover)
	}
	if admin {
		rs = append(rs, roleAdmin)
	}
	return append(rs, s.outboundRoles(principal, groups)...)
}
