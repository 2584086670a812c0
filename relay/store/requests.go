package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Request states. A request is created pending (policy approval) or
// approved (policy self); an approver approves or denies a pending one;
// the gateway that holds the item claims an approved one (started), and
// records the outcome (done or failed). The requester may cancel a
// pending one.
const (
	StatePending   = "pending"
	StateApproved  = "approved"
	StateDenied    = "denied"
	StateStarted   = "started"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Request kinds: what the request is about. A release is of a
// quarantined original (Item: its release ID); an outbound request is a
// message our user sent that waits in the queue (Item: its queue ID)
// for its hold to end or an approver to decide.
const (
	KindRelease  = "release"
	KindOutbound = "outbound"
	// KindUnlock: a held password archive to open and send on (Item: the
	// original's release ID, Reason: the archive's MIME part).
	KindUnlock = "unlock"
)

// Expiry actions: what a pending request becomes at its deadline.
const (
	ExpirySend   = "send"   // approved by the clock
	ExpiryReject = "reject" // denied by the clock
)

// ExpiredBy is who decides a request at its deadline.
const ExpiredBy = "timeout"

// maxDetail bounds what a request keeps of its item for the pages.
const maxDetail = 256 << 10

// Request is one person's request for something that may need an
// approver's decision, and what became of it.
type Request struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	// Instance is the gateway that holds the item and carries the
	// request out.
	Instance string `json:"instance"`
	Item     string `json:"item"`
	// Requester is the principal (an address) who asked.
	Requester string `json:"requester"`
	// Recipients are where a release goes.
	Recipients []string `json:"recipients"`
	Reason     string   `json:"reason,omitempty"`
	// Policy is self or approval.
	Policy    string    `json:"policy"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Comment   string    `json:"comment,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	DoneAt    time.Time `json:"done_at,omitzero"`
	// Result is the queue ID the item went out as, or why it failed;
	// for a denied or cancelled outbound message, what became of it.
	Result string `json:"result,omitempty"`
	// Expires is when a pending request is decided by the clock (zero:
	// never), as OnExpiry says (ExpirySend, ExpiryReject).
	Expires  time.Time `json:"expires,omitzero"`
	OnExpiry string    `json:"on_expiry,omitempty"`
	// Group is the approval group that decides (outbound).
	Group string `json:"group,omitempty"`
	// Detail is what the pages show of the item (JSON, the kind's own).
	Detail string `json:"-"`
}

// Open reports whether the request still waits for something.
func (r Request) Open() bool {
	return r.State == StatePending || r.State == StateApproved || r.State == StateStarted
}

const requestColumns = `id, kind, instance, item, requester, recipients, reason, policy, state, created,
	decided_by, decided_at, comment, started_at, done_at, result, expires, on_expiry, grp, detail`

func scanRequest(sc scanner) (Request, error) {
	var r Request
	var rcpts string
	var created, decided, started, done, expires int64
	err := sc.Scan(&r.ID, &r.Kind, &r.Instance, &r.Item, &r.Requester, &rcpts, &r.Reason, &r.Policy, &r.State,
		&created, &r.DecidedBy, &decided, &r.Comment, &started, &done, &r.Result, &expires, &r.OnExpiry, &r.Group, &r.Detail)
	if rcpts != "" {
		r.Recipients = strings.Split(rcpts, "\n")
	}
	r.Created, r.DecidedAt, r.StartedAt, r.DoneAt = fromMicros(created), fromMicros(decided), fromMicros(started), fromMicros(done)
	r.Expires = fromMicros(expires)
	return r, err
}

