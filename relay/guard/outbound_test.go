package guard

import (
	"strings"
	"testing"
	"time"
)

func boolp(v bool) *bool { return &v }
func intp(v int) *int    { return &v }

func testOutbound(t *testing.T) *Outbound {
	t.Helper()
	o, err := NewOutbound(OutboundConfig{
		InsideDomains: []string{"*.pref.lg.jp"},
		Groups: []GroupConfig{
			{Name: "somu", Members: []string{"bucho@city.lg.jp", "ldap-group:cn=kacho,ou=groups,dc=city"}, Delegates: []string{"kakari@city.lg.jp"}},
			{Name: "senders", Members: []string{"*@somu.city.lg.jp"}},
		},
		Rules: []OutboundRuleConfig{
			{Name: "night", Times: []string{"22:00-06:00"}, Hold: 30 * time.Minute},
			{Name: "big", MinMessageBytes: 1 << 20, Destination: DestOutside, Approve: "somu"},
			{Name: "files-out", Destination: DestOutside, Attachment: boolp(true), SenderGroups: []string{"senders"}, Approve: "somu"},
			{Name: "many", MinOutside: 3, BccOutside: intp(2)},
			{Name: "partner", Recipients: []string{"*@partner.example"}, CopyTo: "bucho@city.lg.jp"},
			{Name: "out", Destination: DestOutside, Hold: 5 * time.Minute},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOutboundMatch(t *testing.T) {
	o := testOutbound(t)
	out := func(a ...string) []OutboundRcpt {
		var r []OutboundRcpt
		for _, s := range a {
			r = append(r, OutboundRcpt{Addr: s, Inside: strings.HasSuffix(s, "lg.jp")})
		}
		return r
	}
	day := at(1, "10:00")
	for _, c := range []struct {
		name string
		m    OutboundMessage
		rule string
		acts string
		skip string
	}{
		{"inside only", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("b@city.lg.jp"), Size: 10, Attachments: 0, At: day}, "", "none", ""},
		{"at night", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("b@city.lg.jp"), Size: 10, At: at(1, "23:00")}, "night", "hold 30m0s", ""},
		{"large outside", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("x@example.com"), Size: 2 << 20, At: day},
			"big", "approve somu (time-out 24h0m0s: reject)", ""},
		{"a file from somu", OutboundMessage{Senders: []string{"Tanaka@somu.city.lg.jp"}, Rcpts: out("x@example.com"), Size: 100, Attachments: 1, At: day},
			"files-out", "approve somu (time-out 24h0m0s: reject)", ""},
		{"a file from elsewhere", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("x@example.com"), Size: 100, Attachments: 1, At: day},
			"out", "hold 5m0s", ""},
		{"the rewritten sender counts", OutboundMessage{Senders: []string{"t@somu.city.example.jp", "t@somu.city.lg.jp"}, Rcpts: out("x@example.com"),
			Size: 100, Attachments: 2, At: day}, "files-out", "approve somu (time-out 24h0m0s: reject)", ""},
		{"many outside", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("x@a.example", "y@b.example", "z@c.example"), Size: 10, At: day},
			"many", "bcc-outside 2", ""},
		{"partner inside too", OutboundMessage{Senders: []string{"a@city.lg.jp"}, Rcpts: out("b@city.lg.jp", "p@partner.example"), Size: 10, At: day},
			"partner", "copy-to bucho@city.lg.jp", ""},
		{"no message: content rules skipped", OutboundMessage{Senders: []string{"a@somu.city.lg.jp"}, Rcpts: out("x@example.com"), Size: -1, Attachments: -1, At: day},
			"out", "hold 5m0s", "big,files-out"},
	} {
		v := o.Match(c.m)
		if v.Rule != c.rule || v.Actions() != c.acts || strings.Join(v.Skipped, ",") != c.skip {
			t.Errorf("%s: rule %q actions %q skipped %v (%s), want %q %q %q", c.name, v.Rule, v.Actions(), v.Skipped, v.Reason, c.rule, c.acts, c.skip)
		}
	}
}

