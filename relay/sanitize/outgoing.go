package sanitize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/routing"
)

// The sanitized copy of a message for one route is made once and kept
// beside the quarantine, in outgoingDir, until the queue no longer holds
// the message: every later attempt sends the same bytes, and the original
// is kept once, under one release ID, however many retries it takes.
const outgoingDir = "outgoing"

// errReleased stops the write of a sanitized copy when the message is a
// released original: nothing is kept, the message goes unsanitized.
var errReleased = errors.New("a released original")

// outgoingPath is where the sanitized copy of message id for route is
// kept. The route name is hashed: it may hold any character.
func (s *Stage) outgoingPath(id queue.ID, route string) string {
	h := sha256.Sum256([]byte(route))
	return filepath.Join(s.cfg.Quarantine.Dir, outgoingDir, id.String()+"-"+hex.EncodeToString(h[:8])+".eml")
}

// Copy is what the runner sends for a group of recipients the stage
// applies to.
type Copy struct {
	Open func() (io.ReadCloser, error)
	Size int64
	// Made is true when this call sanitized the message (false when an
	// earlier attempt's copy is sent again, or for a released original);
	// Result and ReleaseID are then worth a log line.
	Made     bool
	Released bool
	// Result says what was done, first in one word (Report.Result, or
	// "released"), then the report's summary.
	Result    string
	ReleaseID string
}

// Outgoing is the runner's step: for a group of recipients of message m
// (rcpts, indexes into its envelope's) whose route and source the stage
// selects, it returns what to send instead of view (the stored message
// with the route's delivery-time rewrite). A released original is
// returned as view, unchanged. stored opens the message as the spool
// holds it. On an error nothing may be sent and the recipients are
// deferred. The original is kept for the group's recipients, less the
// archive copies: they are who a release goes to.
func (s *Stage) Outgoing(ctx context.Context, m queue.Message, route string, rcpts []int, stored, view func() (io.ReadCloser, error)) (Copy, error) {
	p := s.outgoingPath(m.ID, route)
	if fi, err := os.Stat(p); err == nil {
		return Copy{Open: openFile(p), Size: fi.Size()}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Copy{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return Copy{}, err
	}
	var res Outcome
	// The copy is committed (renamed into place) only after Apply has
	// kept the original: a crash in between leaves no copy, and the next
	// attempt starts again.
	err := safeio.WriteFileFunc(p, 0o600, func(w io.Writer) error {
		var err error
		res, err = s.Apply(ctx, s.asked(m.Envelope, rcpts), route, stored, view, w)
		if err == nil && res.Released {
			return errReleased
		}
		return err
	})
	if errors.Is(err, errReleased) {
		return Copy{Open: view, Size: m.Envelope.Size, Released: true, Result: "released: the original, delivered as stored"}, nil
	}
	// A copy whose folder fsync failed is in place, and its original is
	// kept: send it (a crash could lose the copy, and the next attempt
	// would then keep the original a second time).
	if err != nil && !errors.Is(err, safeio.ErrNotDurable) {
		return Copy{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Copy{}, err
	}
	c := Copy{Open: openFile(p), Size: fi.Size(), Made: true, ReleaseID: res.ReleaseID}
	if res.Report != nil {
		c.Result = res.Report.Result() + ": " + res.Report.Summary(res.ReleaseID)
	}
	return c, nil
}

// asked is the envelope with only the group's recipients that the sender
// asked for: not the archive copies relay.archive added.
func (s *Stage) asked(env queue.Envelope, rcpts []int) queue.Envelope {
	all := env.Rcpts
	env.Rcpts = nil
	for _, i := range rcpts {
		if i < 0 || i >= len(all) {
			continue
		}
		if r := all[i]; !slices.ContainsFunc(s.archive, func(a string) bool { return strings.EqualFold(a, r.Addr) }) {
			env.Rcpts = append(env.Rcpts, r)
		}
	}
	return env
}

func openFile(p string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(p) }
}

// SweepOutgoing removes the sanitized copies of messages the queue no
// longer holds (queued reports false: delivered, bounced or deleted).
// Copies younger than a minute are left alone: their message may be
// between Claim and the first attempt's record.
func (s *Stage) SweepOutgoing(queued func(queue.ID) bool, now time.Time) (int, error) {
	if s == nil {
		return 0, nil
	}
	ents, err := os.ReadDir(filepath.Join(s.cfg.Quarantine.Dir, outgoingDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, de := range ents {
		name := de.Name()
		p := filepath.Join(s.cfg.Quarantine.Dir, outgoingDir, name)
		fi, err := de.Info()
		if err != nil || now.Sub(fi.ModTime()) < time.Minute {
			continue
		}
		if strings.HasPrefix(name, ".") {
			// A write a crash interrupted (safeio's temporary file).
			if now.Sub(fi.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		idText, _, ok := strings.Cut(strings.TrimSuffix(name, ".eml"), "-")
		id, perr := queue.ParseID(idText)
		if !ok || perr != nil || queued(id) {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// CheckRoutes checks that every route a rule names is a route of the
// routing section: a misspelt name would silently sanitize nothing.
// Routes are named by routing.routes[].name, routes[N] when unnamed, or
// smart_host. Keys are relative to relay.sanitize.
func (c Config) CheckRoutes(rt routing.Config) error {
	names := rt.RouteNames()
	var errs []error
	for i, r := range c.Rules {
		for j, name := range r.Routes {
			if !slices.Contains(names, name) {
				errs = append(errs, fmt.Errorf("rules[%d].routes[%d]: %q is not a route (routing.routes[].name, routes[N] for an unnamed one, or smart_host)", i, j, name))
			}
		}
	}
	return errors.Join(errs...)
}
