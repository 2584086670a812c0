package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/guard"
)

func withOutbound(t *testing.T, p *Policy, c guard.OutboundConfig) *Policy {
	t.Helper()
	o, err := guard.NewOutbound(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := p.p
	parts.Outbound = o
	return New(parts)
}

func TestOutbound(t *testing.T) {
	ten := 1
	yes := true
	p := withOutbound(t, fixture(t, false), guard.OutboundConfig{
		InsideDomains: []string{"pref.lg.jp"},
		Groups:        []guard.GroupConfig{{Name: "kacho", Members: []string{"tanaka@test.jp"}}},
		Rules: []guard.OutboundRuleConfig{
			{Name: "files", Destination: guard.DestOutside, Attachment: &yes, Approve: "kacho"},
			{Name: "bcc", BccOutside: &ten},
		},
	})
	inner := Conn{IP: innerIP, Helo: "x", Mode: ModeMX}
	internet := Conn{IP: internetIP, Helo: "x", Mode: ModeMX}
	header := []byte("From: user1@test.jp\r\nTo: a@x.example, b@y.example, c@pref.lg.jp\r\nSubject: s\r\n\r\n")
	decide := func(c Conn, rcpts []string, attachments int) OutboundDecision {
		from := "user1@test.jp"
		if c == internet {
			from = "someone@example.org"
		}
		var decs []Decision
		for _, r := range rcpts {
			d := p.Rcpt(c, from, r)
			if !d.Accepted() {
				t.Fatalf("rcpt %s: %s", r, d.Reason)
			}
			decs = append(decs, d)
		}
		m, d := p.Data(c, from, decs, header)
		if !d.Accepted() {
			t.Fatalf("data: %s", d.Reason)
		}
		return p.Outbound(c, OutboundInput{Msg: m, Header: header, Size: 100, Attachments: attachments})
	}
	d := decide(inner, []string{"a@x.example", "b@y.example", "c@pref.lg.jp"}, 1)
	if d.Rule != "files" || d.Approve == nil || d.Approve.Name != "kacho" {
		t.Errorf("a file outside: %s", d.Summary())
	}
	d = decide(inner, []string{"a@x.example", "b@y.example", "c@pref.lg.jp"}, 0)
	if d.Rule != "bcc" || len(d.Bcc.Moved) != 2 || !strings.Contains(string(d.Bcc.Header), "To: c@pref.lg.jp, undisclosed-recipients:;") {
		t.Errorf("bcc: %s\n%s", d.Summary(), d.Bcc.Header)
	}
	// An alias of ours resolved outside (helpdesk is outsourced): the
	// recipient counts where it is delivered.
	d = decide(inner, []string{"info@test.jp"}, 1)
	if d.Rule != "files" {
		t.Errorf("an alias delivered outside: %s", d.Summary())
	}
	d = decide(inner, []string{"user1@city.jp"}, 1)
	if d.Rule != "bcc" {
		t.Errorf("a regional address rewritten into ours is inside: %s", d.Summary())
	}
	if d := decide(internet, []string{"tanaka@test.jp"}, 1); d.Applies || !strings.Contains(d.Summary(), "internet") {
		t.Errorf("internet mail: %s", d.Summary())
	}
	if !p.OutboundNeedsContent(inner) || p.OutboundNeedsContent(internet) {
		t.Error("content needed: inner yes, internet no")
	}
	if fixture(t, false).OutboundApplies(inner) {
		t.Error("no rules, nothing applies")
	}
}

// BenchmarkOutbound is the outbound rules' decision for a message to 20
// outside and 5 inside recipients whose To/Cc is rewritten (bcc_outside),
// the costliest case without a message body to read.
func BenchmarkOutbound(b *testing.B) {
	five := 5
	p := fixture(b, false)
	o, err := guard.NewOutbound(guard.OutboundConfig{Rules: []guard.OutboundRuleConfig{
		{Name: "files", Destination: guard.DestOutside, MinRecipients: 100, Hold: time.Minute},
		{Name: "bcc", MinOutside: 10, BccOutside: &five},
	}})
	if err != nil {
		b.Fatal(err)
	}
	parts := p.p
	parts.Outbound = o
	p = New(parts)
	inner := Conn{IP: innerIP, Helo: "x", Mode: ModeMX}
	var to []string
	m := Message{From: "user1@test.jp", Rewritten: "user1@test.jp"}
	for i := range 25 {
		a := fmt.Sprintf("person%d@example%d.com", i, i)
		if i >= 20 {
			a = fmt.Sprintf("user%d@test.jp", i)
		}
		to = append(to, a)
		m.Rcpts = append(m.Rcpts, Queued{Index: i, Addr: a})
	}
	header := []byte("From: user1@test.jp\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: s\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Outbound(inner, OutboundInput{Msg: m, Header: header, Size: -1, Attachments: -1}); len(d.Bcc.Moved) != 20 {
			b.Fatal(d.Summary())
		}
	}
}
