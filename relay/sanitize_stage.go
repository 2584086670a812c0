package relay

import (
	"fmt"
	"io"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
)

// SanitizeStage makes a claimed message harmless for the recipients whose
// route and source the rules select, keeping the original in the
// quarantine. The runner calls it after Claim and routing, before
// delivery, once per message and group of recipients it applies to.
type SanitizeStage struct {
	cfg   SanitizeConfig
	store *quarantine.Store
	now   func() time.Time
}

// NewSanitizeStage opens the quarantine folder. With no rules it returns
// nil: the stage is off.
func NewSanitizeStage(cfg SanitizeConfig) (*SanitizeStage, error) {
	if len(cfg.Rules) == 0 {
		return nil, nil
	}
	st, err := quarantine.Open(cfg.Quarantine.Dir, cfg.Quarantine.Retention)
	if err != nil {
		return nil, err
	}
	return &SanitizeStage{cfg: cfg, store: st, now: time.Now}, nil
}

// Applies reports whether a recipient's copy must be sanitized. A nil
// stage applies to nothing.
func (s *SanitizeStage) Applies(source, client, route string) bool {
	return s != nil && s.cfg.Applies(source, client, route)
}

// SanitizeOutcome says what Apply did.
type SanitizeOutcome struct {
	// Released: the message is an original released from the quarantine
	// (its mark verified); deliver it as it is, out was not written.
	Released  bool
	ReleaseID string // where the original is kept ("" when nothing was lost)
	Report    *sanitize.Report
}

// Apply writes the sanitized message to out. stored must return the
// queued bytes as they are in the spool, from the start, on each call: the
// release check and the copy into the quarantine read them (the release
// mark covers those bytes, so a route's delivery-time rewrite must not be
// applied to them). view returns what would be delivered unsanitized (the
// stored bytes with the route's rewritten header), which is what gets
// sanitized; nil means stored. When Apply returns an error nothing may be
// delivered and the message should be deferred: the original could not be
// read, the output could not be written, or the original could not be
// kept — a message is never delivered sanitized without its original kept.
func (s *SanitizeStage) Apply(env queue.Envelope, route string, stored, view func() (io.ReadCloser, error), out io.Writer) (SanitizeOutcome, error) {
	if view == nil {
		view = stored
	}
	rc, err := stored()
	if err != nil {
		return SanitizeOutcome{}, err
	}
	released, err := s.store.IsRelease(rc)
	rc.Close()
	if err != nil {
		return SanitizeOutcome{}, err
	}
	if released {
		return SanitizeOutcome{Released: true}, nil
	}
	id := s.store.NewID()
	now := s.now()
	rc, err = view()
	if err != nil {
		return SanitizeOutcome{}, err
	}
	rep, err := sanitize.Message(rc, out, s.cfg.Options(id, now.Add(s.cfg.Quarantine.Retention)))
	rc.Close()
	if err != nil {
		return SanitizeOutcome{}, err
	}
	res := SanitizeOutcome{Report: rep}
	if !rep.Changed() {
		return res, nil
	}
	rc, err = stored()
	if err != nil {
		return SanitizeOutcome{}, err
	}
	defer rc.Close()
	if _, err := s.store.Put(id, env, quarantine.Entry{Subject: rep.Subject, Route: route, Report: rep}, rc); err != nil {
		return SanitizeOutcome{}, fmt.Errorf("keeping the original: %w", err)
	}
	res.ReleaseID = id
	return res, nil
}

// Purge removes the originals past their retention; the engine's daily
// maintenance calls it (or an administrator, `sekisho quarantine purge`).
func (s *SanitizeStage) Purge() ([]string, error) {
	if s == nil {
		return nil, nil
	}
	return s.store.Purge()
}
