package runner

import (
	"errors"
	"github.com/sekisho/sekisho/rewrite"
	"io"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/queue"
)

// dkimSign wraps the opener of a message as it will be sent (after the
// route's delivery-time rewrite, which may have changed From) so that it
// leaves with a DKIM-Signature from relay.inspect.dkim_sign, and returns
// the bytes that adds. Without a key for the From domain the message goes
// as it is. One that cannot be signed (no single From, ...) goes unsigned
// with a warning rather than not at all; an error reading the spool is
// returned and the caller defers the delivery. Only mail from the inner
// networks and authenticated users is signed: mail that came in from the
// internet is not ours to vouch for, even when its From claims our domain
// (a forgery, or mail an alias forwards back out).
func (r *Runner) dkimSign(st *Snapshot, m queue.Message, body func() (io.ReadCloser, error)) (func() (io.ReadCloser, error), int64, error) {
	if !st.Inspect.Signs() || m.Envelope.Source == rewrite.SourceInternet {
		return body, 0, nil
	}
	signed, added, err := st.Inspect.SignBody(body)
	switch {
	case errors.Is(err, dkimsign.ErrUnsignable):
		r.sh.Log.Warn("sent without a DKIM signature", "kind", "delivery", "id", m.ID.String(), "error", err)
		return body, 0, nil
	case err != nil:
		return nil, 0, err
	}
	return signed, int64(added), nil
}
