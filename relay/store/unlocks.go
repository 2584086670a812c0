package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// A password archive held by the sanitize stage (relay.sanitize
// reconstruct.encrypted: unlock) is opened by its recipient typing the
// password in the console. Wrong passwords are counted here, in the
// store every gateway and console shares, like sign-in failures: past
// the limit the archive is locked until an administrator unlocks it.

// ErrLocked is returned for an archive that has had too many wrong
// passwords.
var ErrLocked = errors.New("store: locked after too many wrong passwords")

// Unlock is the state of one held archive: the original inst/id, the
// MIME part part.
type Unlock struct {
	Failures int
	Opened   time.Time // zero until the right password was given
}

// UnlockState returns the archive's state (zero when never tried).
func (s *Store) UnlockState(ctx context.Context, inst, id, part string) (Unlock, error) {
	var u Unlock
	var opened int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT failures, opened FROM unlocks WHERE instance = ? AND id = ? AND part = ?`),
		inst, id, part).Scan(&u.Failures, &opened)
	if errors.Is(err, sql.ErrNoRows) {
		return Unlock{}, nil
	}
	u.Opened = fromMicros(opened)
	return u, err
}

// UnlockTry counts an attempt before the password is tried, as a
// failure, so that attempts at once cannot get past the limit between
// the check and the count; UnlockDone takes it back when the password
// was right. It returns ErrLocked, counting nothing, once max failures
// are counted.
func (s *Store) UnlockTry(ctx context.Context, inst, id, part string, max int) (failures int, err error) {
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO unlocks (instance, id, part) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
		inst, id, part); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE unlocks SET failures = failures + 1 WHERE instance = ? AND id = ? AND part = ? AND failures < ?`),
		inst, id, part, max)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	u, err := s.UnlockState(ctx, inst, id, part)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return u.Failures, ErrLocked
	}
	return u.Failures, nil
}

// UnlockDone takes back the attempt UnlockTry counted: the password was
// right (opened: the archive is marked opened), or the attempt failed
// for a reason of ours, not the password's.
func (s *Store) UnlockDone(ctx context.Context, inst, id, part string, opened bool) error {
	if !opened {
		_, err := s.db.ExecContext(ctx, s.q(`UPDATE unlocks SET failures = failures - 1 WHERE instance = ? AND id = ? AND part = ? AND failures > 0`),
			inst, id, part)
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE unlocks SET failures = failures - 1, opened = ? WHERE instance = ? AND id = ? AND part = ? AND failures > 0`),
		micros(s.now()), inst, id, part)
	return err
}

// UnlockReset clears the failures: an administrator unlocking a locked
// archive.
func (s *Store) UnlockReset(ctx context.Context, inst, id, part string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE unlocks SET failures = 0 WHERE instance = ? AND id = ? AND part = ?`), inst, id, part)
	return err
}
