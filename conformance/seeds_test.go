package conformance

import "testing"

// Scenario 1: the three ways the seeds build the gateway.

// Configuration C: the gateway has the inner server's domain and accounts,
// so mail for an existing account goes through and an unknown one is
// refused at RCPT (no backscatter reaches the inner server).
func TestSeedConfigC_ExistingAccountDeliveredUnknownRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(""))
	w.dialogue(t, `
connect mx from internet
S: 220
C: EHLO mail.test-sample00.jp
S: 250
C: MAIL FROM:<info@test-sample00.jp>
S: 250
C: RCPT TO:<bucho@test.jp>
S: 250
C: RCPT TO:<nosuchuser@test.jp>
S: 550 5.1.1
C: DATA
S: 354
`+message("info@test-sample00.jp", "bucho@test.jp", "configuration C")+`
S: 250 2.0.0
# A transaction with only an unknown account gets nowhere.
C: MAIL FROM:<info@test-sample00.jp>
S: 250
C: RCPT TO:<user9@test.jp>
S: 550 5.1.1
C: DATA
S: 5xx
C: QUIT
S: 221
sink inner has 1 message for bucho@test.jp
sink inner has 1 message
sink internet has nothing
`)
}

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

// Scenario 4: protected names and the null sender. The seeds protect
// postmaster@ with an apop.dat so that, as a sender, it needs SMTP AUTH
// (the ORDB relay test sent as postmaster@ of the gateway's domain).
func TestSeedPostmasterProtected_SenderNeedsAuthNullSenderOnlyToOurDomains(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(""))
	w.dialogue(t, `
# From outside without AUTH: refused at MAIL, whatever the recipient.
connect mx from internet
S: 220
C: EHLO ordb-test.example.net
S: 250
C: MAIL FROM:<postmaster@test.jp>
S: 553 5.7.1 ~ authentication
C: MAIL FROM:<Postmaster@TEST.JP>
S: 553 5.7.1
C: MAIL FROM:<abuse@test.jp>
S: 553 5.7.1
# With AUTH as postmaster it is fine.
starttls
C: EHLO admin-pc
S: 250
auth plain postmaster@test.jp postmaster-secret
S: 235
C: MAIL FROM:<postmaster@test.jp>
S: 250
C: RCPT TO:<bucho@test.jp>
S: 250
C: DATA
S: 354
`+message("postmaster@test.jp", "bucho@test.jp", "from the postmaster")+`
S: 250 2.0.0
C: QUIT
S: 221

# The inner server may send as postmaster (its own notices).
connect mx from inner
S: 220
C: EHLO mail.test.jp
S: 250
C: MAIL FROM:<postmaster@test.jp>
S: 250
C: RCPT TO:<user1@test.jp>
S: 250
C: RSET
S: 250

# The null sender: towards our domains from anyone...
connect mx from internet
S: 220
C: EHLO mx.example.net
S: 250
C: MAIL FROM:<>
S: 250
C: RCPT TO:<user1@test.jp>
S: 250
# ...never towards another domain (bounces relayed for strangers).
C: RCPT TO:<someone@example.org>
S: 550 5.7.1
C: DATA
S: 354
`+message("mailer-daemon@example.net", "user1@test.jp", "bounce to user1")+`
S: 250 2.0.0
C: QUIT
S: 221

# The default null_sender: local_only holds for the inner server too.
connect mx from inner
S: 220
C: EHLO mail.test.jp
S: 250
C: MAIL FROM:<>
S: 250
C: RCPT TO:<someone@example.org>
S: 550 5.7.1
C: QUIT
S: 221

sink inner has 1 message from <postmaster@test.jp> for bucho@test.jp
sink inner has 1 message from <> for user1@test.jp
sink inner has 2 messages
sink internet has nothing
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

// Scenario 5: the account that may not send outside (the seeds'
// baito@test.jp): it receives, it may write to colleagues, and mail from it
// to the outside is refused with a reason its sender can read, whether the
// inner server relays it or baito logs in.
func TestSeedOutboundBlockedAccount_ReceivesButCannotSendOutside(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(configC(""))
	w.dialogue(t, `
# It receives from the internet.
connect mx from internet
S: 220
C: EHLO mail.example.org
S: 250
C: MAIL FROM:<friend@example.org>
S: 250
C: RCPT TO:<baito@test.jp>
S: 250
C: DATA
S: 354
`+message("friend@example.org", "baito@test.jp", "to baito")+`
S: 250 2.0.0
C: QUIT
S: 221

# The inner server forwards baito's mail: outside refused, inside fine.
connect mx from inner
S: 220
C: EHLO mail.test.jp
S: 250
C: MAIL FROM:<baito@test.jp>
S: 250
C: RCPT TO:<friend@example.org>
S: 550 5.7.1 ~ outside
C: RCPT TO:<user1@test.jp>
S: 250
C: DATA
S: 354
`+message("baito@test.jp", "user1@test.jp", "from baito inside")+`
S: 250 2.0.0
C: QUIT
S: 221

# Logged in, from the staff LAN, it is still refused outside.
connect mx from staff
S: 220
C: EHLO pc-baito
S: 250
starttls
C: EHLO pc-baito
S: 250
auth plain baito@test.jp baito-secret
S: 235
C: MAIL FROM:<baito@test.jp>
S: 250
C: RCPT TO:<friend@example.org>
S: 550 5.7.1 ~ outside
C: QUIT
S: 221

sink inner has 1 message from <friend@example.org> for baito@test.jp
sink inner has 1 message from <baito@test.jp> for user1@test.jp
sink inner has 2 messages
sink internet has nothing
`)
}
