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

// The header of the message the inner server sends. Display names in
// every form a Japanese mail client writes them (an ISO-2022-JP encoded
// word, raw UTF-8 in quotes, a comment) must come out byte-identical; only
// the domains change.
const lgwanHeader = "From: =?ISO-2022-JP?B?GyRCRURDZhsoQiAbJEJCQE86GyhC?= <tanaka@city.toyokawa.aichi.jp>\r\n" +
	"To: \"愛知県 情報政策課\" <someone@pref.aichi.jp>,\r\n" +
	"  someone.else@city.nagoya.aichi.jp (名古屋市 総務課)\r\n" +
	"Subject: =?UTF-8?B?5Lya6K2w44Gu5qGI5YaF?=\r\n" +
	"Message-ID: <lgwan-1@city.toyokawa.aichi.jp>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n"

// Scenario 6: LGWAN rewriting end to end.
func TestSeedLGWANOption_RegionalToLGOutboundAndReplyBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeFile("lgwan-domains.tsv", lgwanTable)
	w.start(lgwanConfig)

	body := "会議のご案内です。\r\n-- \r\ntanaka@city.toyokawa.aichi.jp\r\n"
	var data strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(lgwanHeader+"\r\n"+body, "\r\n"), "\r\n") {
		data.WriteString("D: " + l + "\n")
	}
	w.dialogue(t, `
connect mx from inner
S: 220
C: EHLO mail.city.toyokawa.aichi.jp
S: 250
C: MAIL FROM:<tanaka@city.toyokawa.aichi.jp>
S: 250
C: RCPT TO:<someone@pref.aichi.jp>
S: 250
C: RCPT TO:<someone.else@city.nagoya.aichi.jp>
S: 250
C: DATA
S: 354
`+data.String()+`C: .
S: 250 2.0.0
C: QUIT
S: 221
sink lgwan has 1 message from <tanaka@city.toyokawa.lg.jp> for someone@pref.aichi.lg.jp
sink lgwan has 1 message
sink internet has nothing
`)
	m := w.sinks["lgwan"].Messages()[0]
	if !containsFold(m.To, "someone.else@city.nagoya.lg.jp") || len(m.To) != 2 {
		t.Errorf("LGWAN relay got RCPT TO %v, want someone@pref.aichi.lg.jp and someone.else@city.nagoya.lg.jp", m.To)
	}
	wantHeader := strings.NewReplacer(
		"@city.toyokawa.aichi.jp>", "@city.toyokawa.lg.jp>",
		"@pref.aichi.jp>", "@pref.aichi.lg.jp>",
		"@city.nagoya.aichi.jp ", "@city.nagoya.lg.jp ",
	).Replace(lgwanHeader)
	// The Message-ID is no address: it keeps the regional domain.
	wantHeader = strings.Replace(wantHeader, "<lgwan-1@city.toyokawa.lg.jp>", "<lgwan-1@city.toyokawa.aichi.jp>", 1)
	if got := withoutTrace(m.header()); got != wantHeader {
		t.Errorf("header at the LGWAN relay:\n%s\nwant (only the address domains changed):\n%s", got, wantHeader)
	}
	if m.body() != body {
		t.Errorf("body changed:\n%q\nwant\n%q", m.body(), body)
	}

	// The reply from LGWAN, to the LG address, reaches the inner server at
	// the regional address it knows; an unknown LG address is refused.
	w.dialogue(t, `
connect mx from 127.0.0.77
S: 220
C: EHLO lgwan-relay.pref.aichi.lg.jp
S: 250
C: MAIL FROM:<someone@pref.aichi.lg.jp>
S: 250
C: RCPT TO:<tanaka@city.toyokawa.lg.jp>
S: 250
C: RCPT TO:<nobody@city.toyokawa.lg.jp>
S: 550 5.1.1
C: DATA
S: 354
`+message("someone@pref.aichi.lg.jp", "tanaka@city.toyokawa.lg.jp", "Re: meeting")+`
S: 250 2.0.0
C: QUIT
S: 221
sink inner has 1 message from <someone@pref.aichi.lg.jp> for tanaka@city.toyokawa.aichi.jp
sink inner has 1 message
`)
	// A message to the internet keeps the regional sender: the LG address
	// means nothing there.
	w.dialogue(t, `
connect mx from inner
S: 220
C: EHLO mail.city.toyokawa.aichi.jp
S: 250
C: MAIL FROM:<bucho@city.toyokawa.aichi.jp>
S: 250
C: RCPT TO:<partner@example.com>
S: 250
C: DATA
S: 354
`+message("bucho@city.toyokawa.aichi.jp", "partner@example.com", "to the internet")+`
S: 250 2.0.0
C: QUIT
S: 221
sink internet has 1 message from <bucho@city.toyokawa.aichi.jp> for partner@example.com
`)
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
