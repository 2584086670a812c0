package guard

import (
	"strings"
	"testing"
	"time"
)

// at returns a time in the local zone the guard reads, in December 2026
// (day 0 is November 30): 2026-11-30 is a Monday, 12-04 a Friday, 12-05 a
// Saturday, 12-06 a Sunday.
func at(day int, hhmm string) time.Time {
	c, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 12, day, c.Hour(), c.Minute(), 0, 0, time.Local)
}

func TestWindows(t *testing.T) {
	// 2026-11-30 Mon, 12-04 Fri, 12-05 Sat, 12-06 Sun.
	for _, c := range []struct {
		spec string
		at   time.Time
		want bool
	}{
		{"Mon-Fri 08:30-17:15", at(0, "08:30"), true},
		{"Mon-Fri 08:30-17:15", at(0, "17:14"), true},
		{"Mon-Fri 08:30-17:15", at(0, "17:15"), false},
		{"Mon-Fri 08:30-17:15", at(0, "08:29"), false},
		{"Mon-Fri 08:30-17:15", at(6, "10:00"), false}, // Sunday
		{"月-金 08:30-17:15", at(0, "10:00"), true},
		{"sat,sun", at(6, "23:59"), true},
		{"sat,sun", at(7, "00:00"), false},
		{"Fri-Mon", at(0, "12:00"), true}, // a range that wraps
		{"Fri-Mon", at(5, "12:00"), true},
		{"Fri-Mon", at(1, "12:00"), false}, // Tuesday
		{"22:00-06:00", at(0, "23:00"), true},
		{"22:00-06:00", at(0, "05:59"), true},
		{"22:00-06:00", at(0, "06:00"), false},
		{"Fri 22:00-06:00", at(5, "03:00"), true},  // Saturday early: Friday night
		{"Fri 22:00-06:00", at(4, "03:00"), false}, // Friday early: Thursday night
		{"Fri 22:00-06:00", at(4, "22:00"), true},
		{"Sat 12:00-24:00", at(5, "23:59"), true},
		{"Sat 12:00-24:00", at(6, "00:00"), false},
	} {
		w, err := parseWindow(c.spec)
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if got := (windowList{w}).contains(c.at); got != c.want {
			t.Errorf("%q at %s: got %v, want %v", c.spec, c.at.Format("Mon 2006-01-02 15:04"), got, c.want)
		}
	}
}

func TestWindowErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":                      "want [DAYS] [HH:MM-HH:MM]",
		"Mon-Fri 08:30":         "is not HH:MM-HH:MM",
		"Mon-Fry 08:30-17:00":   `"Fry" is not a day`,
		"Mon 8:3-17:00":         `"8:3" is not a time of day`,
		"Mon 08:00-24:01":       `"24:01" is not a time of day`,
		"Mon 24:00-08:00":       `"24:00" is not a time of day`,
		"Mon 08:00-08:00":       "the span is empty",
		"Mon 08:00-09:00 extra": "want [DAYS]",
	} {
		_, err := parseWindow(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", spec, err, want)
		}
	}
}

// TestListenerAndTimeRules: relay allowed on the inside listener (the SBS
// 2003 article's method 3), and from a branch office network only during
// office hours; outside them the branch falls through to no_relay.
func TestListenerAndTimeRules(t *testing.T) {
	c := DefaultConfig()
	c.Rules = []RuleConfig{
		{Name: "inside-interface", Action: "allow", Listeners: []string{"inside"}},
		{Name: "branch-office-hours", Action: "allow", Networks: []string{"10.20.0.0/16"}, Times: []string{"Mon-Fri 08:30-17:15"}},
		{Name: "closed", Action: "no_relay"},
	}
	g := newTestGuard(t, c)
	monday10 := at(0, "10:00")
	g.SetClock(func() time.Time { return monday10 })
	cl := func(ip, listener string, when time.Time) Client {
		k := client(ip, "")
		k.Listener, k.At = listener, when
		return k
	}
	for _, tc := range []struct {
		name string
		c    Client
		code int
		rule string
	}{
		{"inside listener relays", cl("198.18.0.5", "inside", time.Time{}), 0, "inside-interface"},
		{"outside listener does not", cl("198.18.0.5", "outside", time.Time{}), 554, "closed"},
		{"unnamed listener does not", cl("198.18.0.5", "", time.Time{}), 554, "closed"},
		{"branch in office hours (guard clock)", cl("10.20.1.1", "outside", time.Time{}), 0, "branch-office-hours"},
		{"branch at night", cl("10.20.1.1", "outside", at(0, "22:00")), 554, "closed"},
		{"branch on Sunday", cl("10.20.1.1", "outside", at(6, "10:00")), 554, "closed"},
	} {
		v := g.CheckRcpt(tc.c, "someone@partner.example", "x@example.com")
		if v.Code != tc.code && !(tc.code == 0 && v.Accepted()) || v.Rule != tc.rule {
			t.Errorf("%s: got %d %s (%s), want %d %s", tc.name, v.Code, v.Rule, v.Reason, tc.code, tc.rule)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	c := DefaultConfig()
	c.Rules = []RuleConfig{
		{Name: "a", Action: "deny", Listeners: []string{""}},
		{Name: "b", Action: "deny", Times: []string{"Mon 25:00-26:00"}},
	}
	err := c.Validate()
	for _, want := range []string{"rules[0].listeners[0]: empty name", `rules[1].times[0]: "Mon 25:00-26:00": "25:00" is not a time of day`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	refs := Config{Rules: []RuleConfig{
		{Action: "allow", Listeners: []string{"inside"}},
		{Action: "allow", Listeners: []string{"inside"}, Networks: []string{"10.0.0.0/8"}},
		{Action: "deny"},
	}}.ListenerRefs()
	if len(refs) != 2 || !refs[0].Alone || refs[1].Alone || refs[1].Rule != 1 {
		t.Errorf("ListenerRefs: %+v", refs)
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"Mon-Fri 08:30-17:15", "22:00-06:00", "土,日", "Fri-Mon 00:00-24:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWindow(s)
		if err != nil {
			return
		}
		if w.from < 0 || w.from >= 24*60 || w.to <= 0 || w.to > 24*60 || w.from == w.to {
			t.Fatalf("%q: span %d-%d", s, w.from, w.to)
		}
	})
}
