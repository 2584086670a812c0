package logsink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// layout is where the fields of one kind go on an epost line: fixed
// tab-separated columns in E-Post's order (docs/logging.md gives the
// mapping). Attributes outside the columns follow as key=value, so nothing
// a call site logs is lost. usualMsg is the message every record of the
// kind carries; any other message is kept as msg=.
type layout struct {
	columns  []string
	usualMsg string
}

var layouts = map[string]layout{
	// acceptlog: one line per connection event.
	"accept": {columns: []string{"client", "listener", "msg", "reason"}},
	// receivelog: one line per accepted message, envelope as received
	// and as rewritten.
	"receive": {columns: []string{"client", "session", "id", "helo", "auth", "orig_from", "from", "orig_rcpts", "rcpts", "size", "tls", "rules"}, usualMsg: "accepted"},
	// E-Post writes refusals into receivelog; the columns keep the
	// client and envelope first so one grep finds both.
	"reject": {columns: []string{"client", "session", "stage", "code", "enhanced", "from", "arg", "rule", "reason"}, usualMsg: "refused"},
	// senderlog and faillog: one line per recipient and attempt.
	"send":   {columns: []string{"id", "from", "rcpt", "hop", "remote", "result", "code", "reply", "attempt", "delay_s"}, usualMsg: "delivery"},
	"fail":   {columns: []string{"id", "from", "rcpt", "hop", "remote", "result", "code", "reply", "attempt", "delay_s"}, usualMsg: "delivery"},
	"auth":   {columns: []string{"client", "session", "user", "mechanism", "msg", "reason"}},
	"reload": {columns: []string{"msg", "accounts", "error"}},
}

// timeLayout is E-Post's log time stamp: local time, to the second.
const timeLayout = "2006/01/02 15:04:05"

// epostHandler writes the epost layout.
type epostHandler struct {
	mu     *sync.Mutex
	w      io.Writer
	level  slog.Leveler
	loc    *time.Location
	attrs  []slog.Attr // bound by WithAttrs, keys already prefixed
	prefix string      // open groups, "a.b."
}

func newEpostHandler(w io.Writer, level slog.Leveler, loc *time.Location) *epostHandler {
	if loc == nil {
		loc = time.Local
	}
	return &epostHandler{mu: new(sync.Mutex), w: w, level: level, loc: loc}
}

func (h *epostHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *epostHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), flattenAttrs(h.prefix, as)...)
	return &c
}

func (h *epostHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

func (h *epostHandler) Handle(_ context.Context, r slog.Record) error {
	all := make([]slog.Attr, 0, len(h.attrs)+r.NumAttrs())
	all = append(all, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		a.Value = a.Value.Resolve()
		if h.prefix == "" && a.Value.Kind() != slog.KindGroup {
			// The common case, without the slice flattenAttrs builds.
			if !a.Equal(slog.Attr{}) {
				all = append(all, a)
			}
			return true
		}
		all = append(all, flattenAttrs(h.prefix, []slog.Attr{a})...)
		return true
	})
	kind := ""
	for _, a := range all {
		if a.Key == "kind" {
			kind = a.Value.String()
		}
	}
	buf := make([]byte, 0, 256)
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	buf = t.In(h.loc).AppendFormat(buf, timeLayout)
	lay, ok := layouts[kind]
	if !ok {
		// Records outside the per-kind logs: level and message first.
		buf = append(buf, '\t')
		buf = append(buf, r.Level.String()...)
		buf = append(buf, '\t')
		buf = appendColumn(buf, r.Message)
		if kind != "" {
			buf = append(buf, "\tkind="...)
			buf = appendValue(buf, kind)
		}
	} else {
		for _, col := range lay.columns {
			buf = append(buf, '\t')
			if col == "msg" {
				buf = appendColumn(buf, r.Message)
				continue
			}
			buf = appendColumn(buf, lookup(all, col))
		}
		if !contains(lay.columns, "msg") && r.Message != lay.usualMsg {
			buf = append(buf, "\tmsg="...)
			buf = appendValue(buf, r.Message)
		}
	}
	for _, a := range all {
		if a.Key == "kind" || ok && a.Key != "msg" && contains(lay.columns, a.Key) {
			continue
		}
		buf = append(buf, '\t')
		buf = append(buf, a.Key...)
		buf = append(buf, '=')
		buf = appendValue(buf, valueString(a.Value))
	}
	buf = append(buf, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lookup returns the last value bound to key (a record attribute wins
// over one bound earlier with With).
func lookup(all []slog.Attr, key string) string {
	v := ""
	for _, a := range all {
		if a.Key == key {
			v = valueString(a.Value)
		}
	}
	return v
}

// flattenAttrs resolves values and spells group members as dotted keys.
func flattenAttrs(prefix string, as []slog.Attr) []slog.Attr {
	var out []slog.Attr
	for _, a := range as {
		a.Value = a.Value.Resolve()
		if a.Value.Kind() == slog.KindGroup {
			p := prefix
			if a.Key != "" {
				p += a.Key + "."
			}
			out = append(out, flattenAttrs(p, a.Value.Group())...)
			continue
		}
		if a.Equal(slog.Attr{}) {
			continue
		}
		a.Key = prefix + a.Key
		out = append(out, a)
	}
	return out
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	default:
		return v.String()
	}
}

// appendColumn writes a column value: "-" when empty, control characters,
// backslashes and invalid UTF-8 escaped, so a client's HELO can neither
// split a line nor shift the columns.
func appendColumn(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, '-')
	}
	return appendEscaped(buf, s, false)
}

// appendEscaped writes s with control characters, backslashes, invalid
// UTF-8 and Unicode line separators escaped; dq escapes '"' too.
func appendEscaped(buf []byte, s string, dq bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if dq && c == '"' {
			buf = append(buf, `\"`...)
			i++
			continue
		}
		if c >= 0x20 && c < 0x7f && c != '\\' {
			buf = append(buf, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == '\\':
			buf = append(buf, `\\`...)
		case c == '\t':
			buf = append(buf, `\t`...)
		case c == '\n':
			buf = append(buf, `\n`...)
		case c == '\r':
			buf = append(buf, `\r`...)
		case c < 0x80 || r == utf8.RuneError && size == 1 || r == 0x85 || r == 0x2028 || r == 0x2029:
			for _, b := range []byte(s[i : i+size]) {
				buf = append(buf, `\x`...)
				buf = strconv.AppendUint(buf, uint64(b)>>4, 16)
				buf = strconv.AppendUint(buf, uint64(b)&15, 16)
			}
		default:
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return buf
}

// appendValue writes the value of a key=value field: quoted when it holds
// a space or '=' so the fields still split on tabs and the first '='.
func appendValue(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, `""`...)
	}
	if strings.ContainsAny(s, " =\"") {
		buf = append(buf, '"')
		buf = appendEscaped(buf, s, true)
		return append(buf, '"')
	}
	return appendEscaped(buf, s, false)
}
