package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"
)

// An approver's absence (不在): while they are away, the approval mail of
// their groups goes to the groups' delegates. It is kept among the
// settings, one row per person who set one.

func absenceName(principal string) string { return "absent:" + lower(principal) }

// SetAbsence records that principal is away until then; a zero time
// records that they are back.
func (s *Store) SetAbsence(ctx context.Context, principal string, until time.Time) error {
	if until.IsZero() {
		_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM settings WHERE name = ?`), absenceName(principal))
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), absenceName(principal), strconv.FormatInt(micros(until), 10))
	return err
}

// AbsentUntil returns until when principal is away, zero when they are
// not (or their absence has ended by now).
func (s *Store) AbsentUntil(ctx context.Context, principal string) (time.Time, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE name = ?`), absenceName(principal)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, nil
	}
	until := fromMicros(n)
	if !until.After(s.now()) {
		return time.Time{}, nil
	}
	return until, nil
}
