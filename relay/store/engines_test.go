package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sekisho/sekisho/relay/store/pgtest"
)

var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
	pgSeq    atomic.Int64
)

// engines runs f against a new SQLite file and a new PostgreSQL database.
func engines(t *testing.T, f func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := Open(context.Background(), Config{Driver: DriverSQLite, Path: filepath.Join(t.TempDir(), "s.db")}, "gw1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s := openPostgres(t, "gw1")
		f(t, s)
	})
}

// openPostgres opens a fresh database on the shared test server.
func openPostgres(t *testing.T, instance string) *Store {
	t.Helper()
	dsn := freshPostgres(t)
	s, err := Open(context.Background(), Config{Driver: DriverPostgres, DSN: dsn}, instance)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func freshPostgres(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() {
		pgServer, pgErr = pgtest.New()
	})
	if errors.Is(pgErr, pgtest.ErrNotInstalled) {
		t.Skip(pgErr)
	}
	if pgErr != nil {
		t.Fatalf("starting PostgreSQL: %v", pgErr)
	}
	dsn, err := pgServer.Fresh(context.Background(), fmt.Sprintf("t%d", pgSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
