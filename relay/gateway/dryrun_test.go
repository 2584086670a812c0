package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
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
