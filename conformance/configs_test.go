package conformance

import "strings"

// The configurations of the scenarios, written as an administrator would
// write them after reading the E-Post documents (configs/ has the
// commented versions). Template functions: world.render.

// configC is the seeds' configuration C ("the more secure setting", the
// only one the LGWAN option supports): the gateway mirrors the inner
// server's domain test.jp and its accounts, forwards test.jp to the inner
// server (gateway.dat "test.jp, 192.168.0.103, 20025"), trusts the inner
// server's address (effect.dat "192.168.0.103 true"), lets the staff LAN
// relay only after SMTP AUTH (effect.dat "192.168.10.* default") and
// relays nothing else (the final "norelay"). The internet is the smart
// host sink "internet"; scenario 7 covers DNS MX.
//
// relayExtra is YAML appended to the relay section, indented by two
// spaces (limits, extra listeners, auth settings).
func configC(relayExtra string) string {
	return `
accounts:
  protected: [postmaster, abuse]
  domains:
    - name: test.jp
      mode: mirror
  accounts:
    - address: postmaster@test.jp
      secret: "{PLAIN}postmaster-secret"
    - address: bucho@test.jp
      name: 部長
      secret: "{PLAIN}bucho-secret"
    - address: tanaka@test.jp
      name: 田中 太郎
      secret: "{PLAIN}tanaka-secret"
    - address: user1@test.jp
    - address: user2@test.jp
    - address: baito@test.jp
      name: アルバイト
      outbound_blocked: true
      secret: "{PLAIN}baito-secret"
  aliases:
    - alias: info@test.jp
      target: bucho@test.jp

routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
      tls: none
  smart_host:
    targets: ["{{sink "internet"}}"]
    tls: none
  dns:
    servers: ["{{dns}}"]
    timeout: 1s

relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
  tls:
    cert_file: "{{cert}}"
    key_file: "{{key}}"
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
    rules:
      - name: "effect.dat:3 192.168.10.* default"
        action: require_auth
        networks: [127.0.10.0/24]
` + indent(relayExtra)
}

// indent makes a YAML fragment written at column 0 a part of the relay
// section.
func indent(s string) string {
	s = strings.Trim(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
