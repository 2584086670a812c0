// Package quarantine owns the durable store of the originals that the
// sanitize stage changed: kept for a number of days under a release ID,
// listed, shown, released back into the queue unsanitized (with a mark only
// this store can make) and purged when they expire.
package quarantine

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/queue"
)

// Entry is what the store knows about one original.
type Entry struct {
	ID       string         `json:"id"`
	Stored   time.Time      `json:"stored"`
	Expires  time.Time      `json:"expires"`
	Envelope queue.Envelope `json:"envelope"`
	Size     int64          `json:"size"`
	Subject  string         `json:"subject,omitempty"` // decoded, for listing
	Route    string         `json:"route,omitempty"`   // the route whose rule sanitized it
	// Report is what the sanitize stage did, as it wrote it
	// (sanitize.Report in JSON); the store keeps it and does not read it.
	Report   json.RawMessage `json:"report,omitempty"`
	Releases []Release       `json:"releases,omitempty"`
}

// Release records one delivery of the original.
type Release struct {
	At      time.Time `json:"at"`
	To      []string  `json:"to"`
	QueueID string    `json:"queue_id,omitempty"`
}

// ErrNotFound is returned for an ID the store does not hold (never
// stored, purged, or mistyped).
var ErrNotFound = errors.New("quarantine: no such ID")

// Store is a quarantine folder:
//
//	<ID>.eml   the original, byte for byte
//	<ID>.json  its Entry; written after the .eml, so an entry always has its original
//	key        the secret that marks released copies (32 random bytes)
//
// A Store is safe for concurrent use by the runner's workers: each Put
// has its own ID and every file is replaced atomically.
type Store struct {
	dir       string
	retention time.Duration
	now       func() time.Time
	secret    []byte // the release mark key, read once at Open
}

