package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/sekisho/sekisho/relay/inspect/milter/miltertest"
)

// Content inspection (relay.inspect) against the real content filters:
// clamav-milter with clamd and rspamd, started on loopback by
// relay/inspect/milter/miltertest, and the sender checks against the fake DNS.

// attachment is the parameters of steps/inspect-attachment.txt.
func attachment(subject string, content []byte, want string, delivered int) map[string]any {
	return map[string]any{"Subject": subject, "Attachment": base64.StdEncoding.EncodeToString(content), "Want": want, "Delivered": delivered}
}

// EICAR is refused by clamav-milter with the virus named; a clean message
// passes both filters and arrives with clamav-milter's and rspamd's
// verdict headers and our Authentication-Results (the forged one with our
// authserv-id removed).
func TestInspect_ClamAVRefusesEICARRspamdHeaderOnDeliveredMail(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	clam, _ := miltertest.ClamAV(t)
	rspamd := miltertest.Rspamd(t)
	w.dns.Add(`example.org. IN TXT "v=spf1 ip4:` + internetIP + ` -all"`)
	g := w.start(configC(fmt.Sprintf(`
inspect:
  milters:
    - name: clamav
      address: "%s"
      timeout: 10s
    - name: rspamd
      address: "%s"
      timeout: 10s
  auth:
    spf: header
    dns_servers: ["{{dns}}"]
`, clam, rspamd)))

	w.dialogueFile(t, "inspect-attachment", attachment("virus", []byte(miltertest.EICAR), "550 ~ Sekisho-Test-EICAR", 0))
	w.dialogueFile(t, "inspect-attachment", attachment("clean", []byte("just some bytes\n"), "250 2.0.0", 1))
	h := w.sinks["inner"].Messages()[0].header()
	for _, want := range []string{"X-Virus-Status: Clean", "X-Spamd-Result: default: False",
		"Authentication-Results: gw.test.jp;\r\n\tspf=pass smtp.helo=mx.example.org smtp.mailfrom=friend@example.org"} {
		if !strings.Contains(h, want) {
			t.Errorf("delivered header lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "forged") {
		t.Errorf("the sender's Authentication-Results claiming our authserv-id was kept:\n%s", h)
	}
	if n := g.countLog("refused", "stage=data", "reason=inspect", "by=\"milter clamav\""); n != 1 {
		t.Errorf("%d log lines for the EICAR refusal, want 1:\n%s", n, g.logs.String())
	}
	g.waitQueueEmpty(t)
}

// A milter that dies: under on_failure: tempfail the client is told 451
// and keeps the message (nothing queued, nothing delivered); under
// on_failure: accept (here for the inner server's mail) the message goes
// on without that milter's opinion.
func TestInspect_DeadMilterTempfailsOrAcceptsNothingLost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	clam, stop := miltertest.ClamAV(t)
	g := w.start(configC(fmt.Sprintf(`
inspect:
  milters:
    - name: clamav-internet
      address: "%[1]s"
      sources: [internet]
      timeout: 2s
    - name: clamav-inner
      address: "%[1]s"
      sources: [inner]
      on_failure: accept
      timeout: 2s
`, clam)))
	w.dialogueFile(t, "inspect-attachment", attachment("before", []byte("x\n"), "250 2.0.0", 1))
	stop()
	w.dialogueFile(t, "inspect-attachment", attachment("after", []byte("x\n"), "451 4.7.0", 1))
	if q := g.queue(t); len(q) != 0 {
		t.Errorf("a tempfailed message was queued: %+v", q)
	}
	w.dialogueFile(t, "inspect-inner-to-internet", nil)
	if g.countLog("milter failed", "clamav-inner") != 1 {
		t.Errorf("the passed-over milter was not logged:\n%s", g.logs.String())
	}
	g.waitQueueEmpty(t)
}

// dkimConfig: the inner server's users write from their LG address; mail
// to example.com leaves through a route whose delivery-time rewrite puts
// the regional domain in the envelope and header sender, and is signed for
// the regional domain after that rewrite.
const dkimConfig = `
accounts:
  domains:
    - name: city.toyokawa.lg.jp
      mode: mirror
  accounts:
    - address: tanaka@city.toyokawa.lg.jp
rewrite:
  sets:
    - name: to-internet
      rules:
        - name: lg-to-regional
          table: "{{path "lgwan-domains.tsv"}}"
          direction: reverse
          classes: [envelope_sender, header_sender]
          source: [inner]
routing:
  routes:
    - name: partner
      domain: example.com
      targets: ["{{sink "internet"}}"]
      tls: none
      rewrite: to-internet
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
  inspect:
    dkim_sign:
      keys:
        - domain: city.toyokawa.aichi.jp
          selector: gw
          key_file: "{{path "dkim.pem"}}"
`

// The From the delivery-time rewrite changed leaves signed for the new
// domain, and go-msgauth verifies the signature against the key `sekisho
// dkim keygen` printed and the fake DNS publishes; after the key file is
// replaced and SIGHUP sent, mail is signed with the new key.
func TestInspect_DKIMSignatureAfterRewriteVerifiesAndKeyReloads(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeFile("lgwan-domains.tsv", lgwanTable)
	keygen(t, w)
	g := w.start(dkimConfig)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, w.dns.Addr)
	}}
	send := func(subject string, n int) []byte {
		w.dialogueFile(t, "dkim-signed", map[string]any{"Subject": subject, "N": n})
		return w.sinks["internet"].Messages()[n-1].Data
	}
	verify := func(data []byte) error {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
			return resolver.LookupTXT(context.Background(), d)
		}})
		if err != nil {
			return err
		}
		if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "city.toyokawa.aichi.jp" {
			return fmt.Errorf("verifications %+v", vs)
		}
		return nil
	}
	data := send("signed", 1)
	if !strings.Contains(string(data), "From: <tanaka@city.toyokawa.aichi.jp>") || !strings.HasPrefix(string(data), "DKIM-Signature:") {
		t.Fatalf("message at the sink, want the rewritten From and our signature on top:\n%s", data)
	}
	if err := verify(data); err != nil {
		t.Fatalf("DKIM verification: %v\n%s", err, data)
	}
	// The published key verifies only what we signed: the same bytes with
	// From changed back fail.
	forged := bytes.Replace(data, []byte("From: <tanaka@city.toyokawa.aichi.jp>"), []byte("From: <tanaka@city.toyokawa.lg.jp>"), 1)
	if err := verify(forged); err == nil {
		t.Errorf("a changed From still verified")
	}

	keygen(t, w)
	reloaded := g.countLog("configuration reloaded")
	g.signal(t, syscall.SIGHUP)
	waitCount(t, g, reloaded+1, "configuration reloaded")
	if err := verify(send("after reload", 2)); err != nil {
		t.Fatalf("after the key was replaced and reloaded: %v", err)
	}
	if err := verify(data); err == nil {
		t.Errorf("the first message still verifies against the replaced key: was the key file reread?")
	}
	g.waitQueueEmpty(t)
}

// keygen runs `sekisho dkim keygen` for the signing domain into dkim.pem
// and publishes the TXT record it prints in the fake DNS, replacing any
// earlier one.
func keygen(t *testing.T, w *world) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := sekisho(ctx, "dkim", "keygen", "city.toyokawa.aichi.jp", "--selector", "gw", "--out", w.path("dkim.pem"), "--force")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sekisho dkim keygen: %v\n%s", err, errb.String())
	}
	w.dns.Remove("gw._domainkey.city.toyokawa.aichi.jp")
	w.dns.Add(strings.TrimSpace(out.String()))
}
