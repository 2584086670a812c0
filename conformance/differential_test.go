package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// The differential test: generated transactions run against the live
// gateway over loopback and through `relay test --batch`; every reply code
// must be equal, every accepted recipient must reach the sink the dry run
// names as its next hop, and `route test` must name that hop too.

const differentialConfig = `
accounts:
  protected: [postmaster, abuse]
  domains:
    - name: test.jp
      mode: mirror
    - name: case.jp
      mode: mirror
      local_part_case: sensitive
  accounts:
    - address: postmaster@test.jp
      secret: "{PLAIN}postmaster-secret"
    - address: bucho@test.jp
      secret: "{PLAIN}bucho-secret"
    - address: tanaka@test.jp
      secret: "{PLAIN}tanaka-secret"
    - address: user1@test.jp
    - address: helpdesk@test.jp
    - address: baito@test.jp
      outbound_blocked: true
      secret: "{PLAIN}baito-secret"
    - address: Tanaka@case.jp
    - address: tanaka@case.jp
  aliases:
    - alias: info@test.jp
      target: helpdesk@test.jp
    - alias: kikaku@test.jp
      target: tanaka@test.jp

rewrite:
  rules:
    - name: regional-to-lg
      domain: city.jp
      replace: test.jp
      source: [inner, authenticated, internet]
    - name: helpdesk-outsourced
      address: helpdesk@test.jp
      replace: helpdesk@partner.example
      classes: [envelope_recipient]
      source: [inner, authenticated, internet]

routing:
  routes:
    - name: inner-server
      domain: test.jp
      targets: ["{{sink "inner"}}"]
      tls: none
    - name: case-server
      domain: case.jp
      targets: ["{{sink "case"}}"]
      tls: none
    - name: partner
      domain: partner.example
      targets: ["{{sink "partner"}}"]
      tls: none
  smart_host:
    targets: ["{{sink "internet"}}"]
    tls: none
  dns:
    servers: ["{{dns}}"]
    timeout: 1s

relay:
  hostname: gw.test.jp
  limits:
    error_limit: 0   # many refusals share a connection here
  # Thousands of transactions a minute from a few clients, compared with
  # relay test, which counts each probe as a fresh minute: the rate
  # limits have tests of their own.
  rate_limits:
    exempt: [127.0.0.0/8]
  listeners:
    - address: "{{listen "mx"}}"
      mode: mx
    - address: "{{listen "submission"}}"
      mode: submission
    - address: "{{listenTLS "smtps"}}"
      mode: smtps
  tls:
    cert_file: "{{cert}}"
    key_file: "{{key}}"
{{runtime}}
{{delivery}}
  auth:
    mechanisms: [PLAIN, LOGIN]
    max_failures: 1000000
  guard:
    inner_networks: [127.0.0.10/32]
    sender_trust: header
    rules:
      - name: staff-lan
        action: require_auth
        networks: [127.0.10.0/24]
      - name: spam
        action: deny
        senders: ["*@spam.example"]
`

// The generator's vocabulary: addresses as a client writes them.
var (
	diffClients = []string{"inner", "internet", "staff"}
	diffAuth    = map[string]string{"tanaka@test.jp": "tanaka-secret", "baito@test.jp": "baito-secret",
		"bucho@test.jp": "bucho-secret", "user1@test.jp": "", "nobody@test.jp": "x"}
	diffSenders = []string{"", "tanaka@test.jp", "TANAKA@test.jp", "bucho@test.jp", "postmaster@test.jp",
		"baito@test.jp", "a@example.org", "tanaka@city.jp", "baito@city.jp", "x@spam.example",
		`"user1"@test.jp`, "info@test.jp", "Tanaka@case.jp"}
	diffRcpts = []string{"tanaka@test.jp", "Tanaka@test.jp", `"user1"@test.jp`, "info@test.jp",
		"kikaku@test.jp", "helpdesk@test.jp", "nobody@test.jp", "Tanaka@case.jp", "tanaka@case.jp",
		"TANAKA@case.jp", "friend@example.org", "helpdesk@partner.example", "user%evil@test.jp",
		"a@[127.0.0.1]", "bob@city.jp", "tanaka@city.jp", "postmaster@test.jp", `"a@b"@test.jp`,
		"postmaster@case.jp", "bucho@test.jp"}
)

