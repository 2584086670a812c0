package sanitize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize/convert"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/rewrite"
)

// Stage makes a claimed message harmless for the recipients whose route
// and source the rules select, keeping the original in the quarantine.
// The runner calls it after Claim and routing, before delivery, once per
// message and group of recipients it applies to. A nil Stage (no rules)
// applies to nothing.
type Stage struct {
	cfg     Config
	store   *quarantine.Store
	now     func() time.Time
	archive []string // relay.archive addresses: copies we added, never released to
	deps    StageDeps
	conv    *convert.Converter // nil when no class is converted
}

// StageDeps are what a live stage is given besides its section.
type StageDeps struct {
	// Pool bounds the conversions of the whole process (a reload builds
	// a stage on the same pool); nil makes one of convert.workers.
	Pool *convert.Pool
	// Warn is told of a weaker converter sandbox than configured.
	Warn func(msg string)
	// ConsoleURL is shown in the notice of a held password archive.
	ConsoleURL string
}

// NewStage opens the quarantine folder. archive lists the archive
// addresses (relay.archive), whose copies a release does not repeat. With
// no rules it returns nil: the stage is off.
func NewStage(cfg Config, archive []string, deps StageDeps) (*Stage, error) {
	if len(cfg.Rules) == 0 {
		return nil, nil
	}
	st, err := quarantine.Open(cfg.Quarantine.Dir, cfg.Quarantine.Retention)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, store: st, now: time.Now, archive: archive, deps: deps}
	if cfg.Reconstruct.Converts() || cfg.Reconstruct.Encrypted == ActionUnlock {
		s.conv = convert.New(cfg.Convert, deps.Pool)
		s.conv.Warn = deps.Warn
	}
	return s, nil
}

// Converter is the stage's converter (nil when nothing is converted):
// the opening of held archives uses it too.
func (s *Stage) Converter() *convert.Converter {
	if s == nil {
		return nil
	}
	return s.conv
}

// Options are the options of the live stage for one message.
func (s *Stage) Options(ctx context.Context, releaseID string, keepUntil time.Time) Options {
	o := s.cfg.Options(releaseID, keepUntil)
	o.Convert, o.Context, o.ConsoleURL = s.conv, ctx, s.deps.ConsoleURL
	return o
}

// Applies reports whether a recipient's copy must be sanitized.
func (s *Stage) Applies(source rewrite.Source, client, route string) bool {
	return s != nil && s.cfg.Applies(source, client, route)
}

// Selects reports whether the rules sanitize mail from source and client
// on any route: such mail is not to reach the inside whole by another
// way (the runner's fail reports carry only its header).
func (s *Stage) Selects(source rewrite.Source, client string) bool {
	return s != nil && s.cfg.Selects(source, client)
}

// Outcome says what Apply did.
type Outcome struct {
	// Released: the message is an original released from the quarantine
	// (its mark verified); deliver it as it is, out was not written.
	Released  bool
	ReleaseID string // where the original is kept ("" when nothing was lost)
	Report    *Report
}

// Apply writes the sanitized message to out. env is kept with the
// original: its recipients are those a release delivers to. stored must return the
// queued bytes as they are in the spool, from the start, on each call: the
// release check and the copy into the quarantine read them (the release
// mark covers those bytes, so a route's delivery-time rewrite must not be
// applied to them). view returns what would be delivered unsanitized (the
// stored bytes with the route's rewritten header), which is what gets
// sanitized; nil means stored. When Apply returns an error nothing may be
// delivered and the message should be deferred: the original could not be
// read, the output could not be written, or the original could not be
// kept — a message is never delivered sanitized without its original kept.
func (s *Stage) Apply(ctx context.Context, env queue.Envelope, route string, stored, view func() (io.ReadCloser, error), out io.Writer) (Outcome, error) {
	if view == nil {
		view = stored
	}
	rc, err := stored()
	if err != nil {
		return Outcome{}, err
	}
	released, err := s.store.IsRelease(rc)
	rc.Close()
	if err != nil {
		return Outcome{}, err
	}
	if released {
		return Outcome{Released: true}, nil
	}
	id := s.store.NewID()
	now := s.now()
	rc, err = view()
	if err != nil {
		return Outcome{}, err
	}
	rep, err := Message(rc, out, s.Options(ctx, id, now.Add(s.cfg.Quarantine.Retention)))
	rc.Close()
	if err != nil {
		return Outcome{}, err
	}
	res := Outcome{Report: rep}
	if !rep.Changed() {
		return res, nil
	}
	report, err := json.Marshal(rep)
	if err != nil {
		return Outcome{}, fmt.Errorf("recording what was removed: %w", err)
	}
	rc, err = stored()
	if err != nil {
		return Outcome{}, err
	}
	defer rc.Close()
	if _, err := s.store.Put(id, env, quarantine.Entry{Subject: rep.Subject, Route: route, Report: report}, rc); err != nil {
		return Outcome{}, fmt.Errorf("keeping the original: %w", err)
	}
	res.ReleaseID = id
	return res, nil
}

// Purge removes the originals past their retention; the gateway's daily
// maintenance calls it (or an administrator, `sekisho quarantine purge`).
func (s *Stage) Purge() ([]string, error) {
	if s == nil {
		return nil, nil
	}
	return s.store.Purge()
}

// EntryReport reads the report a quarantine entry keeps; nil when it has
// none.
func EntryReport(e quarantine.Entry) (*Report, error) {
	if len(e.Report) == 0 {
		return nil, nil
	}
	var r Report
	if err := json.Unmarshal(e.Report, &r); err != nil {
		return nil, fmt.Errorf("quarantine entry %s: its report: %w", e.ID, err)
	}
	return &r, nil
}
