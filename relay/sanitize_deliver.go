package relay

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
func (s *SanitizeStage) outgoingPath(id queue.ID, route string) string {
	h := sha256.Sum256([]byte(route))
	return filepath.Join(s.cfg.Quarantine.Dir, outgoingDir, id.String()+"-"+hex.EncodeToString(h[:8])+".eml")
}

// sanitizedBody is the runner's hook: for a group of recipients whose
// route and source the stage selects, it returns what to send instead of
// view (the stored message with the route's delivery-time rewrite) and
// its size. A released original is returned as view, unchanged. On an
// error nothing may be sent and the recipients are deferred.
func (r *runner) sanitizedBody(st *state, m queue.Message, route string, view func() (io.ReadCloser, error)) (func() (io.ReadCloser, error), int64, error) {
	s := st.sanitize
	p := s.outgoingPath(m.ID, route)
	if fi, err := os.Stat(p); err == nil {
		return openFile(p), fi.Size(), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, 0, err
	}
	stored := func() (io.ReadCloser, error) { return r.e.queue.Open(m.ID) }
	var res SanitizeOutcome
	// The copy is committed (renamed into place) only after Apply has
	// kept the original: a crash in between leaves no copy, and the next
	// attempt starts again.
	err := safeio.WriteFileFunc(p, 0o600, func(w io.Writer) error {
		var err error
		res, err = s.Apply(m.Envelope, route, stored, view, w)
		if err == nil && res.Released {
			return errReleased
		}
		return err
	})
	if errors.Is(err, errReleased) {
		r.e.log.Info("sanitize", "kind", "sanitize", "id", m.ID.String(), "route", route, "result", "released original, delivered as stored")
		return view, m.Envelope.Size, nil
	}
	// A copy whose folder fsync failed is in place, and its original is
	// kept: send it (a crash could lose the copy, and the next attempt
	// would then keep the original a second time).
	if err != nil && !errors.Is(err, safeio.ErrNotDurable) {
		return nil, 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, 0, err
	}
	summary := "unchanged"
	if res.Report != nil && res.Report.Changed() {
		summary = res.Report.Summary(res.ReleaseID)
	}
	r.e.log.Info("sanitize", "kind", "sanitize", "id", m.ID.String(), "route", route, "release_id", res.ReleaseID,
		"result", summary, "size", fi.Size())
	return openFile(p), fi.Size(), nil
}

func openFile(p string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(p) }
}

// sweepOutgoing removes the sanitized copies of messages the queue no
// longer holds (delivered, bounced or deleted). Copies younger than a
// minute are left alone: their message may be between Claim and the
// first attempt's record.
func (s *SanitizeStage) sweepOutgoing(q *queue.Spool, now time.Time) (int, error) {
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
		if !ok || perr != nil {
			continue
		}
		if _, err := q.Get(id); !errors.Is(err, queue.ErrNotFound) {
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

// sanitizeMaintenance purges the quarantine at start and then daily, and
// sweeps the sanitized copies hourly, until ctx ends. It reads the stage
// of the current state, so a reload that turns the stage on or moves the
// folder is followed.
func (e *Engine) sanitizeMaintenance(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	var lastPurge time.Time
	for {
		now := time.Now()
		s := e.st.Load().sanitize
		if s != nil && now.Sub(lastPurge) >= 24*time.Hour {
			lastPurge = now
			removed, err := s.Purge()
			if len(removed) > 0 || err != nil {
				e.log.Info("quarantine purged", "kind", "sanitize", "removed", len(removed), "error", errString(err))
			}
		}
		if n, err := s.sweepOutgoing(e.queue, now); n > 0 || err != nil {
			e.log.Info("sanitized copies swept", "kind", "sanitize", "removed", n, "error", errString(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}

// sanitizeRoutesExist checks that every route a sanitize rule names is a
// route of the routing section: a misspelt name would silently sanitize
// nothing. Routes are named by routing.routes[].name, routes[N] when
// unnamed, or smart_host.
func sanitizeRoutesExist(c SanitizeConfig, rt routing.Config) error {
	names := map[string]bool{"smart_host": true}
	for i, r := range rt.Routes {
		if r.Name != "" {
			names[r.Name] = true
		} else {
			names[fmt.Sprintf("routes[%d]", i)] = true
		}
	}
	var errs []error
	for i, r := range c.Rules {
		for j, name := range r.Routes {
			if !names[name] {
				errs = append(errs, fmt.Errorf("relay.sanitize.rules[%d].routes[%d]: %q is not a route (routing.routes[].name, routes[N] for an unnamed one, or smart_host)", i, j, name))
			}
		}
	}
	return errors.Join(errs...)
}
