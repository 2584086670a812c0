package store

import (
	"context"
	"strings"
	"time"
)

// AuditRecord is one thing a person did through the console (or that was
// done for them): a sign-in, a view of an original, a request, a
// decision, a release, a queue change.
type AuditRecord struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Instance string    `json:"instance"`
	// Actor is who did it (a principal; "-" for nobody signed in).
	Actor string `json:"actor"`
	// Action names it: signin, signout, view-original, request,
	// approve, deny, release, queue-hold, ...
	Action string `json:"action"`
	// Object is what it was done to: a release ID, a queue ID, a request
	// ("request 12").
	Object string `json:"object,omitempty"`
	Detail string `json:"detail,omitempty"`
	Client string `json:"client,omitempty"`
	OK     bool   `json:"ok"`
}

// AddAudit stores an audit record.
func (s *Store) AddAudit(ctx context.Context, r AuditRecord) error {
	if r.At.IsZero() {
		r.At = s.now()
	}
	if r.Instance == "" {
		r.Instance = s.instance
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO audit (at, instance, actor, action, object, detail, client, ok)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), micros(r.At), r.Instance, clip(lower(r.Actor)), r.Action, clip(r.Object),
		clip(r.Detail), r.Client, boolInt(r.OK))
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AuditQuery selects audit records, newest first.
type AuditQuery struct {
	Actor  string
	Object string
	Action string
	Limit  int // default and maximum 500
}

// Audit returns the records that match.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{{"actor", lower(q.Actor)}, {"object", q.Object}, {"action", q.Action}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	query := `SELECT id, at, instance, actor, action, object, detail, client, ok FROM audit`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	return queryAll(ctx, s, query, args, func(sc scanner) (AuditRecord, error) {
		var r AuditRecord
		var at int64
		var ok int
		err := sc.Scan(&r.ID, &at, &r.Instance, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Client, &ok)
		r.At, r.OK = fromMicros(at), ok != 0
		return r, err
	})
}

// PruneAudit removes audit records older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneBatches(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? LIMIT ?)`, micros(before))
}
