package conformance

import "testing"

// Scenario 1: the three ways the seeds build the gateway.

// Configuration A: the wildcard alias *@domain -> *@domain passes every
// local part to the inner server (weak, but what sites migrating from A
// have).
func TestSeedConfigA_WildcardDomainPassesAnyLocalPart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(`
accounts:
  domains:
    - name: test-sample.jp
      mode: wildcard
routing:
  routes:
    - name: "gateway.dat: test-sample.jp,192.168.0.103,25"
      domain: test-sample.jp
      targets: ["{{sink "inner"}}"]
      tls: none
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test-sample.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
`)
	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO mail.example.net
S: 250
C: MAIL FROM:<someone@example.net>
S: 250
C: RCPT TO:<user1@test-sample.jp>
S: 250
C: RCPT TO:<whoever-2009@test-sample.jp>
S: 250
C: RCPT TO:<x@example.org>
S: 554 5.7.1
C: DATA
S: 354
`+message("someone@example.net", "user1@test-sample.jp", "configuration A")+`
S: 250
C: QUIT
S: 221
sink inner has 1 message for user1@test-sample.jp
sink inner has 1 message for whoever-2009@test-sample.jp
sink inner has 1 message
`)
}

// Configuration B: one alias per valid user (user1@ -> user1@, user2@ ->
// user2@): those pass, anyone else is refused.
func TestSeedConfigB_OnlyListedAliasesPass(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(`
accounts:
  domains:
    - name: domain.co.jp
      mode: mirror
  aliases:
    - alias: user1@domain.co.jp
      target: user1@domain.co.jp
    - alias: user2@domain.co.jp
      target: user2@domain.co.jp
routing:
  routes:
    - name: "gateway.dat: domain.co.jp, 192.168.0.x, 25"
      domain: domain.co.jp
      targets: ["{{sink "inner"}}"]
      tls: none
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.domain.co.jp
  postmaster: user2@domain.co.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
`)
	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO mail.example.net
S: 250
C: MAIL FROM:<someone@example.net>
S: 250
C: RCPT TO:<user1@domain.co.jp>
S: 250
C: RCPT TO:<USER2@Domain.Co.JP>
S: 250
C: RCPT TO:<user3@domain.co.jp>
S: 550 5.1.1
C: RCPT TO:<postmaster@domain.co.jp>
S: 250 2.1.5
C: DATA
S: 354
`+message("someone@example.net", "user1@domain.co.jp", "configuration B")+`
S: 250
C: QUIT
S: 221
sink inner has 1 message
sink inner has 1 message for user1@domain.co.jp
`)
}

// Configuration A with the wildcard: every local part exists, postmaster@
// too, which is exactly why the seeds add the apop.dat protection.
func TestSeedPostmasterProtected_ConfigAWildcardStillNeedsAuth(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(`
accounts:
  protected: [postmaster, abuse]
  domains:
    - name: test-sample.jp
      mode: wildcard
routing:
  routes:
    - name: inner-server
      domain: test-sample.jp
      targets: ["{{sink "inner"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test-sample.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    spoof_check: false
`)
	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO ordb-test.example.net
S: 250
C: MAIL FROM:<postmaster@test-sample.jp>
S: 553 5.7.1
# Anyone else of the wildcard domain passes (spoof_check is off here, as
# E-Post had no such check), so the protection is what stops postmaster.
C: MAIL FROM:<user1@test-sample.jp>
S: 250
C: RCPT TO:<postmaster@test-sample.jp>
S: 250
C: DATA
S: 354
`+message("user1@test-sample.jp", "postmaster@test-sample.jp", "to the postmaster")+`
S: 250
C: QUIT
S: 221
sink inner has 1 message from <user1@test-sample.jp> for postmaster@test-sample.jp
`)
}