// CreateRequest stores a new request and returns it with its ID. A
// request with State approved is one the policy lets through at once
// (DecidedBy and DecidedAt say so).
func (s *Store) CreateRequest(ctx context.Context, r Request) (Request, error) {
	if r.Created.IsZero() {
		r.Created = s.now()
	}
	if len(r.Detail) > maxDetail {
		return r, fmt.Errorf("store: a request's detail of %d bytes is over %d", len(r.Detail), maxDetail)
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO requests (kind, instance, item, requester, recipients, reason,
		policy, state, created, decided_by, decided_at, comment, expires, on_expiry, grp, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Kind, r.Instance, r.Item, lower(r.Requester), strings.Join(r.Recipients, "\n"), clip(r.Reason), r.Policy, r.State,
		micros(r.Created), r.DecidedBy, micros(r.DecidedAt), clip(r.Comment), micros(r.Expires), r.OnExpiry, r.Group, r.Detail).Scan(&r.ID)
	return r, err
}

// Request returns one request.
func (s *Store) Request(ctx context.Context, id int64) (Request, error) {
	r, err := scanRequest(s.db.QueryRowContext(ctx, s.q(`SELECT `+requestColumns+` FROM requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// RequestQuery selects requests, newest first.
type RequestQuery struct {
	Kind      string
	Requester string
	States    []string
	Instance  string
	Item      string
	// Groups: requests for one of these approval groups.
	Groups []string
	// Unfinished: only requests not yet carried out (DoneAt zero).
	Unfinished bool
	Limit      int // default and maximum 500
}

// Requests returns the requests that match.
func (s *Store) Requests(ctx context.Context, q RequestQuery) ([]Request, error) {
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	where, args := requestWhere(q)
	query := `SELECT ` + requestColumns + ` FROM requests` + where + ` ORDER BY created DESC, id DESC LIMIT ?`
	return queryAll(ctx, s, query, append(args, limit), scanRequest)
}

// CountRequests counts the requests q selects (its Limit aside), without
// reading them: the pages that show only how many are pending.
func (s *Store) CountRequests(ctx context.Context, q RequestQuery) (int, error) {
	where, args := requestWhere(q)
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM requests`+where), args...).Scan(&n)
	return n, err
}

// requestWhere is the WHERE clause of q (with its leading space), or "".
func requestWhere(q RequestQuery) (string, []any) {
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{{"kind", q.Kind}, {"requester", lower(q.Requester)},
		{"instance", q.Instance}, {"item", q.Item}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	for _, in := range []struct {
		col string
		v   []string
	}{{"state", q.States}, {"grp", q.Groups}} {
		if len(in.v) > 0 {
			where = append(where, in.col+` IN (`+placeholders(len(in.v))+`)`)
			for _, v := range in.v {
				args = append(args, v)
			}
		}
	}
	if q.Unfinished {
		where = append(where, `done_at = 0`)
	}
	if len(where) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(where, " AND "), args
}

// Decide records an approver's decision on a pending request. It returns
// ErrConflict when the request is no longer pending (decided by someone
// else, or cancelled) and ErrNotFound when there is no such request.
func (s *Store) Decide(ctx context.Context, id int64, approve bool, by, comment string) (Request, error) {
	state := StateDenied
	if approve {
		state = StateApproved
	}
	return s.transition(ctx, id, StatePending, `state = ?, decided_by = ?, decided_at = ?, comment = ?`,
		state, lower(by), micros(s.now()), clip(comment))
}

// Cancel withdraws a pending request (its requester changed their mind).
func (s *Store) Cancel(ctx context.Context, id int64, by string) (Request, error) {
	return s.transition(ctx, id, StatePending, `state = ?, decided_by = ?, decided_at = ?`,
		StateCancelled, lower(by), micros(s.now()))
}

// Start claims an approved request for carrying out: only one gateway,
// once, gets it (ErrConflict for the others).
func (s *Store) Start(ctx context.Context, id int64) (Request, error) {
	return s.transition(ctx, id, StateApproved, `state = ?, started_at = ?`, StateStarted, micros(s.now()))
}

// Finish records the outcome of a started request: done with the queue
// ID, or failed with the reason.
func (s *Store) Finish(ctx context.Context, id int64, ok bool, result string) (Request, error) {
	state := StateFailed
	if ok {
		state = StateDone
	}
	return s.transition(ctx, id, StateStarted, `state = ?, done_at = ?, result = ?`, state, micros(s.now()), clip(result))
}

// transition changes a request in state from, atomically.
func (s *Store) transition(ctx context.Context, id int64, from, set string, args ...any) (Request, error) {
	return s.update(ctx, id, set, `state = ?`, append(args, from)...)
}

// update changes a request where cond holds, atomically; args fill set's
// placeholders, then cond's.
func (s *Store) update(ctx context.Context, id int64, set, cond string, args ...any) (Request, error) {
	split := len(args) - strings.Count(cond, "?")
	all := make([]any, 0, len(args)+1)
	all = append(append(append(all, args[:split]...), id), args[split:]...)
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE requests SET `+set+` WHERE id = ? AND `+cond), all...)
	if err != nil {
		return Request{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Request{}, err
	}
	r, gerr := s.Request(ctx, id)
	if gerr != nil {
		return r, gerr
	}
	if n == 0 {
		return r, ErrConflict
	}
	return r, nil
}

// PruneRequests removes finished requests older than before; a denied
// or cancelled outbound message whose gateway has not yet removed it
// stays.
func (s *Store) PruneRequests(ctx context.Context, before time.Time) (int64, error) {
	return s.pruneBatches(ctx, `DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE created < ?
		AND state IN ('denied', 'done', 'failed', 'cancelled') AND (kind <> 'outbound' OR state IN ('done', 'failed') OR done_at <> 0)
		LIMIT ?)`, micros(before))
}

// Expired lists the pending requests of a kind held by instance whose
// deadline has come.
func (s *Store) Expired(ctx context.Context, kind, instance string, now time.Time) ([]Request, error) {
	return queryAll(ctx, s, `SELECT `+requestColumns+` FROM requests WHERE state = ? AND kind = ? AND instance = ?
		AND expires <> 0 AND expires <= ? ORDER BY expires LIMIT 500`, []any{StatePending, kind, instance, micros(now)}, scanRequest)
}

// NextExpiry returns the earliest deadline of instance's pending
// requests; zero when none has one.
func (s *Store) NextExpiry(ctx context.Context, instance string) (time.Time, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT MIN(expires) FROM requests WHERE state = ? AND instance = ? AND expires <> 0`),
		StatePending, instance).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, err
	}
	return fromMicros(v.Int64), nil
}

// Expire decides a pending request at its deadline, as its OnExpiry
// says; ErrConflict when someone decided it first.
func (s *Store) Expire(ctx context.Context, r Request) (Request, error) {
	approve := r.OnExpiry == ExpirySend
	comment := "the deadline passed"
	return s.Decide(ctx, r.ID, approve, ExpiredBy, comment)
}

// ClaimClosed claims a denied or cancelled request whose item the
// holding gateway must still dispose of (an outbound message to remove):
// once, for one gateway (ErrConflict for the others, and when it was
// claimed before).
func (s *Store) ClaimClosed(ctx context.Context, id int64) (Request, error) {
	return s.update(ctx, id, `started_at = ?`, `state IN ('denied', 'cancelled') AND started_at = 0`, micros(s.now()))
}

// FinishClosed records what became of a claimed denied or cancelled
// request's item.
func (s *Store) FinishClosed(ctx context.Context, id int64, result string) (Request, error) {
	return s.update(ctx, id, `done_at = ?, result = ?`, `state IN ('denied', 'cancelled') AND done_at = 0`, micros(s.now()), clip(result))
}
