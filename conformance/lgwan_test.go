package conformance

import (
	"strings"
	"testing"
)

// lgwanConfig is the E-Post LGWAN option's setting (configuration C only):
// the inner server knows its users by the regional domain
// city.toyokawa.aichi.jp; other municipalities' regional addresses become
// their LG addresses so the mail goes over LGWAN, and so does our sender
// when every recipient is on LGWAN. Mail for our LG addresses reaches the
// inner server at the regional address it knows.
const lgwanConfig = `
accounts:
  domains:
    - name: city.toyokawa.aichi.jp
      mode: mirror
    - name: city.toyokawa.lg.jp
      mode: mirror
  accounts:
    - address: tanaka@city.toyokawa.aichi.jp
      name: 田中 太郎
    - address: bucho@city.toyokawa.aichi.jp
  aliases:
    - alias: "*@city.toyokawa.lg.jp"
      target: "*@city.toyokawa.aichi.jp"

rewrite:
  rules:
    - name: recipients-to-lg
      table: "{{path "lgwan-domains.tsv"}}"
      classes: [envelope_recipient, header_recipient]
      source: [inner, authenticated]
    - name: sender-to-lg-for-lgwan
      table: "{{path "lgwan-domains.tsv"}}"
      classes: [envelope_sender, header_sender]
      source: [inner, authenticated]
      recipient_domain: ["*.lg.jp"]

routing:
  routes:
    - name: inner-server
      domain: city.toyokawa.aichi.jp
      targets: ["{{sink "inner"}}"]
      tls: none
    - name: lgwan
      domain: "*.lg.jp"
      targets: ["{{sink "lgwan"}}"]
  smart_host:
    targets: ["{{sink "internet"}}"]
  dns:
    servers: ["{{dns}}"]

relay:
  hostname: gw.city.toyokawa.lg.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
`

const lgwanTable = "# regional<TAB>LG\n" +
	"city.toyokawa.aichi.jp\tcity.toyokawa.lg.jp\n" +
	"pref.aichi.jp\tpref.aichi.lg.jp\n" +
	"city.nagoya.aichi.jp\tcity.nagoya.lg.jp\n"

// Scenario 6: LGWAN rewriting end to end.
func TestSeedLGWANOption_RegionalToLGOutboundAndReplyBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeFile("lgwan-domains.tsv", lgwanTable)
	w.start(lgwanConfig)

	w.dialogueFile(t, "lgwan-outbound", nil)
	// What arrives is what the file sent with only the address domains
	// changed.
	sent := dataSent(t, "lgwan-outbound", nil)
	header, body, _ := strings.Cut(sent, "\r\n\r\n")
	header += "\r\n"
	m := w.sinks["lgwan"].Messages()[0]
	if !containsFold(m.To, "someone.else@city.nagoya.lg.jp") || len(m.To) != 2 {
		t.Errorf("LGWAN relay got RCPT TO %v, want someone@pref.aichi.lg.jp and someone.else@city.nagoya.lg.jp", m.To)
	}
	wantHeader := strings.NewReplacer(
		"@city.toyokawa.aichi.jp>", "@city.toyokawa.lg.jp>",
		"@pref.aichi.jp>", "@pref.aichi.lg.jp>",
		"@city.nagoya.aichi.jp ", "@city.nagoya.lg.jp ",
	).Replace(header)
	// The Message-ID is no address: it keeps the regional domain.
	wantHeader = strings.Replace(wantHeader, "<lgwan-1@city.toyokawa.lg.jp>", "<lgwan-1@city.toyokawa.aichi.jp>", 1)
	if got := withoutTrace(m.header()); got != wantHeader {
		t.Errorf("header at the LGWAN relay:\n%s\nwant (only the address domains changed):\n%s", got, wantHeader)
	}
	if m.body() != body {
		t.Errorf("body changed:\n%q\nwant\n%q", m.body(), body)
	}

	w.dialogueFile(t, "lgwan-reply-back", nil)
	w.dialogueFile(t, "lgwan-to-internet", nil)
	if h := w.sinks["internet"].Messages()[0].header(); !strings.Contains(h, "From: <bucho@city.toyokawa.aichi.jp>") {
		t.Errorf("the internet got a rewritten From:\n%s", h)
	}
}

// withoutTrace drops the Received fields the gateway prepends.
func withoutTrace(h string) string {
	lines := strings.SplitAfter(h, "\r\n")
	i := 0
	for i < len(lines) && (strings.HasPrefix(lines[i], "Received:") || (i > 0 && (strings.HasPrefix(lines[i], " ") || strings.HasPrefix(lines[i], "\t")) && strings.HasPrefix(lines[0], "Received:"))) {
		i++
	}
	return strings.Join(lines[i:], "")
}
