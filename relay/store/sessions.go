package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Session is a console sign-in kept on the server: the cookie carries
// only a random token, and ID is its hash, so that a copy of the database
// gives no one a session.
type Session struct {
	ID        string    `json:"-"`
	Principal string    `json:"principal"`
	Name      string    `json:"name,omitempty"`
	Roles     []string  `json:"roles,omitempty"`
	Method    string    `json:"method"` // secret or ldap
	CSRF      string    `json:"-"`
	Client    string    `json:"client,omitempty"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	Expires   time.Time `json:"expires"`
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (id, principal, name, roles, method, csrf, client, created,
		last_seen, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), se.ID, lower(se.Principal), clip(se.Name),
		strings.Join(se.Roles, ","), se.Method, se.CSRF, se.Client, micros(se.Created), micros(se.LastSeen), micros(se.Expires))
	return err
}

// Session returns the session with this ID, ErrNotFound when there is
// none (never made, signed out, revoked or purged).
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	var se Session
	var roles string
	var created, seen, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, principal, name, roles, method, csrf, client, created, last_seen,
		expires FROM sessions WHERE id = ?`), id).Scan(&se.ID, &se.Principal, &se.Name, &roles, &se.Method, &se.CSRF,
		&se.Client, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return se, ErrNotFound
	}
	if roles != "" {
		se.Roles = strings.Split(roles, ",")
	}
	se.Created, se.LastSeen, se.Expires = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return se, err
}

// TouchSession records activity (for the idle limit).
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE sessions SET last_seen = ? WHERE id = ?`), micros(at), id)
	return err
}

// DeleteSession ends one session (sign-out, expiry).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id = ?`), id)
	return err
}

// RevokeSessions ends every session of a principal and returns how many.
func (s *Store) RevokeSessions(ctx context.Context, principal string) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE principal = ?`), lower(principal))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Sessions lists the sessions not yet expired, newest first.
func (s *Store) Sessions(ctx context.Context, now time.Time) ([]Session, error) {
	return queryAll(ctx, s, `SELECT principal, name, roles, method, client, created, last_seen, expires
		FROM sessions WHERE expires > ? ORDER BY last_seen DESC LIMIT 500`, []any{micros(now)}, func(sc scanner) (Session, error) {
		var se Session
		var roles string
		var created, seen, expires int64
		err := sc.Scan(&se.Principal, &se.Name, &roles, &se.Method, &se.Client, &created, &seen, &expires)
		if roles != "" {
			se.Roles = strings.Split(roles, ",")
		}
		se.Created, se.LastSeen, se.Expires = fromMicros(created), fromMicros(seen), fromMicros(expires)
		return se, err
	})
}

// PruneSessions removes sessions past their expiry.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires <= ?`), micros(now))
	return err
}

// Setting returns a stored setting, or makes it with make and stores it
// when there is none yet; when two gateways race, both get the one stored
// first.
func (s *Store) Setting(ctx context.Context, name string, make func() (string, error)) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	nv, err := make()
	if err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, nv); err != nil {
		return "", err
	}
	err = s.db.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v)
	return v, err
}

// SecretKey returns the 32-byte key stored as setting name (what signs
// the console's cookies, the approval links), made at random on first
// use: every gateway of a shared store signs with the same one.
func (s *Store) SecretKey(ctx context.Context, name, signs string) ([]byte, error) {
	v, err := s.Setting(ctx, name, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	})
	if err != nil {
		return nil, err
	}
	k, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("store: the setting %s holds no usable key; delete it (DELETE FROM settings WHERE name = '%s') "+
			"and a new one is made, which voids the %s signed with the old one", name, name, signs)
	}
	return k, nil
}
