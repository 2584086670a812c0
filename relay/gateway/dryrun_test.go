package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// relay session answers AUTH as the live gateway does: not offered and
// 523 without TLS unless relay.auth.allow_insecure; offered under smtps.
func TestDrySessionAuthLikeLive(t *testing.T) {
	tests := []struct {
		insecure bool
		mode     string
		offered  bool
		auth     string // the reply to AUTH PLAIN with the right password
	}{
		{false, "mx", false, "523 5.7.10"},
		{true, "mx", true, "235 2.7.0"},
		{false, "smtps", true, "235 2.7.0"},
	}
	for _, tt := range tests {
		sec, _ := testSections(t)
		sec.Relay.Auth.AllowInsecure = tt.insecure
		in := "EHLO pc\r\nAUTH PLAIN " + plainResp("sato@city.toyokawa.lg.jp", "secret") + "\r\nQUIT\r\n"
		var out bytes.Buffer
		if err := Session(sec, netip.MustParseAddr("203.0.113.5"), tt.mode, strings.NewReader(in), &out, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if strings.Contains(got, "AUTH PLAIN") != tt.offered {
			t.Errorf("allow_insecure %v, %s: AUTH offered %v, want %v:\n%s", tt.insecure, tt.mode, !tt.offered, tt.offered, got)
		}
		if !strings.Contains(got, "\r\n"+tt.auth) {
			t.Errorf("allow_insecure %v, %s: want %q:\n%s", tt.insecure, tt.mode, tt.auth, got)
		}
	}
}

// relay test decides the HELO as the live server does: any name, none
// too, but not one with control characters; it stops at a refusal.
func TestDryRunHelo(t *testing.T) {
	sec, _ := testSections(t)
	steps, err := DryRun(sec, Probe{Client: netip.MustParseAddr("203.0.113.5"), From: "a@example.org", Rcpts: []string{"tanaka@city.toyokawa.lg.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 2 || steps[1].Stage != "helo" || steps[1].Code != 250 {
		t.Errorf("bare HELO: %+v, want helo accepted with 250 (E-Post and RFC 5321 §4.1.4 practice)", steps)
	}
	steps, err = DryRun(sec, Probe{Client: netip.MustParseAddr("203.0.113.5"), Helo: "bad\x01name", From: "a@example.org", Rcpts: []string{"tanaka@city.toyokawa.lg.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[1].Stage != "helo" || steps[1].Code != 501 {
		t.Errorf("HELO with a control character: %+v, want the dry run to stop at helo with 501", steps)
	}
}

// route test routes a recipient with the sender the runner routes the
// queued copy with: the sender as received, not as the receive-time
// rules rewrite it. A route by sender tells them apart.
func TestRouteTestRoutesWithTheReceivedSender(t *testing.T) {
	sec, dir := testSections(t)
	sec.Rewrite.Rules = []rewrite.RuleConfig{{Name: "to-regional", Domain: "city.toyokawa.lg.jp",
		Replace: "city.toyokawa.aichi.jp", Classes: []string{"envelope_sender"}, Source: []string{"inner"}}}
	sec.Routing.Routes = append(sec.Routing.Routes, routing.RouteConfig{Name: "lg-senders", Domain: "example.org",
		Sender: "city.toyokawa.lg.jp", TargetConfig: routing.TargetConfig{Targets: []string{"dir:" + filepath.Join(dir, "partner")}}})
	dr, err := NewDryRunner(sec)
	if err != nil {
		t.Fatal(err)
	}
	inner := netip.MustParseAddr("127.0.0.2")
	got := dr.ExplainRoute(context.Background(), "x@example.org", "tanaka@city.toyokawa.lg.jp", &inner, true)
	if got.Rule != "lg-senders" {
		t.Errorf("route test chose %q, want lg-senders (what the runner chooses for the queued sender): %+v", got.Rule, got)
	}
	res := dr.st.pol.Resolve(rewrite.SourceInner, "tanaka@city.toyokawa.lg.jp", "x@example.org")
	if res.From != "tanaka@city.toyokawa.aichi.jp" || res.Route == nil || res.Route.Rule != got.Rule {
		t.Errorf("the rewrite or the policy's route disagree: %+v (route %+v)", res, res.Route)
	}
}
