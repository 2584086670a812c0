package gateway

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// copiesSections is a gateway whose copies go into folders, one a route:
// inner (no set), lgwan (*.lg.jp, set to-lgwan), partner.example (set
// merge, which maps two addresses to one) and the internet (smart host,
// set to-internet, inner Received fields removed); hold.example and
// partner.test (set merge) go to an SMTP sink that defers temp@, which
// keeps a message in the queue so that a test can read it as queued.
func copiesSections(t *testing.T, holdSink string) (Sections, string) {
	t.Helper()
	sec, dir := testSections(t)
	table := filepath.Join(dir, "lgwan.tsv")
	if err := os.WriteFile(table, []byte("city.toyokawa.aichi.jp\tcity.toyokawa.lg.jp\ncity.nagoya.jp\tcity.nagoya.lg.jp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sec.Accounts.Domains = append(sec.Accounts.Domains, accounts.DomainConfig{Name: "city.toyokawa.aichi.jp"})
	sec.Accounts.Aliases = []accounts.AliasConfig{{Alias: "*@city.toyokawa.aichi.jp", Target: "*@city.toyokawa.lg.jp"}}
	inner := []string{"inner", "authenticated"}
	envAndHeader := []string{"envelope_sender", "header_sender", "header_recipient"}
	sec.Rewrite = rewrite.Config{
		Rules: []rewrite.RuleConfig{
			{Name: "recipients-to-lg", Table: table, Classes: []string{"envelope_recipient"}, Source: inner},
			// An older style: a receive-time sender rule with a recipient
			// condition, which now holds per copy.
			{Name: "authenticated-sender-to-lg", Table: table, Classes: []string{"envelope_sender", "header_sender"},
				Source: []string{"authenticated"}, RecipientDomain: []string{"*.lg.jp"}},
		},
		Sets: []rewrite.SetConfig{
			{Name: "to-lgwan", Rules: []rewrite.RuleConfig{{Name: "lgwan-addresses", Table: table, Classes: envAndHeader, Source: []string{"inner"}}}},
			{Name: "to-internet", Rules: []rewrite.RuleConfig{{Name: "internet-addresses", Table: table, Direction: "reverse",
				Classes: envAndHeader, Source: inner}}},
			{Name: "merge", Rules: []rewrite.RuleConfig{
				{Name: "old-to-new", Address: "old@partner.example", Replace: "new@partner.example", Source: []string{"inner", "authenticated", "internet"}},
				{Name: "old-to-new-smtp", Address: "old@partner.test", Replace: "new@partner.test", Source: []string{"inner", "authenticated", "internet"}},
			}},
		},
	}
	folder := func(name string) []string { return []string{"dir:" + filepath.Join(dir, name)} }
	sec.Routing.Routes = append(sec.Routing.Routes,
		routing.RouteConfig{Name: "lgwan", Domain: "*.lg.jp", TargetConfig: routing.TargetConfig{Targets: folder("lgwan"), Rewrite: "to-lgwan"}},
		routing.RouteConfig{Name: "partner", Domain: "partner.example", TargetConfig: routing.TargetConfig{Targets: folder("partner"), Rewrite: "merge"}},
		routing.RouteConfig{Name: "hold", Domain: "hold.example", TargetConfig: routing.TargetConfig{Targets: []string{holdSink}, TLS: "none"}},
		routing.RouteConfig{Name: "partner-smtp", Domain: "partner.test", TargetConfig: routing.TargetConfig{Targets: []string{holdSink}, TLS: "none", Rewrite: "merge"}},
	)
	sec.Routing.SmartHost = routing.TargetConfig{Targets: folder("out"), Rewrite: "to-internet", Received: "remove-inner"}
	sec.Relay.Hostname = "gw.city.toyokawa.lg.jp"
	sec.Relay.Delivery.RetryInterval = time.Hour
	return sec, dir
}

// The differential test of the copies: what the delivery runner writes for
// each next hop is, byte for byte, what the dry run (rewrite test
// --message) shows for the message as queued.
func TestCopiesDryRunEqualsDelivery(t *testing.T) {
	const body = "\r\nbody\r\n"
	tests := []struct {
		name   string
		auth   bool // as sato@, authenticated, else from the inner server
		from   string
		rcpts  []string
		header string
		want   map[string]string // folder -> what its copy's envelope must say
	}{
		{
			name:  "LGWAN, internet and local",
			from:  "tanaka@city.toyokawa.aichi.jp",
			rcpts: []string{"kikaku@city.nagoya.jp", "friend@example.com", "sato@city.toyokawa.aichi.jp"},
			header: "Received: from pc1.city.lan (unknown [127.0.10.5])\r\n\tby mail.city.lan (Postfix) with ESMTP id 1; Sun, 29 Nov 2026 14:00:00 +0900\r\n" +
				"From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <tanaka@city.toyokawa.aichi.jp>\r\nReply-To: <tanaka@city.toyokawa.lg.jp>\r\n" +
				"To: \"名古屋市\" <kikaku@city.nagoya.jp>,\r\n friend@example.com\r\nCc: sato@city.toyokawa.aichi.jp\r\nSubject: mixed\r\n",
			want: map[string]string{
				"lgwan": "X-Sekisho-Envelope-From: <tanaka@city.toyokawa.lg.jp>\r\nX-Sekisho-Envelope-To: <kikaku@city.nagoya.lg.jp>\r\n",
				"out":   "X-Sekisho-Envelope-From: <tanaka@city.toyokawa.aichi.jp>\r\nX-Sekisho-Envelope-To: <friend@example.com>\r\n",
				"inner": "X-Sekisho-Envelope-From: <tanaka@city.toyokawa.aichi.jp>\r\nX-Sekisho-Envelope-To: <sato@city.toyokawa.lg.jp>\r\n",
			},
		},
		{
			name:   "a receive-time rule with a recipient condition decides per copy",
			auth:   true,
			from:   "sato@city.toyokawa.aichi.jp",
			rcpts:  []string{"kikaku@city.nagoya.jp", "friend@example.com"},
			header: "From: sato@city.toyokawa.aichi.jp\r\nTo: kikaku@city.nagoya.jp, friend@example.com\r\nSubject: per copy\r\n",
			want: map[string]string{
				"lgwan": "X-Sekisho-Envelope-From: <sato@city.toyokawa.lg.jp>\r\nX-Sekisho-Envelope-To: <kikaku@city.nagoya.lg.jp>\r\n",
				"out":   "X-Sekisho-Envelope-From: <sato@city.toyokawa.aichi.jp>\r\nX-Sekisho-Envelope-To: <friend@example.com>\r\n",
			},
		},
		{
			name:   "two recipients the route's set maps to one address get one RCPT",
			from:   "tanaka@city.toyokawa.lg.jp",
			rcpts:  []string{"old@partner.example", "new@partner.example", "x@partner.example"},
			header: "From: tanaka@city.toyokawa.lg.jp\r\nTo: old@partner.example, new@partner.example, x@partner.example\r\nSubject: merged\r\n",
			want: map[string]string{
				"partner": "X-Sekisho-Envelope-From: <tanaka@city.toyokawa.lg.jp>\r\n" +
					"X-Sekisho-Envelope-To: <new@partner.example>\r\nX-Sekisho-Envelope-To: <x@partner.example>\r\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hold := startSink(t)
			sec, dir := copiesSections(t, hold.addr)
			e := startEngine(t, sec)
			d := dial(t, "127.0.0.2", e.Addrs()[0].String())
			if tt.auth {
				d = dial(t, "127.0.0.9", e.Addrs()[1].String())
			}
			d.do("EHLO client.example", 250)
			if tt.auth {
				d.do("AUTH PLAIN AHNhdG9AY2l0eS50b3lva2F3YS5sZy5qcABzZWNyZXQ=", 235) // sato@city.toyokawa.lg.jp / secret
			}
			d.do("MAIL FROM:<"+tt.from+">", 250)
			rcpts := append(slices.Clone(tt.rcpts), "temp@hold.example")
			for _, r := range rcpts {
				d.do("RCPT TO:<"+r+">", 250)
			}
			d.do("DATA", 354)
			d.raw(tt.header + body + ".\r\n")
			d.expect(250)

			written := map[string]string{}
			for folder := range tt.want {
				files := waitFiles(t, filepath.Join(dir, folder), 1)
				if len(files) != 1 {
					t.Fatalf("%s: %d files", folder, len(files))
				}
				b, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				written[folder] = string(b)
			}
			// The message waits in the queue for temp@hold.example: read
			// it as queued.
			var queued []byte
			deadline := time.Now().Add(10 * time.Second)
			for queued == nil {
				for _, m := range e.queue.List() {
					if !m.Claimed && m.Rcpts[len(m.Rcpts)-1].Attempts > 0 {
						rc, err := e.queue.Open(m.ID)
						if err != nil {
							t.Fatal(err)
						}
						queued, err = rewrite.ReadHeader(bufio.NewReader(rc), 1<<20)
						rc.Close()
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				if queued == nil && time.Now().After(deadline) {
					t.Fatal("the message did not stay in the queue for temp@hold.example")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.HasPrefix(string(queued), "Received: from client.example") || !strings.HasSuffix(string(queued), tt.header+"\r\n") {
				t.Errorf("the queue does not keep the message as received:\n%s", queued)
			}

			dr, err := NewDryRunner(sec)
			if err != nil {
				t.Fatal(err)
			}
			src := rewrite.SourceInner
			if tt.auth {
				src = rewrite.SourceAuthenticated
			}
			dc, err := dr.Copies(context.Background(), CopyProbe{Source: src, From: tt.from, Rcpts: rcpts, Header: queued})
			if err != nil {
				t.Fatal(err)
			}
			shown := 0
			for _, c := range dc.Copies {
				if c.Err != nil {
					t.Errorf("copy for %s: %v", c.Decision.Label(), c.Err)
					continue
				}
				folder := map[string]string{"inner": "inner", "lgwan": "lgwan", "partner": "partner", "smart_host": "out"}[c.Decision.Rule]
				got, ok := written[folder]
				if !ok {
					continue // hold.example
				}
				shown++
				var env strings.Builder
				env.WriteString("X-Sekisho-Envelope-From: <" + c.Out.From + ">\r\n")
				for _, to := range c.Out.To {
					env.WriteString("X-Sekisho-Envelope-To: <" + to + ">\r\n")
				}
				if env.String() != tt.want[folder] {
					t.Errorf("%s: the dry run's envelope\n%s\nwant\n%s", folder, env.String(), tt.want[folder])
				}
				_, sentCopy, _ := strings.Cut(got, "\r\n")
				if want := env.String() + string(c.Out.Header) + "body\r\n"; sentCopy != want {
					t.Errorf("%s: delivered\n%s\nthe dry run shows\n%s", folder, sentCopy, want)
				}
			}
			if shown != len(tt.want) {
				t.Errorf("the dry run shows %d of the %d copies delivered", shown, len(tt.want))
			}
		})
	}
}

// Issue 24: a delivery-time rewrite that maps two recipients to one
// address sent RCPT twice in one transaction. Now the address gets one
// RCPT, and both queued recipients take its reply.
func TestCopyMergedRecipientsGetOneRCPT(t *testing.T) {
	sk := startSink(t)
	sec, _ := copiesSections(t, sk.addr)
	e := startEngine(t, sec)
	d := dial(t, "127.0.0.2", e.Addrs()[0].String())
	d.do("EHLO inner", 250)
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 250)
	d.do("RCPT TO:<old@partner.test>", 250)
	d.do("RCPT TO:<new@partner.test>", 250)
	d.do("DATA", 354)
	d.raw("From: tanaka@city.toyokawa.lg.jp\r\nSubject: merged\r\n\r\nbody\r\n.\r\n")
	d.expect(250)
	deadline := time.Now().Add(10 * time.Second)
	for len(e.queue.List()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still queued: %+v", e.queue.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, old := sk.count("new@partner.test"), sk.count("old@partner.test"); n != 1 || old != 0 {
		t.Errorf("the sink got RCPT TO:<new@partner.test> %d times and <old@partner.test> %d times; want one RCPT", n, old)
	}
}