// diffTx is one generated transaction; its connection attributes group
// it with others on one connection.
type diffTx struct {
	n        int
	Client   string   `json:"client"`
	Helo     string   `json:"helo"`
	Auth     string   `json:"auth"`
	TLS      bool     `json:"tls"`
	Listener string   `json:"listener"`
	From     string   `json:"from"`
	Rcpts    []string `json:"rcpts"`
	Header   string   `json:"header"`
}

func (tx diffTx) connKey() string {
	return fmt.Sprintf("%s|%s|%s|%v|%s", tx.Client, tx.Helo, tx.Auth, tx.TLS, tx.Listener)
}

func generate(rng *rand.Rand, n int) []diffTx {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	// Failing logins end their connection's transactions at AUTH:
	// rarer than good ones, so most transactions reach MAIL.
	users := []string{"tanaka@test.jp", "baito@test.jp", "bucho@test.jp", "tanaka@test.jp", "baito@test.jp",
		"bucho@test.jp", "user1@test.jp", "nobody@test.jp"}
	txs := make([]diffTx, n)
	for i := range txs {
		tx := diffTx{n: i, Client: sources[pick(diffClients)], Helo: "client.test", Listener: "mx", TLS: rng.IntN(2) == 0}
		if rng.IntN(200) == 0 {
			tx.Helo = "" // a bare HELO
		}
		switch rng.IntN(8) {
		case 0, 1:
			tx.Listener = "submission"
		case 2:
			tx.Listener = "smtps"
		}
		if rng.IntN(3) == 0 {
			tx.Auth = users[rng.IntN(len(users))]
			tx.TLS = tx.TLS || rng.IntN(4) > 0 // AUTH without TLS: 523
		}
		if tx.Listener == "smtps" {
			tx.TLS = false // implicit TLS: no STARTTLS
		}
		tx.From = pick(diffSenders)
		for range 1 + rng.IntN(4) {
			tx.Rcpts = append(tx.Rcpts, pick(diffRcpts))
		}
		from := strings.ReplaceAll(tx.From, `"`, "")
		switch {
		case rng.IntN(40) == 0:
			tx.Header = strings.Repeat("Received: from a by b; Sun, 29 Nov 2026 05:00:00 +0900\r\n", 31) // a loop: 554 5.4.6
		case rng.IntN(20) == 0:
			tx.Header = "From: <" + pick(diffSenders[1:]) + ">\r\n" // sender_trust header decides
		}
		if from != "" {
			tx.Header += "From: <" + from + ">\r\n"
		}
		tx.Header += fmt.Sprintf("Subject: differential %d\r\nMessage-ID: <d%d@conformance.test>\r\n\r\n", i, i)
		txs[i] = tx
	}
	return txs
}

type dryStep struct {
	Stage     string `json:"stage"`
	Arg       string `json:"arg"`
	Verdict   string `json:"verdict"`
	Code      int    `json:"code"`
	Target    string `json:"target"`
	Rewritten string `json:"rewritten"`
	NextHop   string `json:"next_hop"`
}

// runBatch decides every transaction with one `relay test --batch`.
func runBatch(t *testing.T, cfg string, txs []diffTx) ([][]dryStep, int) {
	t.Helper()
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, tx := range txs {
		enc.Encode(tx)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := sekisho(ctx, "relay", "test", "-c", cfg, "--batch")
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &errb
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("relay test --batch: %v", err)
		}
		code = ee.ExitCode()
	}
	var res [][]dryStep
	dec := json.NewDecoder(&out)
	for {
		var r struct {
			Steps []dryStep `json:"steps"`
			Error string    `json:"error"`
		}
		if err := dec.Decode(&r); err != nil {
			break
		}
		if r.Error != "" {
			t.Fatalf("relay test --batch: %s\n%s", r.Error, errb.String())
		}
		res = append(res, r.Steps)
	}
	if len(res) != len(txs) {
		t.Fatalf("relay test --batch answered %d of %d probes (exit %d)\n%s", len(res), len(txs), code, errb.String())
	}
	return res, code
}