func TestOutboundInsideAndGroups(t *testing.T) {
	o := testOutbound(t)
	for a, want := range map[string]bool{"x@city.pref.lg.jp": true, "x@pref.lg.jp": false, "x@example.com": false, "": false} {
		if got := o.InsideDomain(a); got != want {
			t.Errorf("InsideDomain(%q) = %v", a, got)
		}
	}
	g, _ := o.Group("somu")
	inKacho := func(dn string) bool { return dn == "cn=kacho,ou=groups,dc=city" }
	for _, c := range []struct {
		who              string
		ldap             func(string) bool
		member, delegate bool
	}{
		{"bucho@city.lg.jp", nil, true, false},
		{"BUCHO@City.lg.jp", nil, true, false},
		{"kakari@city.lg.jp", nil, false, true},
		{"someone@city.lg.jp", inKacho, true, false},
		{"someone@city.lg.jp", nil, false, false},
	} {
		if m, d := g.Member(c.who, c.ldap), g.Delegate(c.who, c.ldap); m != c.member || d != c.delegate {
			t.Errorf("%s: member %v delegate %v", c.who, m, d)
		}
	}
	if strings.Join(g.Notify, ",") != "bucho@city.lg.jp" || strings.Join(g.DelegateNotify, ",") != "kakari@city.lg.jp" {
		t.Errorf("notify: %v, delegates %v", g.Notify, g.DelegateNotify)
	}
}

func TestOutboundConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  OutboundConfig
		want string
	}{
		{OutboundConfig{InsideDomains: []string{"a@b"}}, "inside_domains[0]: \"a@b\" is not a domain"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "bad name"}}}, "groups[0].name:"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g"}, {Name: "g"}}}, "groups[1].name: \"g\" is already the name"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", OnTimeout: "later"}}}, "groups[0].on_timeout: \"later\" is not a time-out action"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", Timeout: time.Second}}}, "groups[0].timeout: must be at least 1m"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", Members: []string{"*"}}}}, "groups[0].members[0]: \"*\": name people"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", Members: []string{"ldap-group:kacho"}}}}, "groups[0].members[0]: \"ldap-group:kacho\": not a DN"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{}}}, "rules[0]: the rule has no action"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{Approve: "nobody"}}}, "rules[0].approve: \"nobody\" is not a group"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", Members: []string{"a@b.jp"}}},
			Rules: []OutboundRuleConfig{{Approve: "g", Hold: time.Minute}}}, "rules[0].hold: hold and approve exclude each other"},
		{OutboundConfig{Groups: []GroupConfig{{Name: "g", Members: []string{"ldap-group:cn=x,dc=y"}}},
			Rules: []OutboundRuleConfig{{SenderGroups: []string{"g"}, Hold: time.Minute}}}, "rules[0].sender_groups[0]: group \"g\" names an LDAP group"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{Destination: "elsewhere", Hold: time.Minute}}}, "rules[0].destination: \"elsewhere\" is not inside or outside"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{BccOutside: intp(-1)}}}, "rules[0].bcc_outside: must not be negative"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{CopyTo: "nobody"}}}, "rules[0].copy_to: \"nobody\" is not an address"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{Times: []string{"Funday"}, Hold: time.Minute}}}, "rules[0].times[0]:"},
		{OutboundConfig{Rules: []OutboundRuleConfig{{Name: "a", Hold: time.Minute}, {Name: "a", Hold: time.Minute}}}, "rules[1].name: \"a\" is already the name of rules[0]"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
}

func TestOutboundWarnings(t *testing.T) {
	o, err := NewOutbound(OutboundConfig{
		Groups: []GroupConfig{{Name: "empty"}, {Name: "nobody-mailed", Members: []string{"*@city.lg.jp"}}, {Name: "no-senders"}},
		Rules: []OutboundRuleConfig{
			{MinRecipients: 500, Hold: time.Minute},
			{MinMessageBytes: 1 << 40, Hold: time.Minute},
			{Destination: DestInside, MinOutside: 1, Hold: time.Minute},
			{Destination: DestInside, Recipients: []string{"*@example.com"}, Hold: time.Minute},
			{SenderGroups: []string{"no-senders"}, Hold: time.Minute},
			{Destination: DestOutside, Approve: "empty"},
			{Destination: DestOutside, Approve: "nobody-mailed"},
			{Name: "all", BccOutside: intp(5)},
			{Hold: time.Minute},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range o.Warnings(OutboundLimits{MaxRecipients: 100, MaxMessageBytes: 25 << 20, Ours: func(d string) bool { return d == "city.lg.jp" }}) {
		got = append(got, w.Key+": "+w.Text)
	}
	for _, want := range []string{
		"rules[0].min_recipients: never matches: 500 is more than relay.limits.max_recipients (100)",
		"rules[1].min_message_bytes: never matches",
		"rules[2].min_outside: never matches: destination inside",
		"rules[3].recipients: never matches: every pattern names a domain outside",
		"rules[4].sender_groups: never matches: group \"no-senders\" has no member",
		"rules[8]: never matches: rules[7] (all) before it matches every message",
		"groups[0]: approval group \"empty\" has no member and no delegate",
		"groups[1].notify: approval group \"nobody-mailed\" names no plain address",
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}
		if !found {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 8 {
		t.Errorf("%d warnings, want 8:\n%s", len(got), strings.Join(got, "\n"))
	}
}
