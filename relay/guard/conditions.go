package guard

// Rule conditions by listener and by time window: relay permission by the
// interface a connection arrived on (one listener per interface) and by
// office hours.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// window is a weekly time window: some days of the week, and a span of
// the day from `from` (inclusive) to `to` (exclusive), in minutes after
// midnight. A span that ends before it starts runs past midnight and
// belongs to the day it starts on: "Fri 22:00-06:00" is Friday night.
type window struct {
	days     [7]bool // by time.Weekday
	from, to int
}

type windowList []window

// contains reports whether t falls in one of the windows; an empty list
// is every time.
func (l windowList) contains(t time.Time) bool {
	if len(l) == 0 {
		return true
	}
	d, m := t.Weekday(), t.Hour()*60+t.Minute()
	prev := (d + 6) % 7
	for _, w := range l {
		if w.from < w.to {
			if w.days[d] && m >= w.from && m < w.to {
				return true
			}
			continue
		}
		if w.days[d] && m >= w.from || w.days[prev] && m < w.to {
			return true
		}
	}
	return false
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"日": time.Sunday, "月": time.Monday, "火": time.Tuesday, "水": time.Wednesday,
	"木": time.Thursday, "金": time.Friday, "土": time.Saturday,
}

// parseWindow reads "[DAYS] [HH:MM-HH:MM]": DAYS is a comma list of days
// or day ranges (Mon-Fri, Sat,Sun, 月-金; a range may wrap: Fri-Mon);
// without DAYS every day, without a span the whole day. 24:00 may end a
// span.
func parseWindow(s string) (window, error) {
	var w window
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return w, fmt.Errorf("%q: want [DAYS] [HH:MM-HH:MM], e.g. \"Mon-Fri 08:30-17:15\"", s)
	}
	span := ""
	switch {
	case len(f) == 2:
		if err := parseDays(f[0], &w.days); err != nil {
			return w, fmt.Errorf("%q: %v", s, err)
		}
		span = f[1]
	case strings.Contains(f[0], ":"):
		w.days = [7]bool{true, true, true, true, true, true, true}
		span = f[0]
	default:
		if err := parseDays(f[0], &w.days); err != nil {
			return w, fmt.Errorf("%q: %v", s, err)
		}
	}
	if span == "" {
		w.from, w.to = 0, 24*60
		return w, nil
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return w, fmt.Errorf("%q: the span %q is not HH:MM-HH:MM", s, span)
	}
	var err error
	if w.from, err = parseClock(a, false); err != nil {
		return w, fmt.Errorf("%q: %v", s, err)
	}
	if w.to, err = parseClock(b, true); err != nil {
		return w, fmt.Errorf("%q: %v", s, err)
	}
	if w.from == w.to {
		return w, fmt.Errorf("%q: the span is empty", s)
	}
	return w, nil
}

func parseDays(s string, days *[7]bool) error {
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		da, ok := dayNames[strings.ToLower(a)]
		if !ok {
			return fmt.Errorf("%q is not a day (Mon..Sun or 月..日)", a)
		}
		if !isRange {
			days[da] = true
			continue
		}
		db, ok := dayNames[strings.ToLower(b)]
		if !ok {
			return fmt.Errorf("%q is not a day (Mon..Sun or 月..日)", b)
		}
		for d := da; ; d = (d + 1) % 7 {
			days[d] = true
			if d == db {
				break
			}
		}
	}
	return nil
}

// parseClock reads HH:MM as minutes after midnight; end allows 24:00.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 ||
		hh > 24 || hh == 24 && (!end || mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 00:00 to 24:00)", s)
	}
	return hh*60 + mm, nil
}

// compileConditions reads a rule's listener and time conditions.
func compileConditions(key string, rc RuleConfig, r *rule) []error {
	var errs []error
	seen := map[string]bool{}
	for i, l := range rc.Listeners {
		if l == "" {
			errs = append(errs, fmt.Errorf("%s.listeners[%d]: empty name", key, i))
		}
		seen[l] = true
	}
	r.listeners = seen
	if len(rc.Listeners) == 0 {
		r.listeners = nil
	}
	for i, s := range rc.Times {
		w, err := parseWindow(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.times[%d]: %v", key, i, err))
			continue
		}
		r.times = append(r.times, w)
	}
	return errs
}

// matchWhereWhen checks the listener and time conditions of a rule.
func (k *check) matchWhereWhen(r *rule) bool {
	if r.listeners != nil && !r.listeners[k.c.Listener] {
		return false
	}
	return r.times.contains(k.at)
}

// ListenerRef is a rule's reference to listeners by name, for the relay
// to check against its listeners.
type ListenerRef struct {
	Rule  int
	Names []string
	// Alone: an allow rule whose only client condition is the listener;
	// that is safe only on a listener bound to one interface's address.
	Alone bool
}

// ListenerRefs lists the rules that name listeners.
func (c Config) ListenerRefs() []ListenerRef {
	var out []ListenerRef
	for i, r := range c.Rules {
		if len(r.Listeners) > 0 {
			out = append(out, ListenerRef{Rule: i, Names: r.Listeners,
				Alone: r.Action == "allow" && len(r.Networks) == 0 && len(r.Recipients) == 0 && !authUsersSet(r.Auth)})
		}
	}
	return out
}

func authUsersSet(a []string) bool {
	return len(a) > 0 && !(len(a) == 1 && (a[0] == "any" || a[0] == "none"))
}
