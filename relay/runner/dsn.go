package runner

import (
	"bytes"
	"errors"
	"github.com/sekisho/sekisho/rewrite"
	"io"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/dsn"
	"github.com/sekisho/sekisho/relay/queue"
)

// The notifications the runner sends: bounces, delay warnings, "relayed"
// receipts (RFC 3461 §4.2), and the postmaster's copies of bounces.

// bounce queues a DSN to the sender for the failed recipients, committing
// their failure in the same record (no double bounce after a crash), or
// just marks them failed when no bounce is due (null sender, a report,
// NOTIFY=NEVER).
//
// With action Delayed it is a delay warning: the recipients stay queued
// and are only marked as warned, in the same commit as the warning.
func (r *Runner) bounce(st *Snapshot, m queue.Message, failed []outcome, now time.Time, action dsn.Action) error {
	header, _ := r.readHeader(m.ID, st.MaxHeaderBytes*2)
	var marks []queue.Mark
	var recips []dsn.Recipient
	markStatus, notify := queue.Failed, "FAILURE"
	switch action {
	case dsn.Delayed:
		markStatus, notify = queue.Deferred, "DELAY"
	case dsn.Relayed:
		markStatus, notify = queue.Delivered, "SUCCESS"
	}
	for _, o := range failed {
		rc := m.Envelope.Rcpts[o.rcpt]
		marks = append(marks, queue.Mark{Rcpt: o.rcpt, Status: markStatus, Reason: o.reason()})
		if !notifyWants(rc.Notify, notify) {
			continue
		}
		status := o.enhanced
		if status == "" || status == "X.0.0" {
			status = "4.0.0"
		}
		switch {
		case action == dsn.Relayed:
			if status[0] != '2' {
				status = "2.0.0"
			}
		case action == dsn.Delayed:
			status = "4" + status[1:]
		case status[0] == '4':
			status = "5" + status[1:] // the delivery failed for good
		}
		diag := o.reason()
		if o.code > 0 {
			diag = "smtp; " + diag
		}
		orig := rc.ORcpt
		if orig == "" && rc.OrigAddr != "" && rc.OrigAddr != rc.Addr {
			orig = "rfc822;" + rc.OrigAddr
		}
		dr := dsn.Recipient{Final: rc.Addr, Original: orig, Action: action, Status: status,
			RemoteMTA: hostOf(o.remote), DiagnosticCode: diag, LastAttempt: now}
		if action == dsn.Delayed {
			dr.WillRetryUntil = m.Envelope.ReceivedAt.Add(st.Delivery.TempFailLifetime)
		}
		recips = append(recips, dr)
	}
	if len(recips) == 0 || !dsn.ShouldBounce(m.Envelope.From, header) {
		if action == dsn.Delayed {
			return nil // no warning is due; nothing to record
		}
		return r.markWithoutDSN(m, marks)
	}
	data, err := dsn.Build(dsn.Params{ReportingMTA: st.Hostname, From: st.Postmaster, To: m.Envelope.From, OrigEnvID: m.Envelope.EnvID,
		ArrivalDate: m.Envelope.ReceivedAt, Recipients: recips, OriginalHeader: header, Date: now})
	if err != nil {
		r.sh.Log.Error("building a notification; recording the outcome without one", "id", m.ID.String(), "error", err)
		if action == dsn.Delayed {
			return nil
		}
		return r.markWithoutDSN(m, marks)
	}
	env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: m.Envelope.From, OrigAddr: m.Envelope.From}},
		ReceivedAt: now, Source: rewrite.SourceInner, Helo: st.Hostname, BodyType: dsn.BodyType(data), SMTPUTF8: !asciiOnly(m.Envelope.From)}
	// E-Post's fail report: with the header only, the postmaster gets the
	// same bounce, in the same commit, so neither copy can be lost without
	// the other; the whole message goes in a notification of its own.
	var full []byte
	if pm := st.Delivery.FailReportTo; pm != "" && action == dsn.Failed && !strings.EqualFold(pm, m.Envelope.From) {
		// Mail the sanitize rules select (internet mail) never reaches
		// the postmaster whole: its report carries the header only.
		if st.Delivery.FailReportContent == "full" && !st.Sanitize.Selects(m.Envelope.Source, m.Envelope.ClientIP) {
			full = r.readAll(m.ID) // before the bounce: the message may finish with it
		} else {
			env.Rcpts = append(env.Rcpts, queue.Recipient{Addr: pm, OrigAddr: pm})
		}
	}
	id, err := r.sh.Queue.EnqueueDSN(env, bytes.NewReader(data), m.ID, marks)
	if err != nil {
		// The failures stay unrecorded: the runner keeps them and builds
		// the bounce again when it records them.
		return err
	}
	r.sh.Log.Info("dsn queued", "kind", "fail", "action", string(action), "id", m.ID.String(), "dsn", id.String(), "to", m.Envelope.From, "recipients", len(recips))
	r.sh.Metrics.DSNs.WithLabelValues(string(action)).Inc()
	if full != nil {
		r.failReport(st, m, recips, header, full, now)
	}
	return nil
}

