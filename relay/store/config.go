package store

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the `relay.store` section: where the console's records and the
// message trace are kept.
type Config struct {
	// Driver is sqlite (a file in the gateway's folder) or postgres (one
	// database several gateways share). Empty: sqlite when the console is
	// on, otherwise no store at all.
	Driver string `koanf:"driver"`
	// Path is the SQLite file (driver sqlite).
	Path string `koanf:"path"`
	// DSN is the PostgreSQL connection string (driver postgres), e.g.
	// "postgres://sekisho@db.city.local/sekisho?sslmode=verify-full"; a
	// password belongs in PGPASSWORD or ~/.pgpass, not here.
	DSN string `koanf:"dsn"`
	// Instance names this gateway in a shared store: its events and
	// quarantine index carry it, and it carries out the releases of the
	// originals it holds. Empty: relay.hostname.
	Instance string `koanf:"instance"`
	// Buffer is how many trace events wait for the store (a receive
	// line makes one per recipient); past it they are dropped (and
	// counted), never mail delayed.
	Buffer int `koanf:"buffer"`
	// TraceRetention is how long trace events are kept.
	TraceRetention time.Duration `koanf:"trace_retention"`
	// AuditRetention is how long audit records, finished requests and
	// their decisions are kept.
	AuditRetention time.Duration `koanf:"audit_retention"`
}

// DefaultConfig keeps the SQLite file beside the quarantine, trace events
// 30 days and audit records 400 days (a fiscal year and its audit).
func DefaultConfig() Config {
	return Config{
		Path:           "/var/lib/sekisho/sekisho.db",
		Buffer:         16384,
		TraceRetention: 30 * 24 * time.Hour,
		AuditRetention: 400 * 24 * time.Hour,
	}
}

// Resolve makes the SQLite path relative to base.
func (c *Config) Resolve(base string) {
	if c.Path != "" && !filepath.IsAbs(c.Path) {
		c.Path = filepath.Join(base, c.Path)
	}
}

// Validate reports every problem, keys relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch c.Driver {
	case "":
	case DriverSQLite:
		if c.Path == "" {
			bad("path", "required for the sqlite driver")
		}
		if c.DSN != "" {
			bad("dsn", "is for the postgres driver; sqlite uses path")
		}
	case DriverPostgres:
		if c.DSN == "" {
			bad("dsn", "required for the postgres driver (postgres://user@host/dbname)")
		} else if err := checkDSN(c.DSN); err != nil {
			bad("dsn", "%v", err)
		}
	default:
		bad("driver", "%q is not a driver (sqlite, postgres)", c.Driver)
	}
	if strings.ContainsAny(c.Instance, " \t\r\n/") {
		bad("instance", "%q: a gateway name has no spaces or slashes", c.Instance)
	}
	if c.Buffer < 64 || c.Buffer > MaxBatch {
		bad("buffer", "must be 64 to %d events, got %d", MaxBatch, c.Buffer)
	}
	if c.TraceRetention < time.Hour {
		bad("trace_retention", "must be at least 1h, got %v", c.TraceRetention)
	}
	if c.AuditRetention < 24*time.Hour {
		bad("audit_retention", "must be at least 1d, got %v", c.AuditRetention)
	}
	return errors.Join(errs...)
}

// On reports whether a store is used: a driver is named (the command
// names sqlite for a console that names none).
func (c Config) On() bool { return c.Driver != "" }

// checkDSN accepts the URL form and the key=value form of libpq, and
// refuses a password written into either: the file is readable by every
// administrator and shown by config check.
func checkDSN(dsn string) error {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return fmt.Errorf("not a URL: %v", err)
		}
		if _, ok := u.User.Password(); ok {
			return errors.New("holds a password: put it in PGPASSWORD or ~/.pgpass (PGPASSFILE)")
		}
		if u.Query().Has("password") {
			return errors.New("holds a password: put it in PGPASSWORD or ~/.pgpass (PGPASSFILE)")
		}
		return nil
	}
	for _, f := range strings.Fields(dsn) {
		k, _, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is neither a postgres:// URL nor key=value pairs", dsn)
		}
		if k == "password" {
			return errors.New("holds a password: put it in PGPASSWORD or ~/.pgpass (PGPASSFILE)")
		}
	}
	return nil
}

// redactedDSN is the DSN for messages (it holds no password: Validate).
func redactedDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + u.Path
	}
	return "postgres"
}
