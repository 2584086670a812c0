package session

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// OutboundHandler carries out, beside the queue, what the outbound rules
// decided for a queued message; relay/gateway is it (the request in the
// store, the notices). The session knows no store.
type OutboundHandler interface {
	// Held records a message queued held for its hold or its approver.
	// An error means nobody could ever decide it: the session removes
	// the message and the client tries again later.
	Held(id queue.ID, env queue.Envelope, header []byte, d policy.OutboundDecision) error
	// MovedToBcc tells the sender that bcc_outside changed the header of
	// a queued message.
	MovedToBcc(id queue.ID, env queue.Envelope, header []byte, d policy.OutboundDecision)
}

// outbound is the outbound rules' part of one DATA: the decision and the
// body, spooled when the decision needed it.
type outbound struct {
	d    policy.OutboundDecision
	body io.Reader // nil: the body was not read for the decision
	done func()
}

// decideOutbound decides the outbound rules for an accepted message whose
// header is hdr and whose body is still to be read from body. When a
// rule that looks at the attachments or the size could match, the body
// is spooled (as for inspection) and read once through the sanitize
// stage's reader: what counts as an attachment is what a mail client
// shows as one. reply non-nil ends the transaction.
func (s *Session) decideOutbound(msg policy.Message, received string, hdr []byte, body io.Reader) (out outbound, reply *smtpd.Reply) {
	in := policy.OutboundInput{Msg: msg, Header: hdr, Size: -1, Attachments: -1}
	if s.st.Policy.OutboundNeedsContent(s.pconn()) {
		// The envelope often decides alone (mail inside, a rule before
		// the content rules): the message is read only when a rule that
		// looks at it could still match.
		if d := s.st.Policy.Outbound(s.pconn(), in); len(d.Skipped) == 0 {
			out.d = d
			return out, nil
		}
		rs, ok := body.(io.ReadSeeker)
		done := func() {}
		if !ok {
			var err error
			if rs, done, err = spoolBody(body, spoolMemMax); err != nil {
				r := s.dataError(err, "reading the message for the outbound rules")
				return out, &r
			}
		}
		out.done = done
		n, err := rs.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = rs.Seek(0, io.SeekStart)
		}
		if err == nil && s.st.CountFiles != nil {
			in.Attachments, err = s.st.CountFiles(io.MultiReader(bytes.NewReader(hdr), rs))
		}
		if err == nil {
			_, err = rs.Seek(0, io.SeekStart)
		}
		if err != nil {
			done()
			r := s.dataError(err, "reading the message for the outbound rules")
			return out, &r
		}
		in.Size = int64(len(received)+len(hdr)) + n
		out.body = rs
	}
	out.d = s.st.Policy.Outbound(s.pconn(), in)
	return out, nil
}

// holds reports whether the message waits in the queue.
func (o *outbound) holds() bool { return o.d.Hold > 0 || o.d.Approve != nil }

func (o *outbound) release() {
	if o.done != nil {
		o.done()
	}
}

// logOutbound writes what the outbound rules did to a queued message.
func (s *Session) logOutbound(id queue.ID, o *outbound, quarantined bool) {
	d := o.d
	if !d.Applies || d.Rule == "" {
		return
	}
	args := []any{"kind", "session", "id", id.String(), "rule", d.Rule, "actions", d.Actions()}
	if d.Bcc.Header != nil {
		args = append(args, "bcc_moved", strings.Join(d.Bcc.Moved, ","))
	}
	if quarantined && o.holds() {
		args = append(args, "note", "held by a milter's quarantine: the administrator releases it, not the outbound rules")
	}
	s.log.Info("outbound rule", args...)
}

// copyTo is the supervisor's copy: one more recipient, named nowhere in
// the header.
func copyTo(d policy.OutboundDecision) []queue.Recipient {
	if d.CopyTo == "" {
		return nil
	}
	return []queue.Recipient{{Addr: d.CopyTo, OrigAddr: d.CopyTo}}
}

// holdOutbound records a message just queued held; when that fails, the
// message goes again (the client is answered 451 and sends it later),
// so that no message waits with nobody able to decide it.
func (s *Session) holdOutbound(id queue.ID, env queue.Envelope, hdr []byte, d policy.OutboundDecision) error {
	err := errNoOutboundHandler
	if s.sh.Outbound != nil {
		err = s.sh.Outbound.Held(id, env, hdr, d)
	}
	if err == nil {
		return nil
	}
	if derr := s.sh.Queue.Delete(id); derr != nil {
		s.log.Error("a held message whose request could not be recorded stays held: delete it with `sekisho queue delete`",
			"kind", "receive", "id", id.String(), "error", derr)
	}
	return err
}

var errNoOutboundHandler = errors.New("the outbound rules hold this message, but this gateway cannot record held messages (relay.store)")

// asciiOnly keeps a reply's text to printable ASCII.
func asciiOnly(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