// markWithoutDSN records final outcomes for which no notification is
// sent (null sender, NOTIFY without them, a report about a report).
func (r *Runner) markWithoutDSN(m queue.Message, marks []queue.Mark) error {
	var errs []error
	for _, mk := range marks {
		var err error
		if mk.Status == queue.Delivered {
			err = r.sh.Queue.MarkDelivered(m.ID, mk.Rcpt)
		} else {
			err = r.sh.Queue.MarkFailed(m.ID, mk.Rcpt, mk.Reason)
		}
		if err != nil && !errors.Is(err, queue.ErrFinal) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// notifyWants applies RFC 3461 NOTIFY: empty means the default (failures
// and delays are reported).
func notifyWants(notify, what string) bool {
	if notify == "" {
		return what != "SUCCESS"
	}
	for _, n := range strings.Split(strings.ToUpper(notify), ",") {
		if n == what {
			return true
		}
	}
	return false
}

func hostOf(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		return strings.Trim(remote[:i], "[]")
	}
	return remote
}

// readAll returns a queued message's bytes, nil when they cannot be read.
func (r *Runner) readAll(id queue.ID) []byte {
	rc, err := r.sh.Queue.Open(id)
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil
	}
	return b
}

// failReport queues the postmaster's copy of a bounce with the whole
// original message (relay.delivery.fail_report_content: full). It is a
// message of its own, queued after the bounce: a crash between the two,
// or a spool below its reserve, costs the copy, never the bounce.
func (r *Runner) failReport(st *Snapshot, m queue.Message, recips []dsn.Recipient, header, full []byte, now time.Time) {
	pm := st.Delivery.FailReportTo
	data, err := dsn.Build(dsn.Params{ReportingMTA: st.Hostname, From: st.Postmaster, To: pm, OrigEnvID: m.Envelope.EnvID,
		ArrivalDate: m.Envelope.ReceivedAt, Recipients: recips, OriginalHeader: header, OriginalMessage: full, Date: now})
	if err == nil {
		env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: pm, OrigAddr: pm}}, ReceivedAt: now,
			Source: rewrite.SourceInner, Helo: st.Hostname, BodyType: dsn.BodyType(data), SMTPUTF8: !asciiOnly(m.Envelope.From)}
		var id queue.ID
		if id, err = r.sh.Queue.Enqueue(env, bytes.NewReader(data)); err == nil {
			r.sh.Log.Info("fail report queued", "kind", "fail", "id", m.ID.String(), "dsn", id.String(), "to", pm)
			return
		}
	}
	r.sh.Log.Error("the postmaster's copy of a bounce could not be queued", "kind", "fail", "id", m.ID.String(), "to", pm, "error", err)
}