// Open opens (creating it if needed) the quarantine folder.
func Open(dir string, retention time.Duration) (*Store, error) {
	if dir == "" {
		return nil, errors.New("quarantine: no folder configured")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	s := &Store{dir: dir, retention: retention, now: time.Now}
	// The key is made now, by whoever opens the store first (normally the
	// gateway at start), not in the middle of a release, and then kept.
	k, err := s.loadKey()
	if err != nil {
		return nil, err
	}
	s.secret = k
	return s, nil
}

// SetClock replaces time.Now, for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

var idRE = regexp.MustCompile(`^[0-9]{8}-[0-9a-f]{10}$`)

// NewID returns a fresh release ID: the day and 40 random bits, short
// enough to read out over the phone ("20261129-9f3a1c2e7b").
func (s *Store) NewID() string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return s.now().Format("20060102") + "-" + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the shape NewID makes; anything else is
// refused before it can name a file.
func ValidID(id string) bool { return idRE.MatchString(id) }

func (s *Store) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// Put stores an original durably: when it returns nil, the original and
// its entry survive a crash. On an error nothing is listed (a stray .eml
// left by a crash between the two writes is removed by Purge).
func (s *Store) Put(id string, env queue.Envelope, e Entry, original io.Reader) (Entry, error) {
	if !ValidID(id) {
		return Entry{}, fmt.Errorf("quarantine: invalid ID %q", id)
	}
	if _, err := os.Stat(s.path(id, ".json")); err == nil {
		return Entry{}, fmt.Errorf("quarantine: ID %s is already used", id)
	}
	var n int64
	err := safeio.WriteFileFunc(s.path(id, ".eml"), 0o600, func(w io.Writer) error {
		var err error
		n, err = io.Copy(w, original)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("quarantine: storing %s: %w", id, err)
	}
	now := s.now()
	e.ID, e.Stored, e.Expires, e.Envelope, e.Size = id, now, now.Add(s.retention), env, n
	if err := s.writeEntry(e); err != nil {
		os.Remove(s.path(id, ".eml"))
		return Entry{}, err
	}
	return e, nil
}

func (s *Store) writeEntry(e Entry) error {
	js, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := safeio.WriteFile(s.path(e.ID, ".json"), append(js, '\n'), 0o600); err != nil {
		return fmt.Errorf("quarantine: storing %s: %w", e.ID, err)
	}
	safeio.ChownLikeParent(s.path(e.ID, ".json"))
	return nil
}

// Get returns one entry.
func (s *Store) Get(id string) (Entry, error) {
	if !ValidID(id) {
		return Entry{}, fmt.Errorf("%w: %q is not a release ID (like 20261129-9f3a1c2e7b)", ErrNotFound, id)
	}
	js, err := os.ReadFile(s.path(id, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("quarantine: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(js, &e); err != nil {
		return Entry{}, fmt.Errorf("quarantine: %s: %w", s.path(id, ".json"), err)
	}
	return e, nil
}

// List returns every entry, oldest first. An unreadable entry is reported
// in the error and the rest are still returned.
func (s *Store) List() ([]Entry, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	var errs []error
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), ".json")
		if !ValidID(id) {
			continue
		}
		e, err := s.Get(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stored.Before(out[j].Stored) })
	return out, errors.Join(errs...)
}

// Open returns the original's bytes.
func (s *Store) Open(id string) (io.ReadCloser, error) {
	if _, err := s.Get(id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(id, ".eml"))
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return f, nil
}

// Delete removes one original and its entry.
func (s *Store) Delete(id string) error {
	if _, err := s.Get(id); err != nil {
		return err
	}
	// The entry goes first: an original without an entry is swept later,
	// an entry without its original would list a message that is gone.
	if err := os.Remove(s.path(id, ".json")); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := os.Remove(s.path(id, ".eml")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine: %w", err)
	}
	return safeio.SyncDir(s.dir)
}

// Purge removes every entry past its expiry, and, once they are an hour
// old, originals whose entry was never written (a crash inside Put) and
// attachments a crash left while a message was sanitized.
func (s *Store) Purge() ([]string, error) {
	now := s.now()
	list, lerr := s.List()
	var removed []string
	var errs []error
	if lerr != nil {
		errs = append(errs, lerr)
	}
	for _, e := range list {
		if now.After(e.Expires) {
			if err := s.Delete(e.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, e.ID)
		}
	}
	// Attachments held by a sanitizing pass that a crash interrupted.
	strays, _ := filepath.Glob(filepath.Join(s.dir, "sekisho-att-*"))
	for _, p := range strays {
		if fi, err := os.Stat(p); err == nil && now.Sub(fi.ModTime()) > time.Hour {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	emls, _ := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	for _, p := range emls {
		id := strings.TrimSuffix(filepath.Base(p), ".eml")
		if _, err := os.Stat(s.path(id, ".json")); err == nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && now.Sub(fi.ModTime()) > time.Hour {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// HeaderReleased marks a released original. Its value is the release ID
// and an HMAC, under the store's secret key, of the ID and the original's
// SHA-256: it cannot be forged from outside, nor moved onto other content.
const HeaderReleased = "X-Sekisho-Released"

func (s *Store) loadKey() ([]byte, error) {
	p := filepath.Join(s.dir, "key")
	k, err := os.ReadFile(p)
	if err == nil && len(k) == 32 {
		return k, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := safeio.WriteFile(p, k, 0o600); err != nil {
		return nil, fmt.Errorf("quarantine: writing its key: %w", err)
	}
	safeio.ChownLikeParent(p)
	return k, nil
}

func mark(key []byte, id string, sum []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\n"))
	m.Write(sum)
	return hex.EncodeToString(m.Sum(nil))
}

// Released is a release ready for the queue: the envelope and the
// original with the release mark as its first header field.
type Released struct {
	Envelope queue.Envelope
	Data     []byte
}

// Release prepares an original for delivery to its recipients (those of
// the sanitized copy, archive copies left out), or to the addresses
// given. The original is read into memory: it was accepted
// within the message size limit.
func (s *Store) Release(id string, to []string) (Released, error) {
	e, err := s.Get(id)
	if err != nil {
		return Released{}, err
	}
	raw, err := os.ReadFile(s.path(id, ".eml"))
	if err != nil {
		return Released{}, fmt.Errorf("quarantine: reading %s: %w", id, err)
	}
	key := s.secret
	sum := sha256.Sum256(raw)
	env := e.Envelope
	env.ReceivedAt = s.now()
	env.Size = 0
	if len(to) > 0 {
		env.Rcpts = nil
		for _, a := range to {
			env.Rcpts = append(env.Rcpts, queue.Recipient{Addr: a})
		}
	}
	if len(env.Rcpts) == 0 {
		return Released{}, fmt.Errorf("quarantine: %s was kept for no recipient but archive copies; name the recipients to release it to", id)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s; %s\r\n", HeaderReleased, id, mark(key, id, sum[:]))
	b.Write(raw)
	return Released{Envelope: env, Data: b.Bytes()}, nil
}

// Recorded notes a release in the entry (after the queue accepted it).
func (s *Store) Recorded(id string, r Release) error {
	e, err := s.Get(id)
	if err != nil {
		return err
	}
	e.Releases = append(e.Releases, r)
	return s.writeEntry(e)
}

// IsRelease reports whether a message is a released original of this
// store: its first field is a valid mark for the bytes that follow. The
// sanitize stage passes such a message unchanged.
func (s *Store) IsRelease(r io.Reader) (bool, error) {
	br := bufio.NewReader(r)
	// Only a message starting with the field is read further; the rest
	// of the mail costs one small read.
	if p, _ := br.Peek(len(HeaderReleased) + 2); string(p) != HeaderReleased+": " {
		return false, nil
	}
	line, err := br.ReadString('\n')
	if err != nil || len(line) > 200 {
		return false, nil
	}
	v, ok := strings.CutPrefix(line, HeaderReleased+": ")
	if !ok {
		return false, nil
	}
	id, got, ok := strings.Cut(strings.TrimSpace(v), "; ")
	if !ok || !ValidID(id) {
		return false, nil
	}
	if _, err := s.Get(id); err != nil {
		return false, nil
	}
	key := s.secret
	h := sha256.New()
	if _, err := io.Copy(h, br); err != nil {
		return false, fmt.Errorf("quarantine: reading the message: %w", err)
	}
	return hmac.Equal([]byte(got), []byte(mark(key, id, h.Sum(nil)))), nil
}
