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

// fields are the attributes of one record: a record carries a dozen, so
// a slice searched from the end (the last wins) beats a map.
type fields []slog.Attr

func (f fields) value(k string) (slog.Value, bool) {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].Key == k {
			return f[i].Value, true
		}
	}
	return slog.Value{}, false
}

func (f fields) str(k string) string {
	v, ok := f.value(k)
	if !ok {
		return ""
	}
	return v.Resolve().String()
}

func (f fields) int(k string) int {
	v, ok := f.value(k)
	if !ok {
		return 0
	}
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
	var attrs [32]slog.Attr // a record's usual dozen, without allocating
	f := append(fields(attrs[:0]), bound...)
	rec.Attrs(func(a slog.Attr) bool {
		f = append(f, a)
		return true
	})
	base := store.Event{Instance: instance, At: rec.Time, Kind: kind, QueueID: f.str("id"), Session: f.str("session"),
		Client: f.str("client"), Sender: f.str("from")}
	switch kind {
	case "receive":
		if rec.Message != "accepted" {
			// Held at receipt (a milter's quarantine): a queue step.
			base.Kind, base.Result, base.Detail = "queue", "held", rec.Message+": "+f.str("reason")
			return append(dst, base)
		}
		base.Result, base.MessageID, base.Rule = "accepted", f.str("message_id"), f.str("rules")
		base.Detail = strconv.Itoa(f.int("size")) + " bytes from " + base.Client + " (HELO " + f.str("helo") + "), source " + f.str("source")
		if u := f.str("auth"); u != "" {
			base.Detail += ", AUTH " + u
		}
		for r := range strings.SplitSeq(f.str("rcpts"), ",") {
			e := base
			e.Rcpt = r
			dst = append(dst, e)
		}
		return dst
	case "reject":
		base.Result, base.Rule, base.Code = rec.Message, f.str("rule"), f.int("code")
		if base.Rule == "" {
			base.Rule = f.str("reason")
		}
		if f.str("stage") == "rcpt" {
			base.Rcpt = f.str("arg")
		}
		base.Detail = strings.TrimSpace(f.str("stage") + ": " + f.str("enhanced") + " " + f.str("reason"))
		if by := f.str("by"); by != "" {
			base.Detail += " (" + by + ")"
		}
		if e := f.str("error"); e != "" {
			base.Detail += ": " + e
		}
	case "send", "fail":
		switch rec.Message {
		case "delivery":
			base.Rcpt, base.Result, base.Code, base.Rule = f.str("rcpt"), f.str("result"), f.int("code"), f.str("hop")
			via := f.str("hop")
			if r := f.str("remote"); r != "" {
				via += " " + r // a file or program hop has no address
			}
			base.Detail = "attempt " + strconv.Itoa(f.int("attempt")) + " via " + via + ": " + f.str("reply")
		case "dsn queued", "fail report queued":
			base.Kind, base.Ref, base.Rcpt = "dsn", f.str("dsn"), f.str("to")
			base.Result = f.str("action")
			if base.Result == "" {
				base.Result = "report"
			}
			base.Detail = rec.Message
		default:
			base.Result, base.Detail = "error", rec.Message+": "+f.str("error")
		}
	case "sanitize":
		switch rec.Message {
		case "sanitize":
			base.Ref, base.Rule, base.Result, base.Detail = f.str("release_id"), f.str("route"), "sanitized", f.str("result")
		case "original released":
			base.Kind, base.Ref, base.Result = "release", f.str("release_id"), "released"
			base.Rcpt, base.Detail = f.str("to"), "by "+f.str("by")
		default:
			return dst // maintenance lines
		}
	case "audit":
		// Changes to queued messages are steps of those messages; other
		// audit lines are kept in the audit table, not the trace.
		action := f.str("action")
		if !strings.HasPrefix(action, "queue-") {
			return dst
		}
		base.Kind, base.QueueID, base.Result = "queue", f.str("object"), strings.TrimPrefix(action, "queue-")
		base.Sender, base.Detail = "", "by "+f.str("actor")
	}
	return append(dst, base)
}
