package store

import (
	"context"
	"fmt"
	"strings"
)

// migrations are applied in order, each once, each in its own
// transaction with the version bump. Never edit one that has shipped:
// add the next. {{serial}} is the engine's auto-increment primary key,
// {{blob}} its type for bytes.
//
// The event indexes are partial: most events are delivery attempts,
// which are found through their message's queue ID, so only the steps
// that introduce a message (received, refused, a DSN, a release) are
// indexed by address, and empty columns not at all. Each insert then
// updates a few indexes, not nine. SQLite uses a partial index only when
// the query repeats its condition word for word: the queries below do
// (see entryKinds and the "<> ”" terms).
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE events (
		id {{serial}},
		instance TEXT NOT NULL,
		at BIGINT NOT NULL,
		kind TEXT NOT NULL,
		queue_id TEXT NOT NULL DEFAULT '',
		ref TEXT NOT NULL DEFAULT '',
		session TEXT NOT NULL DEFAULT '',
		client TEXT NOT NULL DEFAULT '',
		sender TEXT NOT NULL DEFAULT '',
		rcpt TEXT NOT NULL DEFAULT '',
		message_id TEXT NOT NULL DEFAULT '',
		result TEXT NOT NULL DEFAULT '',
		rule TEXT NOT NULL DEFAULT '',
		code INTEGER NOT NULL DEFAULT 0,
		detail TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX events_at ON events (at);
	CREATE INDEX events_queue_id ON events (queue_id) WHERE queue_id <> '';
	CREATE INDEX events_ref ON events (ref) WHERE ref <> '';
	CREATE INDEX events_session ON events (session, at) WHERE session <> '';
	CREATE INDEX events_message_id ON events (message_id) WHERE message_id <> '';
	CREATE INDEX events_client ON events (client, at) WHERE client <> '';
	CREATE INDEX events_sender ON events (sender, at) WHERE kind IN ('receive', 'reject', 'dsn', 'release');
	CREATE INDEX events_rcpt ON events (rcpt, at) WHERE kind IN ('receive', 'reject', 'dsn', 'release');

	CREATE TABLE quarantine (
		instance TEXT NOT NULL,
		id TEXT NOT NULL,
		stored BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		sender TEXT NOT NULL,
		header_from TEXT NOT NULL DEFAULT '',
		rcpts TEXT NOT NULL,
		subject TEXT NOT NULL DEFAULT '',
		route TEXT NOT NULL DEFAULT '',
		client TEXT NOT NULL DEFAULT '',
		size BIGINT NOT NULL DEFAULT 0,
		report TEXT NOT NULL DEFAULT '',
		text TEXT NOT NULL DEFAULT '',
		released INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (instance, id)
	);
	CREATE INDEX quarantine_stored ON quarantine (stored);
	CREATE TABLE quarantine_rcpts (
		instance TEXT NOT NULL,
		id TEXT NOT NULL,
		rcpt TEXT NOT NULL,
		stored BIGINT NOT NULL,
		PRIMARY KEY (instance, id, rcpt)
	);
	CREATE INDEX quarantine_rcpts_rcpt ON quarantine_rcpts (rcpt, stored);

	CREATE TABLE requests (
		id {{serial}},
		kind TEXT NOT NULL,
		instance TEXT NOT NULL,
		item TEXT NOT NULL,
		requester TEXT NOT NULL,
		recipients TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		policy TEXT NOT NULL,
		state TEXT NOT NULL,
		created BIGINT NOT NULL,
		decided_by TEXT NOT NULL DEFAULT '',
		decided_at BIGINT NOT NULL DEFAULT 0,
		comment TEXT NOT NULL DEFAULT '',
		started_at BIGINT NOT NULL DEFAULT 0,
		done_at BIGINT NOT NULL DEFAULT 0,
		result TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX requests_state ON requests (state, instance, kind);
	CREATE INDEX requests_requester ON requests (requester, created);
	CREATE INDEX requests_item ON requests (instance, item);

	CREATE TABLE audit (
		id {{serial}},
		at BIGINT NOT NULL,
		instance TEXT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		object TEXT NOT NULL DEFAULT '',
		detail TEXT NOT NULL DEFAULT '',
		client TEXT NOT NULL DEFAULT '',
		ok INTEGER NOT NULL DEFAULT 1
	);
	CREATE INDEX audit_at ON audit (at);
	CREATE INDEX audit_object ON audit (object);
	CREATE INDEX audit_actor ON audit (actor, at);

	CREATE TABLE sessions (
		id TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		name TEXT NOT NULL DEFAULT '',
		roles TEXT NOT NULL DEFAULT '',
		method TEXT NOT NULL DEFAULT '',
		csrf TEXT NOT NULL,
		client TEXT NOT NULL DEFAULT '',
		created BIGINT NOT NULL,
		last_seen BIGINT NOT NULL,
		expires BIGINT NOT NULL
	);
	CREATE INDEX sessions_principal ON sessions (principal);
	CREATE INDEX sessions_expires ON sessions (expires);

	CREATE TABLE settings (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);`,
	// 2: held outbound mail (relay.outbound): a request's deadline and
	// what happens then, the approval group, and what the approver is
	// shown of the message (the holding gateway's queue is not the
	// console's to read).
	`ALTER TABLE requests ADD COLUMN expires BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE requests ADD COLUMN on_expiry TEXT NOT NULL DEFAULT '';
	ALTER TABLE requests ADD COLUMN grp TEXT NOT NULL DEFAULT '';
	ALTER TABLE requests ADD COLUMN detail TEXT NOT NULL DEFAULT '';
	CREATE INDEX requests_grp ON requests (grp, state) WHERE grp <> ''`,
	// 3: the attempts at opening a held password archive.
	`CREATE TABLE unlocks (
		instance TEXT NOT NULL,
		id TEXT NOT NULL,
		part TEXT NOT NULL,
		failures INTEGER NOT NULL DEFAULT 0,
		opened BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (instance, id, part)
	);`,
	// 4: trace events arrive here, packed a batch a row, and move to
	// events when the gateway is not in a flood (see pending.go).
	`CREATE TABLE events_pending (
		id {{serial}},
		instance TEXT NOT NULL,
		first_at BIGINT NOT NULL,
		last_at BIGINT NOT NULL,
		n INTEGER NOT NULL,
		data {{blob}} NOT NULL
	);
	CREATE INDEX events_pending_instance ON events_pending (instance, id);
	CREATE INDEX events_pending_last_at ON events_pending (last_at);`,
}

// migrate brings the schema up to date. On PostgreSQL an advisory lock
// makes gateways that start together take turns.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

// migrationLock is the PostgreSQL advisory lock key of the migrations
// ("sekisho" in ASCII).
const migrationLock = 0x73656b6973686f

// migrateOne applies the next migration, if any, and reports whether
// there was none left.
func (s *Store) migrateOne(ctx context.Context) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return false, err
		}
	}
	// Under the lock: two gateways creating the table at once would
	// collide even with IF NOT EXISTS.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return false, fmt.Errorf("schema_version: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return false, err
	}
	if v > len(migrations) {
		return false, fmt.Errorf("the database has schema version %d; this sekisho knows %d: it is newer than this binary", v, len(migrations))
	}
	if v == len(migrations) {
		return true, tx.Commit()
	}
	serial, blob := "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"
	if s.postgres {
		serial, blob = "BIGSERIAL PRIMARY KEY", "BYTEA"
	}
	text := strings.NewReplacer("{{serial}}", serial, "{{blob}}", blob).Replace(migrations[v])
	for _, stmt := range strings.Split(text, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
		return false, err
	}
	return false, tx.Commit()
}
