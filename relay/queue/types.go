package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/sekisho/sekisho/rewrite"
)

// Errors callers tell apart. ErrFull and *StorageError are temporary
// conditions: the SMTP side answers 452 4.3.1 and the client tries later.
var (
	ErrFull     = errors.New("queue: spool full")
	ErrNotFound = errors.New("queue: no such message")
	ErrFinal    = errors.New("queue: recipient already delivered or failed")
	ErrClosed   = errors.New("queue: closed")
	ErrLocked   = errors.New("queue: spool is in use by another process")
	ErrReadOnly = errors.New("queue: opened read-only")
	// ErrAlreadyQueued: Import found the salvaged message still queued.
	ErrAlreadyQueued = errors.New("queue: the message is still queued")
)

// StorageError is a failed write, fsync or file operation on the spool.
// Nothing acknowledged before it is lost; the operation that got it did not
// take effect and may be retried.
type StorageError struct {
	Op   string // "write", "fsync", "create", ...
	Path string
	Err  error
}

func (e *StorageError) Error() string {
	err := e.Err
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == e.Path {
		err = pe.Err // the path is said once
	}
	return fmt.Sprintf("queue: %s %s: %v", e.Op, e.Path, err)
}

func (e *StorageError) Unwrap() error { return e.Err }

// Temporary reports whether err means "try again later" for a new message:
// the spool is full or its disk failed. The SMTP side answers 452 4.3.1.
func Temporary(err error) bool {
	var se *StorageError
	return errors.Is(err, ErrFull) || errors.As(err, &se)
}

// Recipient is one envelope recipient.
type Recipient struct {
	Addr     string `json:"addr"`                // the address delivered to (after rewrite)
	OrigAddr string `json:"orig_addr,omitempty"` // the address as received, before rewrite
	Notify   string `json:"notify,omitempty"`    // RFC 3461 NOTIFY: "", "NEVER" or a list of SUCCESS, FAILURE, DELAY
	ORcpt    string `json:"orcpt,omitempty"`     // RFC 3461 ORCPT, as received ("rfc822;user@example.jp")
}

// Envelope is everything about a message except its bytes.
type Envelope struct {
	From       string         `json:"from"` // "" is the null sender <>
	Rcpts      []Recipient    `json:"rcpts"`
	ReceivedAt time.Time      `json:"received_at"`
	Source     rewrite.Source `json:"source"` // where the client was: inner, authenticated or internet
	ClientIP   string         `json:"client_ip,omitempty"`
	Helo       string         `json:"helo,omitempty"`
	AuthUser   string         `json:"auth_user,omitempty"`
	EnvID      string         `json:"envid,omitempty"`     // RFC 3461 ENVID
	Ret        string         `json:"ret,omitempty"`       // RFC 3461 RET: "", "FULL" or "HDRS"
	Size       int64          `json:"size"`                // the message's size in bytes, set by Enqueue from the data
	BodyType   string         `json:"body_type,omitempty"` // "7BIT" or "8BITMIME" ("" when not declared)
	SMTPUTF8   bool           `json:"smtputf8,omitempty"`
}

func (e Envelope) clone() Envelope {
	e.Rcpts = append([]Recipient(nil), e.Rcpts...)
	return e
}

// Status is where one recipient stands.
type Status uint8

// Pending recipients have not been tried yet; deferred ones wait for their
// next attempt; delivered and failed (bounced) are final.
const (
	Pending Status = iota
	Deferred
	Delivered
	Failed
)

var statusNames = [...]string{"pending", "deferred", "delivered", "failed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Final reports whether nothing more will happen to the recipient.
func (s Status) Final() bool { return s == Delivered || s == Failed }

// MarshalText makes statuses readable in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts the names String returns.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if strings.EqualFold(string(b), n) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown recipient status %q", b)
}

// RcptState is the delivery state of one recipient.
type RcptState struct {
	Status        Status    `json:"status"`
	Attempts      int       `json:"attempts"`                 // delivery attempts made
	Refusals      int       `json:"refusals,omitempty"`       // attempts answered with a 5xx reply (reason starting "5yz")
	NextAttempt   time.Time `json:"next_attempt,omitzero"`    // when deferred: the earliest next attempt
	LastError     string    `json:"last_error,omitempty"`     // the last failure, as the reply or a local description
	Updated       time.Time `json:"updated,omitzero"`         // when the state last changed
	DelayNotified bool      `json:"delay_notified,omitempty"` // a delay DSN was queued for this recipient
}

// Message is a snapshot of one queued message.
type Message struct {
	ID       ID          `json:"id"`
	Envelope Envelope    `json:"envelope"`
	Rcpts    []RcptState `json:"states"` // parallel to Envelope.Rcpts
	Held     bool        `json:"held"`
	Claimed  bool        `json:"claimed,omitempty"` // a delivery worker holds it right now
}

// Due returns the indexes of the recipients to attempt at now: pending
// ones and deferred ones whose next attempt has come.
func (m *Message) Due(now time.Time) []int {
	var out []int
	for i, st := range m.Rcpts {
		if !st.Status.Final() && !st.NextAttempt.After(now) {
			out = append(out, i)
		}
	}
	return out
}

// Mark is a recipient outcome committed in the same record as a new
// message (see EnqueueDSN), so that both survive a crash or neither does.
type Mark struct {
	Rcpt int
	// Status is Failed or Delivered (the recipient becomes final with
	// Reason as its last reply), or Deferred: the recipient keeps its state
	// and only DelayNotified is set.
	Status Status
	Reason string
}

// isRefusal reports whether a failure reason starts with a 5yz SMTP reply.
func isRefusal(reason string) bool {
	return len(reason) >= 3 && reason[0] == '5' && isDigit(reason[1]) && isDigit(reason[2]) &&
		(len(reason) == 3 || reason[3] == ' ' || reason[3] == '-')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
