package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/sekisho/sekisho/rewrite"
)

// Issue 30: every copy speaks its own network. With the shipped municipal
// example (its DKIM block uncommented), one message from the inner server
// to another municipality, a partner on the internet and a colleague: the
// LGWAN copy carries LG addresses in envelope and header, the internet copy
// regional ones only and no Received field written inside, and a DKIM
// signature that verifies; the local copy is the message as received; the
// delivery log names each copy's envelope as sent; and `rewrite test`
// predicts the three copies byte for byte. Postfix is the inner server
// where it is installed; elsewhere the message comes straight from the
// inner server's address.
func TestPerCopy_LGWANInternetAndLocalCopiesFromTheInnerServer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := municipalExample(t, w)
	// The example's inline accounts are enough: no directory file.
	const directory = `  directory: "{{path "accounts.tsv"}}"` + "\n"
	if !strings.Contains(cfg, directory) {
		t.Fatalf("municipalExample no longer sets accounts.directory as %q", directory)
	}
	cfg = strings.Replace(cfg, directory, "", 1)
	cfg = uncommentDKIM(t, cfg, w.path("dkim.pem"))
	keygen(t, w)
	inner := w.sink("inner") // the local copy's mailbox store
	params := map[string]any{"Listener": "mx", "Source": "inner"}
	var pf *postfixPeer
	if why := postfixMissing(); why != "" {
		t.Logf("the inner server is simulated (%s)", why)
	} else {
		pf = startPostfixInner(t, postfixInner{hostname: "mail.city.lan", domain: "city.toyokawa.lg.jp",
			mailboxes: []string{"bucho@city.toyokawa.lg.jp", "tanaka@city.toyokawa.lg.jp"}, mailstore: inner.addr,
			relayhost: w.port("mx"), bindAddr: innerIP})
		w.ports["postfix"] = pf.addr
		params = map[string]any{"Listener": "postfix", "Source": "staff"}
		const route = `targets: ["{{sink "inner"}}"]`
		if strings.Count(cfg, route) != 2 {
			t.Fatalf("the municipal example no longer has two routes to the inner server (%s)", route)
		}
		cfg = strings.ReplaceAll(cfg, route, `targets: ["`+pf.addr+`"]`)
	}
	g := w.start(cfg)
	w.dialogueFile(t, "per-copy-mixed", params)
	sent := dataSent(t, "per-copy-mixed", params)
	sentHeader, sentBody, _ := strings.Cut(sent, "\r\n\r\n")
	sentHeader += "\r\n\r\n"

	one := func(s *sink) sinkMessage {
		t.Helper()
		return s.Wait(t, waitTimeout, "the copy for "+s.name, func(m []sinkMessage) bool { return len(m) >= 1 })[0]
	}
	lgwan, internet, local := one(w.sinks["lgwan"]), one(w.sinks["internet"]), one(inner)
	g.waitQueueEmpty(t)
	for _, m := range []sinkMessage{lgwan, internet, local} {
		t.Logf("%s\n%s", m, m.header())
	}
	for _, s := range []string{"lgwan", "internet", "inner"} {
		if n := len(w.sinks[s].Messages()); n != 1 {
			t.Errorf("%s got %d messages, want one copy", s, n)
		}
	}
	for _, m := range []sinkMessage{lgwan, internet, local} {
		if m.body() != sentBody {
			t.Errorf("a body changed on the way (MAIL FROM:<%s>):\n%q\nwant\n%q", m.From, m.body(), sentBody)
		}
	}

	// The local copy is the message as queued: the gateway's Received
	// field on top of what the inner server sent (under Postfix's last
	// hop, where Postfix relays it, and the signature the gateway adds to
	// mail from our regional domain).
	queued := string(local.Data)
	if pf != nil {
		queued = withoutFirstField(t, queued, "Received", "by mail.city.lan (Postfix)")
	}
	queued = withoutFirstField(t, queued, "DKIM-Signature", "d=city.toyokawa.aichi.jp")
	ours, rest := firstField(queued)
	helo := "pc123.city.lan" // the dialogue's EHLO
	if pf != nil {
		helo = "mail.city.lan" // Postfix's
	}
	if want := "Received: from " + helo + " ([" + innerIP + "])\r\n\tby gw.city.toyokawa.lg.jp (sekisho)"; !strings.HasPrefix(ours, want) {
		t.Errorf("the local copy does not start with the gateway's Received field %q:\n%s", want, ours)
	}
	if pf != nil {
		postfixHop, r := firstField(rest)
		if !strings.Contains(postfixHop, "by mail.city.lan (Postfix)") {
			t.Errorf("the message did not pass through Postfix:\n%s", postfixHop)
		}
		rest = r
	}
	if !strings.HasPrefix(rest, sentHeader) {
		t.Errorf("the local copy's header is not the message as sent:\n%s\nwant\n%s", rest, sentHeader)
	}
	if local.From != "tanaka@city.toyokawa.aichi.jp" || strings.Join(local.To, ",") != "bucho@city.toyokawa.lg.jp" {
		t.Errorf("local copy: MAIL FROM:<%s> RCPT TO:%v, want the sender as received and bucho's LG address", local.From, local.To)
	}

	// The LGWAN copy: LG sender and LG recipients, envelope and header;
	// only the addr-specs changed.
	queuedHeader, _, _ := strings.Cut(queued, "\r\n\r\n")
	queuedHeader += "\r\n\r\n"
	toLG := strings.NewReplacer("tanaka@city.toyokawa.aichi.jp", "tanaka@city.toyokawa.lg.jp",
		"kikaku@city.nagoya.jp", "kikaku@city.nagoya.lg.jp", "bucho@city.toyokawa.aichi.jp", "bucho@city.toyokawa.lg.jp")
	if got, want := lgwan.header()+"\r\n", toLG.Replace(queuedHeader); got != want {
		t.Errorf("the LGWAN copy's header:\n%s\nwant (the addresses LG, nothing else changed):\n%s", got, want)
	}
	if lgwan.From != "tanaka@city.toyokawa.lg.jp" || strings.Join(lgwan.To, ",") != "kikaku@city.nagoya.lg.jp" {
		t.Errorf("LGWAN copy: MAIL FROM:<%s> RCPT TO:%v, want the LG sender and recipient", lgwan.From, lgwan.To)
	}

	// The internet copy: regional addresses only, no Received field from
	// inside, signed after the rewrite.
	if internet.From != "tanaka@city.toyokawa.aichi.jp" || strings.Join(internet.To, ",") != "friend@example.com" {
		t.Errorf("internet copy: MAIL FROM:<%s> RCPT TO:%v", internet.From, internet.To)
	}
	signature, unsigned := firstField(string(internet.Data))
	if !strings.HasPrefix(signature, "DKIM-Signature:") {
		t.Fatalf("the internet copy is not signed:\n%s", internet.Data)
	}
	for _, a := range rewrite.ScanHeader([]byte(unsigned)) {
		switch strings.ToLower(a.Field) {
		case "from", "sender", "reply-to", "to", "cc":
			if strings.HasSuffix(strings.ToLower(a.Address), ".lg.jp") {
				t.Errorf("the internet copy has the LG address %s in %s:", a.Address, a.Field)
			}
		}
	}
	var received []string
	for h := unsigned; ; {
		f, r := firstField(h)
		if f == "" || f == "\r\n" {
			break
		}
		if strings.HasPrefix(f, "Received:") {
			received = append(received, f)
		}
		h = r
	}
	if len(received) != 1 || !strings.HasPrefix(received[0], "Received: from internal ([internal])\r\n\tby gw.city.toyokawa.lg.jp (sekisho)") {
		t.Errorf("the internet copy's Received fields, want only the gateway's with the inner server masked:\n%s", strings.Join(received, ""))
	}
	for _, inside := range []string{"mail.city.lan", "pc123", innerIP, staffIP, "Postfix"} {
		if strings.Contains(unsigned, inside) {
			t.Errorf("the internet copy still names %q:\n%s", inside, internet.header())
		}
	}
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, w.dns.Addr)
	}}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(internet.Data), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		return resolver.LookupTXT(context.Background(), d)
	}})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "city.toyokawa.aichi.jp" {
		t.Errorf("DKIM on the internet copy: %v %+v", err, vs)
	}

	// The delivery log names each copy's envelope as sent.
	for _, want := range [][]string{
		{"kind=send", "rcpt=kikaku@city.nagoya.lg.jp", "from=tanaka@city.toyokawa.lg.jp", "queued_from=tanaka@city.toyokawa.aichi.jp"},
		{"kind=send", "rcpt=friend@example.com", "from=tanaka@city.toyokawa.aichi.jp"},
		{"kind=send", "rcpt=bucho@city.toyokawa.lg.jp", "from=tanaka@city.toyokawa.aichi.jp"},
	} {
		if g.countLog(append([]string{"msg=delivery"}, want...)...) != 1 {
			t.Errorf("no delivery log line with %v:\n%s", want, grepLines(g.logs.String(), "msg=delivery"))
		}
	}

	// rewrite test, given the message as queued and the envelope as the
	// inner server sent it, predicts every copy byte for byte.
	msgFile := w.writeFile("queued.eml", queued)
	out := runCLI(t, "rewrite", "test", "-c", g.cfg, "--message", msgFile, "--json", "--from", "tanaka@city.toyokawa.aichi.jp",
		"--rcpt", "kikaku@city.nagoya.jp", "--rcpt", "friend@example.com", "--rcpt", "bucho@city.toyokawa.aichi.jp")
	var pred struct {
		Copies []struct {
			Route    string `json:"route"`
			Envelope struct {
				From string   `json:"from"`
				Rcpt []string `json:"rcpt"`
			} `json:"envelope"`
			Header string `json:"header"`
		} `json:"copies"`
	}
	if err := json.Unmarshal([]byte(out), &pred); err != nil {
		t.Fatalf("rewrite test --json: %v\n%s", err, out)
	}
	got := map[string]sinkMessage{"lgwan": lgwan, "smart_host": {From: internet.From, To: internet.To, Data: []byte(unsigned)},
		"inner-server": {From: local.From, To: local.To, Data: []byte(queued)}}
	if len(pred.Copies) != 3 {
		t.Fatalf("rewrite test predicts %d copies, want 3:\n%s", len(pred.Copies), out)
	}
	for _, c := range pred.Copies {
		m, ok := got[c.Route]
		if !ok {
			t.Errorf("rewrite test predicts a copy for route %q", c.Route)
			continue
		}
		if c.Envelope.From != m.From || strings.Join(c.Envelope.Rcpt, ",") != strings.Join(m.To, ",") {
			t.Errorf("route %s: predicted MAIL FROM:<%s> RCPT TO:%v, sent <%s> %v", c.Route, c.Envelope.From, c.Envelope.Rcpt, m.From, m.To)
		}
		if want := m.header() + "\r\n"; c.Header != want {
			t.Errorf("route %s: predicted header\n%s\nsent\n%s", c.Route, c.Header, want)
		}
	}
}

