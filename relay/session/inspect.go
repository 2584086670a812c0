package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
)

// spoolMemMax is how much of a body is kept in memory for inspection;
// larger bodies go to an unlinked temporary file, so a few large messages
// at once do not hold their whole size in memory each.
const spoolMemMax = 1 << 20

// inspectConnect runs the DNS lists and the reverse-DNS requirement at the
// greeting; ok false means the connection is refused with r.
func (s *Session) inspectConnect() (r smtpd.Reply, ok bool) {
	if s.st.Inspect == nil {
		return r, true
	}
	res := s.st.Inspect.Connect(context.Background(), s.ip, s.source())
	s.clientName = res.Name
	if res.Refuse {
		s.log.Info("refused", "kind", "reject", "stage", "connect", "arg", s.ip.String(), "code", res.Reply.Code,
			"enhanced", res.Reply.Enhanced, "rule", "builtin:inspect", "listed", res.Listed, "reason", res.Reply.Text)
		s.sh.Metrics.Commands.WithLabelValues("connect", "reject", "inspect").Inc()
		return res.Reply, false
	}
	if res.Name != "" {
		s.log.Debug("client name verified", "kind", "session", "name", res.Name)
	}
	return r, true
}

// inspected is what the after-DATA stages leave to queue.
type inspected struct {
	header []byte    // the header to queue (our Received, as received, edited, our Authentication-Results)
	body   io.Reader // the body, from its start
	held   string    // quarantined (the reason): queue it held
	done   func()    // releases the spooled body
}

// inspectData reads the rest of the message into a spool (memory, then a
// temporary file) so it can be inspected and then queued, and runs the
// sender checks and milters on the header as received. Milters see the
// message as received, before our rewrite, under our Received field
// (trace) as Postfix shows it them: their verdicts (SPF, DKIM,
// reputation, virus) concern what the sender sent, and a DKIM signature
// only verifies over the original header. reply non-nil ends the
// transaction with it (refused, deferred, discarded or an internal
// failure, which is always 4xx).
func (s *Session) inspectData(br io.Reader, trace string, received []byte, env rcptsFrom) (out inspected, reply *smtpd.Reply) {
	body, done, err := spoolBody(br, spoolMemMax)
	if err != nil {
		r := s.dataError(err, "reading the message for inspection")
		return out, &r
	}
	out.done = done
	m := inspect.Received{
		ClientIP: s.ip, ClientPort: s.conn.RemoteAddr().Port(), ClientName: s.clientName,
		Helo: s.conn.Hostname(), From: s.from, Rcpts: env.rcpts, QueueID: env.id,
		AuthUser: s.authUser, AuthType: s.authMech, Source: env.source, Trace: trace, Header: received, Body: body,
	}
	if st, ok := s.conn.TLS(); ok {
		m.TLS = &st
	}
	v := s.st.Inspect.Check(context.Background(), m)
	for _, f := range v.Failed {
		if f.Deferred {
			s.log.Warn("milter failed; message deferred with 451 4.7.0 (on_failure: tempfail)", "kind", "inspect",
				"milter", f.Milter, "error", f.Err)
		} else {
			s.log.Warn("milter failed; passed over (on_failure: accept)", "kind", "inspect", "milter", f.Milter, "error", f.Err)
		}
	}
	switch v.Action {
	case milter.Reject, milter.TempFail:
		r := v.Reply
		s.log.Info("refused", "kind", "reject", "stage", "data", "reason", "inspect", "by", v.Reason,
			"code", r.Code, "enhanced", r.Enhanced, "text", r.Text, "from", s.from)
		s.sh.Metrics.Messages.WithLabelValues("refused", "inspect").Inc()
		done()
		return out, &r
	case milter.Discard:
		s.log.Info("discarded", "kind", "reject", "stage", "data", "reason", "inspect", "by", v.Reason, "from", s.from,
			"rcpts", len(env.rcpts))
		s.sh.Metrics.Messages.WithLabelValues("discarded", "inspect").Inc()
		done()
		r := smtpd.R(250, "2.0.0", "OK")
		return out, &r
	case milter.Quarantine:
		out.held = v.Reason
		if out.held == "" {
			out.held = "quarantined by a milter"
		}
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		done()
		r := s.dataError(err, "rewinding the inspected message")
		return out, &r
	}
	// The milters' edits count our Received field, which they saw first.
	out.header, out.body = v.Header(append([]byte(trace), received...)), body
	return out, nil
}

// rcptsFrom is what the milters are told of the envelope.
type rcptsFrom struct {
	rcpts  []string
	id     string // session.message, for the milters' logs
	source rewrite.Source
}

// spoolBody reads r to its end, in memory up to memMax bytes and in an
// unlinked temporary file beyond, and returns it seekable. An error is
// either the reader's (too large, bare line ending, timeout: dataError
// tells them apart) or the temporary file's (451); nothing is left on
// disk either way.
func spoolBody(r io.Reader, memMax int64) (io.ReadSeeker, func(), error) {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, r, memMax+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	if n <= memMax {
		return bytes.NewReader(buf.Bytes()), func() {}, nil
	}
	f, err := os.CreateTemp("", "sekisho-data-*")
	if err != nil {
		return nil, nil, err
	}
	// Unlinked at once where the system allows it: a crash leaves nothing
	// behind. Where it does not, done removes it.
	unlinked := os.Remove(f.Name()) == nil
	done := func() {
		f.Close()
		if !unlinked {
			os.Remove(f.Name())
		}
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := io.Copy(f, r); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}

// txnInfo is the envelope as the milters are told it: the recipients as
// the client gave them at RCPT, before alias resolution and rewrite, like
// the header they see (a regional address resolved to its LG twin would
// look forged to rspamd's FORGED_RECIPIENTS).
func (s *Session) txnInfo(env queue.Envelope) rcptsFrom {
	t := rcptsFrom{id: s.id + "." + strconv.Itoa(s.msgs), source: env.Source}
	for _, r := range s.rcpts {
		t.rcpts = append(t.rcpts, r.dec.Arg)
	}
	return t
}
