package events

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/relay/store"
)

// tap is the slog.Handler that records traced kinds on their way to the
// log. Attributes bound with WithAttrs (a session's id and client) are
// kept for the conversion; inside a group nothing is traced (the mail
// path does not log in groups).
type tap struct {
	next    slog.Handler
	r       *Recorder
	bound   []slog.Attr
	kind    string // bound with WithAttrs
	grouped bool
}

func (t *tap) Enabled(ctx context.Context, l slog.Level) bool {
	// Every traced record is logged at info or above; a record below the
	// log's level is still traced when it is of a traced kind, which the
	// level does not tell, so ask for everything at info and up.
	return l >= slog.LevelInfo || t.next.Enabled(ctx, l)
}

func (t *tap) Handle(ctx context.Context, rec slog.Record) error {
	if !t.grouped && rec.Level >= slog.LevelInfo {
		kind := t.kind
		if kind == "" {
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "kind" {
					kind = a.Value.String()
					return false
				}
				return true
			})
		}
		if traced[kind] {
			var buf [4]store.Event
			t.r.Record(convert(buf[:0], kind, t.r.instance, rec, t.bound))
		}
	}
	if !t.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return t.next.Handle(ctx, rec)
}

func (t *tap) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.next = t.next.WithAttrs(as)
	if !t.grouped {
		c.bound = append(append([]slog.Attr(nil), t.bound...), as...)
		for _, a := range as {
			if a.Key == "kind" {
				c.kind = a.Value.String()
			}
		}
	}
	return &c
}

func (t *tap) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	c := *t
	c.next = t.next.WithGroup(name)
	c.grouped = true
	return &c
}

// traced are the kinds whose records become events.
var traced = map[string]bool{"receive": true, "reject": true, "send": true, "fail": true, "sanitize": true, "audit": true}

// recFields are the attributes convert reads, gathered in one pass over
// a record's: a switch per attribute instead of a search per field. The
// last of a key wins, as it does in the log line.
type recFields struct {
	id, session, client, from, reason                 string // most kinds
	messageID, rules, helo, source, auth, rcpts       string // receive
	rule, stage, arg, enhanced, by, err               string // reject
	rcpt, result, hop, remote, reply, dsn, to, action string // send, fail
	releaseID, route                                  string // sanitize
	object, actor                                     string // audit
	size, code, attempt                               int
}

func (f *recFields) set(a slog.Attr) {
	var p *string
	switch a.Key {
	case "id":
		p = &f.id
	case "session":
		p = &f.session
	case "client":
		p = &f.client
	case "from":
		p = &f.from
	case "reason":
		p = &f.reason
	case "message_id":
		p = &f.messageID
	case "rules":
		p = &f.rules
	case "helo":
		p = &f.helo
	case "source":
		p = &f.source
	case "auth":
		p = &f.auth
	case "rcpts":
		p = &f.rcpts
	case "rule":
		p = &f.rule
	case "stage":
		p = &f.stage
	case "arg":
		p = &f.arg
	case "enhanced":
		p = &f.enhanced
	case "by":
		p = &f.by
	case "error":
		p = &f.err
	case "rcpt":
		p = &f.rcpt
	case "result":
		p = &f.result
	case "hop":
		p = &f.hop
	case "remote":
		p = &f.remote
	case "reply":
		p = &f.reply
	case "dsn":
		p = &f.dsn
	case "to":
		p = &f.to
	case "action":
		p = &f.action
	case "release_id":
		p = &f.releaseID
	case "route":
		p = &f.route
	case "object":
		p = &f.object
	case "actor":
		p = &f.actor
	case "size":
		f.size = intValue(a.Value)
		return
	case "code":
		f.code = intValue(a.Value)
		return
	case "attempt":
		f.attempt = intValue(a.Value)
		return
	default:
		return
	}
	*p = a.Value.Resolve().String()
}

func intValue(v slog.Value) int {
	switch v = v.Resolve(); v.Kind() {
	case slog.KindInt64:
		return int(v.Int64())
	case slog.KindUint64:
		return int(v.Uint64())
	}
	n, _ := strconv.Atoi(v.String())
	return n
}

// convert appends to dst the events of one record. A receive line names
// every recipient: it becomes one event per recipient, so that a search
// by recipient uses an index.
func convert(dst []store.Event, kind, instance string, rec slog.Record, bound []slog.Attr) []store.Event {
	var f recFields
	for _, a := range bound {
		f.set(a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		f.set(a)
		return true
	})
	base := store.Event{Instance: instance, At: rec.Time, Kind: kind, QueueID: f.id, Session: f.session,
		Client: f.client, Sender: f.from}
	switch kind {
	case "receive":
		if rec.Message != "accepted" {
			// Held at receipt (a milter's quarantine): a queue step.
			base.Kind, base.Result, base.Detail = "queue", "held", rec.Message+": "+f.reason
			return append(dst, base)
		}
		base.Result, base.MessageID, base.Rule = "accepted", f.messageID, f.rules
		base.Detail = strconv.Itoa(f.size) + " bytes from " + base.Client + " (HELO " + f.helo + "), source " + f.source
		if u := f.auth; u != "" {
			base.Detail += ", AUTH " + u
		}
		for r := range strings.SplitSeq(f.rcpts, ",") {
			e := base
			e.Rcpt = r
			dst = append(dst, e)
		}
		return dst
	case "reject":
		base.Result, base.Rule, base.Code = rec.Message, f.rule, f.code
		if base.Rule == "" {
			base.Rule = f.reason
		}
		if f.stage == "rcpt" {
			base.Rcpt = f.arg
		}
		base.Detail = strings.TrimSpace(f.stage + ": " + f.enhanced + " " + f.reason)
		if by := f.by; by != "" {
			base.Detail += " (" + by + ")"
		}
		if e := f.err; e != "" {
			base.Detail += ": " + e
		}
	case "send", "fail":
		switch rec.Message {
		case "delivery":
			base.Rcpt, base.Result, base.Code, base.Rule = f.rcpt, f.result, f.code, f.hop
			via := f.hop
			if r := f.remote; r != "" {
				via += " " + r // a file or program hop has no address
			}
			base.Detail = "attempt " + strconv.Itoa(f.attempt) + " via " + via + ": " + f.reply
		case "dsn queued", "fail report queued":
			base.Kind, base.Ref, base.Rcpt = "dsn", f.dsn, f.to
			base.Result = f.action
			if base.Result == "" {
				base.Result = "report"
			}
			base.Detail = rec.Message
		default:
			base.Result, base.Detail = "error", rec.Message+": "+f.err
		}
	case "sanitize":
		switch rec.Message {
		case "sanitize":
			base.Ref, base.Rule, base.Result, base.Detail = f.releaseID, f.route, "sanitized", f.result
		case "original released":
			base.Kind, base.Ref, base.Result = "release", f.releaseID, "released"
			base.Rcpt, base.Detail = f.to, "by "+f.by
		default:
			return dst // maintenance lines
		}
	case "audit":
		// Changes to queued messages are steps of those messages; other
		// audit lines are kept in the audit table, not the trace.
		action := f.action
		if !strings.HasPrefix(action, "queue-") {
			return dst
		}
		base.Kind, base.QueueID, base.Result = "queue", f.object, strings.TrimPrefix(action, "queue-")
		base.Sender, base.Detail = "", "by "+f.actor
	}
	return append(dst, base)
}