// uncommentDKIM turns on the municipal example's commented DKIM block,
// with the key in the scenario folder.
func uncommentDKIM(t *testing.T, cfg, keyFile string) string {
	t.Helper()
	const block = `  # inspect:
  #   dkim_sign:
  #     keys:
  #       - domain: city.toyokawa.aichi.jp
  #         selector: gw
  #         key_file: /etc/sekisho/dkim.pem
`
	if !strings.Contains(cfg, block) {
		t.Fatalf("configs/municipal-gateway.yaml no longer has the commented DKIM block:\n%s", block)
	}
	on := strings.ReplaceAll(block, "  # ", "  ")
	on = strings.Replace(on, "/etc/sekisho/dkim.pem", `"`+keyFile+`"`, 1)
	return strings.Replace(cfg, block, on, 1)
}

// firstField splits a message or header at the end of its first field
// (the empty line that ends a header is a field of its own here).
func firstField(s string) (field, rest string) {
	if strings.HasPrefix(s, "\r\n") {
		return "\r\n", s[2:]
	}
	i := 0
	for {
		j := strings.Index(s[i:], "\r\n")
		if j < 0 {
			return s, ""
		}
		i += j + 2
		if i >= len(s) || (s[i] != ' ' && s[i] != '\t') {
			return s[:i], s[i:]
		}
	}
}

// withoutFirstField removes the first field of s, which must be a name
// field containing sub.
func withoutFirstField(t *testing.T, s, name, sub string) string {
	t.Helper()
	f, rest := firstField(s)
	if !strings.HasPrefix(f, name+":") || !strings.Contains(f, sub) {
		t.Fatalf("the message does not start with a %s field containing %q:\n%s", name, sub, f)
	}
	return rest
}
