package conformance

import (
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/auth"
)

// authConfig is a gateway with SMTP AUTH as the seeds set it ("SMTP
// 認証方法 PLAIN LOGIN CRAM-MD5", "セキュリティレベル 認証ファイル"): port 25,
// a submission port that requires STARTTLS, and implicit TLS. The
// secrets are stored as each mechanism needs: SHA512-CRYPT (PLAIN and
// LOGIN only), the CRAM-MD5 key schedule, and a plain secret (tests only).
func authConfig(t *testing.T) string {
	hash := func(scheme, password string) string {
		s, err := auth.HashPassword(scheme, password)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return `
accounts:
  domains:
    - name: test.jp
      mode: mirror
  accounts:
    - address: tanaka@test.jp
      secret: "` + hash("SHA512-CRYPT", "tanaka-secret") + `"
    - address: bucho@test.jp
      secret: "` + hash("CRAM-MD5", "bucho-secret") + `"
    - address: user1@test.jp
      secret: "{PLAIN}user1-secret"
    - address: user2@test.jp
      secret: "` + hash("CRAM-MD5", "user2-secret") + `"
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  smart_host:
    targets: ["{{sink "internet"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
    - address: "{{listen "submission"}}"
      mode: submission
      require_tls: true
    - address: "{{listenTLS "smtps"}}"
      mode: smtps
  tls:
    cert_file: "{{cert}}"
    key_file: "{{key}}"
{{runtime}}
{{delivery}}
  auth:
    mechanisms: [PLAIN, LOGIN, CRAM-MD5]
    max_failures: 3
    failure_window: 1m
    lockout_time: 1m
`
}

// Scenario 12: SMTP AUTH.
func TestSeedAuth_PlainLoginCramMD5LockoutAndTLSFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(authConfig(t))

	t.Run("not_offered_before_STARTTLS", func(t *testing.T) {
		w.dialogue(t, `
connect submission from 127.0.5.1
S: 220
C: EHLO pc.test.jp
S: 250 ~ STARTTLS !~ AUTH
C: AUTH PLAIN AHRhbmFrYUB0ZXN0LmpwAHRhbmFrYS1zZWNyZXQ=
S: 5xx
C: MAIL FROM:<tanaka@test.jp>
S: 530 5.7.0
starttls
C: EHLO pc.test.jp
S: 250 ~ AUTH PLAIN LOGIN CRAM-MD5
# The submission port needs AUTH before MAIL.
C: MAIL FROM:<tanaka@test.jp>
S: 530 5.7.0
C: QUIT
S: 221
# Port 25 without TLS offers no AUTH either (allow_insecure is off).
connect mx from 127.0.5.1
S: 220
C: EHLO pc.test.jp
S: 250 !~ AUTH
C: QUIT
S: 221
`)
	})
	t.Run("PLAIN", func(t *testing.T) {
		w.dialogue(t, `
connect submission from 127.0.5.2
S: 220
C: EHLO pc.test.jp
S: 250
starttls
C: EHLO pc.test.jp
S: 250
auth plain tanaka@test.jp wrong-secret
S: 535 5.7.8
auth plain tanaka@test.jp tanaka-secret
S: 235
C: MAIL FROM:<tanaka@test.jp>
S: 250
C: RCPT TO:<partner@example.org>
S: 250
C: DATA
S: 354
`+message("tanaka@test.jp", "partner@example.org", "submitted with PLAIN")+`
S: 250 2.0.0
C: QUIT
S: 221
`)
	})
	t.Run("LOGIN", func(t *testing.T) {
		w.dialogue(t, `
connect submission from 127.0.5.3
S: 220
C: EHLO pc.test.jp
S: 250
starttls
C: EHLO pc.test.jp
S: 250
auth login user2@test.jp wrong-secret
S: 535 5.7.8
auth login user2@test.jp user2-secret
S: 235
# The login must own the envelope sender (sender_trust: envelope).
C: MAIL FROM:<tanaka@test.jp>
S: 553 5.7.1
C: QUIT
S: 221
`)
	})
	t.Run("CRAM-MD5", func(t *testing.T) {
		w.dialogue(t, `
connect smtps from 127.0.5.4
S: 220
C: EHLO pc.test.jp
S: 250 ~ AUTH PLAIN LOGIN CRAM-MD5
auth cram-md5 bucho@test.jp wrong-secret
S: 535 5.7.8
auth cram-md5 bucho@test.jp bucho-secret
S: 235
C: MAIL FROM:<bucho@test.jp>
S: 250
C: RCPT TO:<partner@example.org>
S: 250
C: DATA
S: 354
`+message("bucho@test.jp", "partner@example.org", "submitted with CRAM-MD5")+`
S: 250 2.0.0
C: QUIT
S: 221
`)
	})
	t.Run("lockout_after_repeated_failures", func(t *testing.T) {
		w.dialogue(t, `
connect submission from 127.0.5.9
S: 220
C: EHLO guesser
S: 250
starttls
C: EHLO guesser
S: 250
auth plain user1@test.jp guess1
S: 535 5.7.8
auth plain user1@test.jp guess2
S: 535 5.7.8
auth plain user1@test.jp guess3
S: 535
# Locked: even the right password is refused, temporarily.
auth plain user1@test.jp user1-secret
S: 454 4.7.0
C: QUIT
S: 221
# The user name is locked from elsewhere too; other users are not.
connect submission from 127.0.5.10
S: 220
C: EHLO other-pc
S: 250
starttls
C: EHLO other-pc
S: 250
auth plain user1@test.jp user1-secret
S: 454 4.7.0
auth plain tanaka@test.jp tanaka-secret
S: 235
C: QUIT
S: 221
`)
	})
	w.dialogue(t, `
sink internet has 1 message from <tanaka@test.jp> for partner@example.org
sink internet has 1 message from <bucho@test.jp> for partner@example.org
sink internet has 2 messages
sink inner has nothing
`)
	if !strings.Contains(w.gw.logs.String(), "kind=auth") {
		t.Errorf("no auth log lines")
	}
}
