package approval

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
)

// ReleaseExecutor carries out release requests: the original goes back
// into the queue through the quarantine's one release path.
type ReleaseExecutor struct {
	// Quarantine is this gateway's folder of originals.
	Quarantine *quarantine.Store
	Enqueue    quarantine.Enqueuer
	Store      func() *store.Store
	Instance   string
	Log        *slog.Logger
}

// Execute releases r.Item to r.Recipients, unless a run that a crash
// interrupted already did since started.
func (e *ReleaseExecutor) Execute(ctx context.Context, r store.Request, started time.Time) (string, error) {
	if e.Quarantine == nil {
		return "", errors.New("this gateway keeps no originals (relay.sanitize is off)")
	}
	if rel, ok, err := e.Quarantine.ReleasedSince(r.Item, started); err != nil {
		return "", err
	} else if ok {
		return rel.QueueID, nil
	}
	d, err := e.Quarantine.ReleaseTo(r.Item, r.Recipients, e.Enqueue)
	if err != nil {
		return "", err
	}
	if d.Note != nil {
		e.Log.Warn("the release is queued but not noted in the quarantine entry", "kind", "sanitize", "release_id", r.Item, "error", d.Note)
	}
	e.Log.Info("original released", "kind", "sanitize", "release_id", r.Item, "id", d.QueueID.String(),
		"to", strings.Join(d.To, ","), "by", r.DecidedBy, "request", r.ID)
	if st := e.Store(); st != nil {
		if ent, err := e.Quarantine.Get(r.Item); err == nil {
			st.SetReleased(ctx, e.Instance, r.Item, len(ent.Releases))
		}
	}
	return d.QueueID.String(), nil
}
