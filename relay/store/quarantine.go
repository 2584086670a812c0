package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// QuarantineItem is the index entry of one original the sanitize stage
// kept: enough to list it, show what was removed and the sanitized text,
// and find the gateway (Instance) that holds the original itself.
type QuarantineItem struct {
	Instance string    `json:"instance"`
	ID       string    `json:"id"` // the release ID
	Stored   time.Time `json:"stored"`
	Expires  time.Time `json:"expires"`
	Sender   string    `json:"sender"`
	// HeaderFrom is the header's From as its recipients saw it, display
	// name decoded (text from the internet: show it as text).
	HeaderFrom string   `json:"header_from,omitempty"`
	Rcpts      []string `json:"rcpts"` // lower case
	Subject    string   `json:"subject,omitempty"`
	Route      string   `json:"route,omitempty"`
	Client     string   `json:"client,omitempty"`
	Size       int64    `json:"size"`
	// Report is what the sanitize stage did (its JSON, as kept with the
	// original); Text the sanitized body the recipient got.
	Report   string `json:"report,omitempty"`
	Text     string `json:"text,omitempty"`
	Released int    `json:"released"`
}

// HasRcpt reports whether addr is one of the item's recipients.
func (it QuarantineItem) HasRcpt(addr string) bool {
	a := lower(addr)
	for _, r := range it.Rcpts {
		if r == a {
			return true
		}
	}
	return false
}

// maxText bounds the sanitized text the index keeps of one message.
const maxText = 64 << 10

// PutQuarantine adds or replaces an index entry.
func (s *Store) PutQuarantine(ctx context.Context, it QuarantineItem) error {
	if it.Instance == "" {
		it.Instance = s.instance
	}
	text := it.Text
	if len(text) > maxText {
		text = text[:maxText]
		for len(text) > 0 && text[len(text)-1]&0xC0 == 0x80 {
			text = text[:len(text)-1]
		}
	}
	rcpts := make([]string, 0, len(it.Rcpts))
	seen := map[string]bool{}
	for _, r := range it.Rcpts {
		if r = lower(r); r != "" && !seen[r] {
			seen[r] = true
			rcpts = append(rcpts, r)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO quarantine (instance, id, stored, expires, sender, header_from, rcpts, subject,
		route, client, size, report, text, released) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance, id) DO UPDATE SET expires = excluded.expires, subject = excluded.subject,
		report = excluded.report, text = excluded.text, released = excluded.released`),
		it.Instance, it.ID, micros(it.Stored), micros(it.Expires), clip(lower(it.Sender)), clip(it.HeaderFrom), strings.Join(rcpts, "\n"),
		clip(it.Subject), it.Route, it.Client, it.Size, it.Report, text, it.Released)
	if err != nil {
		return err
	}
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO quarantine_rcpts (instance, id, rcpt, stored) VALUES (?, ?, ?, ?)
			ON CONFLICT (instance, id, rcpt) DO NOTHING`), it.Instance, it.ID, clip(r), micros(it.Stored)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// SetReleased records how often an original was released.
func (s *Store) SetReleased(ctx context.Context, instance, id string, n int) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE quarantine SET released = ? WHERE instance = ? AND id = ?`), n, instance, id)
	return err
}

// DeleteQuarantine removes an index entry (the original was purged).
func (s *Store) DeleteQuarantine(ctx context.Context, instance, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range []string{"quarantine_rcpts", "quarantine"} {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+t+` WHERE instance = ? AND id = ?`), instance, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// QuarantineIDs lists the release IDs indexed for an instance, to compare
// with the folder it holds.
func (s *Store) QuarantineIDs(ctx context.Context, instance string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM quarantine WHERE instance = ?`), instance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

const quarantineColumns = `q.instance, q.id, q.stored, q.expires, q.sender, q.header_from, q.rcpts, q.subject, q.route, q.client,
	q.size, q.report, q.text, q.released`

func scanItem(sc scanner) (QuarantineItem, error) {
	var it QuarantineItem
	var stored, expires int64
	var rcpts string
	err := sc.Scan(&it.Instance, &it.ID, &stored, &expires, &it.Sender, &it.HeaderFrom, &rcpts, &it.Subject, &it.Route, &it.Client,
		&it.Size, &it.Report, &it.Text, &it.Released)
	it.Stored, it.Expires = fromMicros(stored), fromMicros(expires)
	if rcpts != "" {
		it.Rcpts = strings.Split(rcpts, "\n")
	}
	return it, err
}

// QuarantineEntry returns one index entry.
func (s *Store) QuarantineEntry(ctx context.Context, instance, id string) (QuarantineItem, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+quarantineColumns+` FROM quarantine q WHERE q.instance = ? AND q.id = ?`), instance, id)
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return it, ErrNotFound
	}
	return it, err
}

// QuarantineQuery selects index entries, newest first.
type QuarantineQuery struct {
	Rcpt   string // only items addressed to this address
	Sender string
	ID     string
	Limit  int // default and maximum 500
	Offset int
}

// ListQuarantine returns the entries that match, newest first, without
// their text.
func (s *Store) ListQuarantine(ctx context.Context, q QuarantineQuery) ([]QuarantineItem, error) {
	var where []string
	var args []any
	from := `quarantine q`
	if q.Rcpt != "" {
		from = `quarantine_rcpts r JOIN quarantine q ON q.instance = r.instance AND q.id = r.id`
		where = append(where, `r.rcpt = ?`)
		args = append(args, lower(q.Rcpt))
	}
	if q.Sender != "" {
		where = append(where, `q.sender = ?`)
		args = append(args, lower(q.Sender))
	}
	if q.ID != "" {
		where = append(where, `q.id = ?`)
		args = append(args, strings.TrimSpace(q.ID))
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	query := `SELECT ` + strings.Replace(quarantineColumns, "q.text", "''", 1) + ` FROM ` + from
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY q.stored DESC, q.id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, q.Offset)
	return queryAll(ctx, s, query, args, scanItem)
}

// CountQuarantine counts the entries of every instance.
func (s *Store) CountQuarantine(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&n)
	return n, err
}
