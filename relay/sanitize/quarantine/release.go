package quarantine

import (
	"fmt"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

// Enqueuer puts a message into the queue: the running gateway's spool,
// or the queue's control folder from the command line.
type Enqueuer func(env queue.Envelope, data []byte) (queue.ID, error)

// Delivered is one release carried out.
type Delivered struct {
	QueueID queue.ID
	To      []string
	// Note is set when the copy was queued but the release could not be
	// noted in the entry.
	Note error
}

// ReleaseTo is the one way an original goes back into the queue: it
// prepares the marked copy (Release), queues it with enqueue, and notes
// the release in the entry (Recorded). `sekisho quarantine release` and
// the console both call it. to empty means the original recipients.
func (s *Store) ReleaseTo(id string, to []string, enqueue Enqueuer) (Delivered, error) {
	rel, err := s.Release(id, to)
	if err != nil {
		return Delivered{}, err
	}
	qid, err := enqueue(rel.Envelope, rel.Data)
	if err != nil {
		return Delivered{}, fmt.Errorf("queueing the original %s: %w", id, err)
	}
	d := Delivered{QueueID: qid}
	for _, r := range rel.Envelope.Rcpts {
		d.To = append(d.To, r.Addr)
	}
	if err := s.Recorded(id, Release{At: s.now(), To: d.To, QueueID: qid.String()}); err != nil {
		// The copy is queued; only the note in the entry is missing.
		d.Note = err
	}
	return d, nil
}

// ReleasedSince returns the first release of id at or after t (a release
// a crash interrupted after it was queued), or false.
func (s *Store) ReleasedSince(id string, t time.Time) (Release, bool, error) {
	e, err := s.Get(id)
	if err != nil {
		return Release{}, false, err
	}
	for _, r := range e.Releases {
		if !r.At.Before(t) {
			return r, true, nil
		}
	}
	return Release{}, false, nil
}
