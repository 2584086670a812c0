package conformance

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// mirrorTestJP is the accounts section of configuration C, for the
// routing scenarios.
const mirrorTestJP = `
accounts:
  domains:
    - name: test.jp
      mode: mirror
  accounts:
    - address: bucho@test.jp
    - address: user1@test.jp
`

// Scenario 7, the seeds' applied example: the inner server receives on
// port 20025 (gateway.dat "test.jp, 192.168.0.x, 20025") and sends out
// through the gateway, which listens on 25 and 20025. The route comes from
// the seeds' gateway.dat through `sekisho import gateway-dat`.
func TestSeedGatewayDat_InnerServerOnPort20025(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	inner, err := newSink(t, "inner", "127.0.20.25:20025")
	if err != nil {
		t.Fatalf("the inner server of the seeds' example listens on port 20025: %v", err)
	}
	w.addSink(inner)
	gatewayDat := w.writeFile("gateway.dat", ";\r\n; 対象ドメイン, ゲートウェイ先 (FQDN or IP), 接続ポート番号\r\n;\r\ntest.jp, 127.0.20.25, 20025\r\n")
	cmd := sekisho(context.Background(), "import", "gateway-dat", gatewayDat)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sekisho import gateway-dat: %v\n%s", err, stderr.String())
	}
	routing := stdout.String()
	if !strings.Contains(routing, `"127.0.20.25:20025"`) {
		t.Fatalf("import gateway-dat lost the port:\n%s", routing)
	}
	w.start(mirrorTestJP + routing + `
  smart_host:
    targets: ["{{sink "internet"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
    - address: "{{listen "mx20025"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
`)
	w.dialogueFile(t, "gateway-dat-20025", nil)
}

// Scenario 7: a smart host (the seeds' "SMTP ゲートウェイ" field, setting
// a.) takes everything no route matches, without any MX lookup.
func TestSeedSmartHost_EverythingElseToOneHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(mirrorTestJP + `
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  smart_host:
    targets: ["{{sink "isp"}}"]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
`)
	w.dialogueFile(t, "smart-host", nil)
	if q := w.dns.Queries(); len(q) > 0 {
		t.Errorf("with a smart host the gateway still asked DNS: %v", q)
	}
}

// mxConfig delivers everything but test.jp by DNS MX.
const mxConfig = mirrorTestJP + `
routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  dns:
    servers: ["{{dns}}"]
    timeout: 1s
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
{{delivery}}
  guard:
    inner_networks: [127.0.0.10/32]
`

// Scenario 7: DNS MX with priorities: the lowest preference is tried
// first; when it is down, the next one takes the mail in the same attempt.
func TestSeedMX_PrioritiesAndFailoverToSecondMX(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mx1 := w.port25Sink("mx1", "127.0.1.1")
	w.port25Sink("mx2", "127.0.1.2")
	// The higher preference is listed first, so order in the answer is
	// no hint.
	w.dns.MX("example.org", 20, "mx2.example.org")
	w.dns.MX("example.org", 10, "mx1.example.org")
	w.dns.A("mx1.example.org", "127.0.1.1")
	w.dns.A("mx2.example.org", "127.0.1.2")
	w.start(mxConfig)

	w.dialogueFile(t, "mx-send", map[string]string{"Which": "primary"})
	w.dialogueFile(t, "mx-primary", nil)
	mx1.Down()
	start := time.Now()
	w.dialogueFile(t, "mx-send", map[string]string{"Which": "backup"})
	w.dialogueFile(t, "mx-backup", nil)
	// Failing over is part of one attempt, not a retry a minute later.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failover to the second MX took %v", d)
	}
}

// checkDSN checks that m is an RFC 3464 report about rcpt with the action.
func checkDSN(t *testing.T, m sinkMessage, rcpt, action string) {
	t.Helper()
	data := string(m.Data)
	for _, want := range []string{"multipart/report", "delivery-status", "Final-Recipient: rfc822;" + rcpt, "Action: " + action} {
		if !strings.Contains(strings.ReplaceAll(data, "rfc822; ", "rfc822;"), want) {
			t.Errorf("the DSN lacks %q:\n%s", want, data)
		}
	}
}

// Scenario 8: ping-pong. The seeds warn that putting the inner server
// into the "SMTP gateway" field makes mail bounce between the two servers;
// a route back to the gateway itself is the same loop and the gateway
// refuses to start with it.
func TestSeedPingPong_RouteBackToGatewayRefusedAtStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		routes string
		want   []string
	}{
		{"route to our own listener", `
  routes:
    - name: loop-to-self
      domain: test.jp
      targets: ["{{listen "mx"}}"]`, []string{"routes[0].targets[0]", "loop-to-self", "which is this gateway", "loop"}},
		{"smart host is ourselves by name", `
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
  smart_host:
    targets: ["gw.test.jp:{{port}}"]`, []string{"smart_host.targets[0]", "which is this gateway", "loop"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			routes := strings.ReplaceAll(tc.routes, "{{port}}", portOf(w.port("mx")))
			code, out := w.startFails(mirrorTestJP + `
routing:` + routes + `
  hosts:
    - name: gw.test.jp
      addrs: [127.0.0.1]
  dns:
    servers: ["{{dns}}"]
relay:
  hostname: gw.test.jp
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
{{runtime}}
`)
			t.Logf("refusal:\n%s", out)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, s := range tc.want {
				if !strings.Contains(out, s) {
					t.Errorf("the refusal does not name %q:\n%s", s, out)
				}
			}
			for _, s := range w.sinks {
				if s.Sessions() > 0 {
					t.Errorf("sink %s was contacted by a gateway that should not have started", s.name)
				}
			}
		})
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
