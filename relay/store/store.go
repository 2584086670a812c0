// Package store keeps the console's records and the message trace through
// database/sql: trace events, the quarantine index, requests and their
// decisions, audit records and sign-in sessions, with schema migrations.
//
// Two engines: SQLite (modernc.org/sqlite, pure Go) in a file beside the
// gateway's other folders, and PostgreSQL (jackc/pgx) where several
// gateways share one console. Every query is written once, with `?`
// placeholders, in the SQL both understand; rebind turns them into `$n` for
// PostgreSQL. Times are stored as Unix microseconds (BIGINT), addresses in
// lower case, so that comparisons and indexes behave the same on both.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Store is one open database. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	postgres bool
	// instance is this gateway's name; records it writes carry it.
	instance string
	now      func() time.Time
}

// ErrNotFound is returned for a record that does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a change lost a race: the record was
// changed by someone else first (a request already decided).
var ErrConflict = errors.New("store: changed by someone else")

// Open opens the database of c (driver "" meaning sqlite), applies the
// migrations it lacks and returns the store. instance names this gateway.
func Open(ctx context.Context, c Config, instance string) (*Store, error) {
	var db *sql.DB
	var err error
	s := &Store{instance: instance, now: time.Now}
	switch c.Driver {
	case "", DriverSQLite:
		if err := os.MkdirAll(filepath.Dir(c.Path), 0o750); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if err := privateFiles(c.Path); err != nil {
			return nil, fmt.Errorf("store %s: %w", c.Path, err)
		}
		// WAL lets the console read while the event writer writes;
		// synchronous=NORMAL keeps a committed batch across a crash of the
		// process (not of the machine: a trace is not mail); busy_timeout
		// waits for the other writer instead of failing.
		dsn := "file:" + c.Path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
			"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
		db, err = sql.Open("sqlite", dsn)
		if err == nil {
			// One writer at a time is SQLite's rule; a small pool lets
			// readers go on beside it.
			db.SetMaxOpenConns(4)
		}
	case DriverPostgres:
		s.postgres = true
		db, err = sql.Open("pgx", c.DSN)
		if err == nil {
			db.SetMaxOpenConns(8)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, fmt.Errorf("store: unknown driver %q", c.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.db = db
	if err := s.migrate(ctx); err != nil {
		db.Close()
		where := c.Path
		if s.postgres {
			where = redactedDSN(c.DSN)
		}
		return nil, fmt.Errorf("store %s: %w", where, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Instance is the name of the gateway this store writes for.
func (s *Store) Instance() string { return s.instance }

// Postgres reports whether the store is a shared PostgreSQL database.
func (s *Store) Postgres() bool { return s.postgres }

// SetClock replaces time.Now, for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// q rewrites a query written with ? placeholders for the engine.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	return rebind(query)
}

// rebind numbers ? placeholders as $1, $2, ... (PostgreSQL); a ? inside a
// string literal is left alone.
func rebind(query string) string {
	var b strings.Builder
	n := 0
	inString := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// micros is how a time is stored; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reads a stored time; 0 is the zero time.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v)
}

// lower folds an address for storage and comparison. Only ASCII is
// folded, as the gateway folds domains and most servers local parts.
func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// scanner is a row to scan (sql.Row or sql.Rows).
type scanner interface{ Scan(...any) error }

// queryAll runs a query (with ? placeholders) and scans every row.
func queryAll[T any](ctx context.Context, s *Store, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// privateFiles makes the database file readable by its owner alone
// before SQLite opens it: SQLite gives the -wal and -shm files it creates
// the database file's mode, and they hold the newest trace, audit and
// session rows. Files an older version left with the umask's mode are
// narrowed too.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
