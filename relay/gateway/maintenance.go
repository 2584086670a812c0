package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

// maintenance purges the quarantine at start and then daily (with what
// the opening of held archives left of the purged originals), and sweeps
// the sanitized copies hourly, until ctx ends. It reads the sanitize stage
// of the current snapshot, so a reload that turns the stage on or moves
// the folder is followed.
func (e *Engine) maintenance(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	var lastPurge time.Time
	queued := func(id queue.ID) bool {
		_, err := e.queue.Get(id)
		return !errors.Is(err, queue.ErrNotFound)
	}
	for {
		now := time.Now()
		s := e.st.Load().runner.Sanitize
		if s != nil && now.Sub(lastPurge) >= 24*time.Hour {
			lastPurge = now
			removed, err := s.Purge()
			if len(removed) > 0 || err != nil {
				e.log.Info("quarantine purged", "kind", "sanitize", "removed", len(removed), "error", errString(err))
			}
			if u := e.Unlocker(); u != nil {
				if n, err := u.Sweep(now); n > 0 || err != nil {
					e.log.Info("opened archives of purged originals swept", "kind", "sanitize", "removed", n, "error", errString(err))
				}
			}
		}
		if n, err := s.SweepOutgoing(queued, now); n > 0 || err != nil {
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
	return err.Error()
}
