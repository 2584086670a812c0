package gateway

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/guard"
)

// A deny rule that names only networks decides at the greeting: the live
// session, the dry-run session and the dry run agree, the refusal is
// logged, and the connection closed after it (RFC 5321 §4.3.2).
func TestConnectStage(t *testing.T) {
	sec, _ := testSections(t)
	sec.Relay.Guard.Rules = append([]guard.RuleConfig{{Name: "blocked", Action: "deny", Networks: []string{"127.0.0.66/32"}}},
		sec.Relay.Guard.Rules...)
	var logs bytes.Buffer
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := Session(sec, netip.MustParseAddr("127.0.0.66"), "mx", strings.NewReader("EHLO x\r\nMAIL FROM:<a@b.example>\r\nQUIT\r\n"), &out, log); err != nil {
		t.Fatal(err)
	}
	want := []string{"554 5.7.1 "}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\r\n"), "\r\n")
	if len(lines) != len(want) {
		t.Fatalf("replies %q, want %q", lines, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("reply %d = %q, want %q", i, lines[i], w)
		}
	}
	for _, parts := range [][]string{{"msg=refused", "kind=reject", "stage=connect", "rule=blocked"},
		{`msg="connection opened"`, "kind=accept"}, {`msg="connection closed"`, "kind=accept"}} {
		if !logHas(logs.String(), parts...) {
			t.Errorf("no log line holds all of %q:\n%s", parts, logs.String())
		}
	}
	steps, err := DryRun(sec, Probe{Client: netip.MustParseAddr("127.0.0.66"), From: "a@b.example", Rcpts: []string{"tanaka@city.toyokawa.lg.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Code != 554 || steps[0].Rule != "blocked" {
		t.Errorf("dry run: %+v, want one connect step refused by blocked", steps)
	}
	// Another client gets the greeting, and a bare HELO.
	out.Reset()
	if err := Session(sec, netip.MustParseAddr("127.0.0.5"), "mx", strings.NewReader("HELO\r\nRCPT TO:<postmaster>\r\nQUIT\r\n"), &out, log); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "220 gw.test ESMTP") || !strings.Contains(got, "250 gw.test Hello [127.0.0.5]") ||
		!strings.Contains(got, "503 5.5.1") {
		t.Errorf("session: %q", got)
	}
}

// logHas reports whether one line of logs holds every one of parts.
func logHas(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