// finalAddr is where an accepted recipient step ends up in the queue.
func (s dryStep) finalAddr() string {
	switch {
	case s.Rewritten != "":
		return s.Rewritten
	case s.Target != "":
		return s.Target
	}
	return s.Arg
}

func TestDifferential_RelayTestEqualsLiveGateway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(differentialConfig)
	n := 2000
	if testing.Short() {
		n = 300
	}
	txs := generate(rand.New(rand.NewPCG(13, 2026)), n)
	dry, code := runBatch(t, g.cfg, txs)
	if code != 1 {
		t.Errorf("relay test --batch exited %d with refusals among the steps; want 1", code)
	}

	groups := map[string][]int{}
	var order []string
	for i, tx := range txs {
		k := tx.connKey()
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	d := &differ{t: t, w: w}
	for _, k := range order {
		d.runGroup(txs, dry, groups[k])
	}
	if d.mismatches > 0 {
		t.Fatalf("%d reply codes differ between the live gateway and relay test (first ones above)", d.mismatches)
	}
	t.Logf("%d transactions on %d connections, %d reached MAIL, %d replies compared, %d messages accepted",
		n, len(order), d.mailed, d.compared, len(d.accepted))
	t.Logf("replies compared, by stage and code: %v", d.codes)

	// Every accepted recipient reaches the sink the dry run names.
	g.waitQueueEmpty(t)
	got := map[string]map[string]bool{} // "tx N" -> sink/rcpt
	for _, name := range w.order {
		s := w.sinks[name]
		for _, m := range s.Messages() {
			var id int
			hdr := m.header()
			i := strings.Index(hdr, "Subject: differential ")
			if i < 0 {
				continue
			}
			fmt.Sscanf(hdr[i+len("Subject: differential "):], "%d", &id)
			key := fmt.Sprint(id)
			if got[key] == nil {
				got[key] = map[string]bool{}
			}
			for _, r := range m.To {
				got[key][s.addr+" "+r] = true
			}
		}
	}
	bad := 0
	for _, i := range d.accepted {
		want := map[string]bool{}
		for _, s := range dry[i] {
			if s.Stage == "rcpt" && s.Verdict == "accept" {
				want[d.sinkOf(s.NextHop)+" "+s.finalAddr()] = true
			}
		}
		// Duplicates are queued once, so compare the sets.
		if fmt.Sprint(sortedKeys(want)) != fmt.Sprint(sortedKeys(got[fmt.Sprint(i)])) {
			bad++
			if bad <= 10 {
				t.Errorf("tx %d (%+v): delivered %v; relay test named %v", i, txs[i], sortedKeys(got[fmt.Sprint(i)]), sortedKeys(want))
			}
		}
	}

	// route test names the same next hop.
	d.checkRouteTest(g.cfg, txs, dry)
	// relay session answers the same dialogues with the same codes.
	d.checkRelaySession(g.cfg)

	// relay test exits 1 when a step refuses, 0 otherwise.
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--client", innerIP, "--from", "tanaka@test.jp", "--rcpt", `"user1"@test.jp`}, 0},
		{[]string{"--client", internetIP, "--from", "a@example.org", "--rcpt", "info@test.jp"}, 1},
		{[]string{"--client", internetIP, "--from", "a@example.org", "--rcpt", "someone@example.org"}, 1},
		{[]string{"--client", internetIP, "--helo", "", "--from", "a@example.org", "--rcpt", "tanaka@test.jp"}, 0},
	} {
		cmd := sekisho(context.Background(), append([]string{"relay", "test", "-c", g.cfg}, c.args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != c.want {
			t.Errorf("relay test %v: exit %d, want %d\n%s", c.args, code, c.want, out)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
