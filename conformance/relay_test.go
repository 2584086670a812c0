package conformance

import (
	"strings"
	"testing"
)

// relayTrick is one form of the historical open-relay batteries (ORDB,
// MAPS, nmap smtp-open-relay): a foreign destination hidden in a recipient
// address our gateway might take as local.
type relayTrick struct {
	name string
	rcpt string // what goes between RCPT TO: and the line end
	want string // the expected reply spec
}

// relayTricks lists the forms; every one must be refused. The replies are
// those of the guard's documented order of checks: a destination hidden in
// the local part or an address literal is 550 5.7.1, a plainly foreign
// recipient 554 5.7.1, syntax that is not an address 501, an unknown local
// part of ours 550 5.1.1. go-smtp drops source routes (<@a:u@d> arrives as
// u@d, as RFC 5321 C. asks), so those are judged by what remains.
var relayTricks = []relayTrick{
	{"plain foreign", "<victim@example.org>", "554 5.7.1"},
	{"upper-case foreign", "<VICTIM@EXAMPLE.ORG>", "554 5.7.1"},
	{"trailing-dot foreign", "<victim@example.org.>", "554 5.7.1"},
	{"our domain as a label of theirs", "<victim@test.jp.example.org>", "554 5.7.1"},
	{"subdomain of ours we do not serve", "<victim@evil.test.jp>", "554 5.7.1"},
	{"gateway host name", "<victim@gw.test.jp>", "554 5.7.1"},
	{"localhost", "<victim@localhost>", "554 5.7.1"},
	{"percent hack", "<victim%example.org@test.jp>", "550 5.7.1"},
	{"percent hack upper-case domain", "<victim%example.org@TEST.JP>", "550 5.7.1"},
	{"percent hack trailing dot", "<victim%example.org@test.jp.>", "550 5.7.1"},
	{"double percent hack", "<victim%example.org%gw.test.jp@test.jp>", "550 5.7.1"},
	{"percent hack via IP literal", "<victim%example.org@[127.0.0.1]>", "550 5.7.1"},
	{"bang path", "<example.org!victim@test.jp>", "550 5.7.1"},
	{"double bang path", "<test.jp!example.org!victim@test.jp>", "550 5.7.1"},
	{"bang path without domain", "<example.org!victim>", "501"},
	{"quoted at sign", `<"victim@example.org"@test.jp>`, "550 5.7.1"},
	{"quoted percent", `<"victim%example.org"@test.jp>`, "550 5.7.1"},
	{"quoted bang", `<"example.org!victim"@test.jp>`, "550 5.7.1"},
	{"quoted source route", `<"@example.org:victim"@test.jp>`, "550 5.7.1"},
	{"escaped at sign in quotes", `<"victim\@example.org"@test.jp>`, "550 5.7.1"},
	{"double at", "<victim@example.org@test.jp>", "550 5.7.1"},
	{"source route", "<@test.jp:victim@example.org>", "554 5.7.1"},
	{"source route list", "<@test.jp,@gw.test.jp:victim@example.org>", "554 5.7.1"},
	{"source route to an unknown user of ours", "<@example.org:victim@test.jp>", "550 5.1.1"},
	{"IPv4 literal", "<victim@[127.0.0.1]>", "550 5.7.1"},
	{"IPv4 literal of the inner server", "<victim@[127.0.0.10]>", "550 5.7.1"},
	{"IPv6 literal", "<victim@[IPv6:::1]>", "550 5.7.1"},
	{"full-width domain with percent hack", "<victim%example.org@ｔｅｓｔ.jp>", "550 5.7.1"},
	{"unknown account of ours", "<victim@test.jp>", "550 5.1.1"},
	{"percent in unquoted local part to unknown", "<a%b@test.jp>", "550 5.7.1"},
	{"no angle brackets", "victim@example.org", "554 5.7.1"},
	{"domain with port", "<victim@example.org:25>", "501 5.1.3"},
}

// Scenario 3: relay tricks from an untrusted client. Each form is tried
// in its own transaction together with a valid recipient: the trick is
// refused, the valid recipient still gets the message, and nothing reaches
// anyone else. The forms stay a Go table, each beside its reply; the
// dialogue is testdata/dialogues/steps/relay-trick.txt.
func TestSeedRelayTricks_AllRefusedValidRecipientsStillArrive(t *testing.T) {
	t.Parallel()
	if len(relayTricks) < 25 {
		t.Fatalf("the battery has %d forms; the issue asks for at least 25", len(relayTricks))
	}
	w := newWorld(t)
	w.start(configC(""))
	for i, tr := range relayTricks {
		t.Run(strings.ReplaceAll(tr.name, " ", "_"), func(t *testing.T) {
			w.dialogueFile(t, "relay-trick", map[string]any{"Rcpt": tr.rcpt, "Want": tr.want, "N": i, "Name": tr.name})
		})
	}
	// The valid recipients got one message per form, and only they did.
	w.gw.waitQueueEmpty(t)
	inner := w.sinks["inner"].Messages()
	if len(inner) != len(relayTricks) {
		t.Errorf("inner server got %d messages, want %d (one per form):\n%s", len(inner), len(relayTricks), describeMessages(inner))
	}
	for _, m := range inner {
		if len(m.To) != 2 || !containsFold(m.To, "bucho@test.jp") || !containsFold(m.To, "user1@test.jp") {
			t.Errorf("inner server got a message for %v, want exactly bucho@test.jp and user1@test.jp", m.To)
		}
	}
	if msgs := w.sinks["internet"].Messages(); len(msgs) > 0 {
		t.Errorf("relay tricks reached the internet:\n%s", describeMessages(msgs))
	}
	if q := w.dns.Queries(); len(q) > 0 {
		t.Errorf("the gateway looked up %v: a refused recipient must not even be routed", q)
	}
	// Each refusal is counted under the check that made it.
	if n := w.gw.metric(t, "sekisho_commands_total", `stage="rcpt"`, `reason="builtin:relay-trick"`); n < 10 {
		t.Errorf("sekisho_commands_total{stage=rcpt,reason=builtin:relay-trick} = %v, want one per hidden-destination form", n)
	}
}
