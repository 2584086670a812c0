package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// differ drives the live gateway through the generated transactions and
// compares each reply code with the dry run's.
type differ struct {
	t          *testing.T
	w          *world
	mismatches int
	compared   int
	accepted   []int          // transactions whose message the gateway queued
	codes      map[string]int // "stage code" -> how often: what was covered
	replays    []replay       // dialogues without STARTTLS, for relay session
	mailed     int            // transactions that reached MAIL
}

// expect compares one live reply with the dry run's step.
func (d *differ) expect(c *recConn, tx diffTx, s dryStep) bool {
	d.t.Helper()
	r, err := c.readReply()
	d.compared++
	if d.codes == nil {
		d.codes = map[string]int{}
	}
	d.codes[fmt.Sprintf("%s %d", s.Stage, s.Code)]++
	if err != nil {
		d.t.Fatalf("tx %d %s %s: %v\n%s", tx.n, s.Stage, s.Arg, err, c.log)
	}
	if r.code != strconv.Itoa(s.Code) {
		d.mismatches++
		if d.mismatches <= 10 {
			d.t.Errorf("tx %d (%+v) %s %s: live %s, relay test %d (%s)", tx.n, tx, s.Stage, s.Arg, r, s.Code, s.Verdict)
		}
	}
	return r.code[0] == '2' || r.code[0] == '3'
}

func (d *differ) simple(c *recConn, cmd, want string) {
	d.t.Helper()
	c.send(cmd + "\r\n")
	r, err := c.readReply()
	if err != nil || r.code != want {
		d.t.Fatalf("%s: %v %v (want %s)\n%s", cmd, r, err, want, c.log)
	}
}

// runGroup runs the transactions that share connection attributes on one
// connection: greeting, HELO, STARTTLS, AUTH once, then each transaction.
func (d *differ) runGroup(txs []diffTx, dry [][]dryStep, idx []int) {
	first := txs[idx[0]]
	steps := dry[idx[0]]
	sc, err := dialFrom(first.Client, d.w.port(first.Listener), first.Listener == "smtps")
	if err != nil {
		d.t.Fatal(err)
	}
	c := &recConn{smtpConn: sc}
	if !first.TLS {
		// Without STARTTLS the same dialogue can be replayed through
		// relay session (checkRelaySession).
		defer func() { d.replays = append(d.replays, replay{tx: first, c: c}) }()
	}
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	at := 0
	next := func(stage string) (dryStep, bool) {
		if at < len(steps) && steps[at].Stage == stage {
			at++
			return steps[at-1], true
		}
		return dryStep{}, false
	}
	s, _ := next("connect")
	if !d.expect(c, first, s) {
		return
	}
	s, _ = next("helo")
	if first.Helo == "" {
		c.send("HELO\r\n")
	} else {
		c.send("EHLO " + first.Helo + "\r\n")
	}
	if !d.expect(c, first, s) {
		return
	}
	if first.TLS {
		if err := c.starttls(); err != nil {
			d.t.Fatalf("STARTTLS: %v\n%s", err, c.log)
		}
		d.simple(c, "EHLO "+first.Helo, "250")
	}
	if first.Auth != "" {
		s, _ = next("auth")
		c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+first.Auth+"\x00"+diffAuth[first.Auth])) + "\r\n")
		if !d.expect(c, first, s) {
			return
		}
	}
	prefix := at
	for _, i := range idx {
		tx := txs[i]
		steps, at = dry[i], prefix
		s, ok := next("mail")
		if !ok {
			d.t.Fatalf("tx %d: the dry run has no mail step: %+v", i, dry[i])
		}
		d.mailed++
		c.send("MAIL FROM:<" + tx.From + ">\r\n")
		if !d.expect(c, tx, s) {
			d.simple(c, "RSET", "250")
			continue
		}
		for _, r := range tx.Rcpts {
			s, _ := next("rcpt")
			c.send("RCPT TO:<" + r + ">\r\n")
			d.expect(c, tx, s)
		}
		s, _ = next("data")
		c.send("DATA\r\n")
		r, err := c.readReply()
		if err != nil {
			d.t.Fatalf("tx %d DATA: %v\n%s", i, err, c.log)
		}
		if r.code == "354" {
			c.send(tx.Header + fmt.Sprintf("tx %d\r\n.\r\n", i))
			if d.expect(c, tx, s) {
				d.accepted = append(d.accepted, i)
			}
		} else {
			d.compared++
			if r.code != strconv.Itoa(s.Code) {
				d.mismatches++
				d.t.Errorf("tx %d (%+v) DATA: live %s, relay test %d", i, tx, r, s.Code)
			}
		}
		d.simple(c, "RSET", "250")
	}
	c.send("QUIT\r\n")
	c.readReply()
}

// sinkOf names the sink whose address a next-hop label holds.
func (d *differ) sinkOf(hop string) string {
	for _, name := range d.w.order {
		if a := d.w.sinks[name].addr; strings.Contains(hop, a) {
			return a
		}
	}
	return "(no sink: " + hop + ")"
}

// checkRouteTest asks `route test` for the accepted recipients of the
// unauthenticated transactions, one run per client and sender, and checks
// it names the hop the dry run (and so the live gateway) used.
func (d *differ) checkRouteTest(cfg string, txs []diffTx, dry [][]dryStep) {
	type key struct{ client, from string }
	want := map[key]map[string]string{} // rcpt as written -> sink
	var order []key
	for _, i := range d.accepted {
		tx := txs[i]
		if tx.Auth != "" {
			continue
		}
		k := key{tx.Client, tx.From}
		if want[k] == nil {
			want[k] = map[string]string{}
			order = append(order, k)
		}
		j := 0
		for _, s := range dry[i] {
			if s.Stage != "rcpt" {
				continue
			}
			if s.Verdict == "accept" {
				want[k][tx.Rcpts[j]] = d.sinkOf(s.NextHop)
			}
			j++
		}
	}
	if len(order) > 12 {
		order = order[:12] // each run is a process start
	}
	checked := 0
	for _, k := range order {
		args := []string{"route", "test", "-c", cfg, "--json", "--no-dns", "--client", k.client, "--from", k.from}
		rcpts := sortedKeys(map[string]bool{})
		for r := range want[k] {
			rcpts = append(rcpts, r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := sekisho(ctx, append(args, rcpts...)...).Output()
		cancel()
		if err != nil {
			d.t.Fatalf("route test %v: %v\n%s", rcpts, err, out)
		}
		var res []struct {
			Address string `json:"address"`
			Hops    []struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			} `json:"hops"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			d.t.Fatalf("route test --json: %v\n%s", err, out)
		}
		for _, r := range res {
			checked++
			hop := "(none)"
			if len(r.Hops) > 0 {
				hop = fmt.Sprintf("%s:%d", r.Hops[0].Host, r.Hops[0].Port)
			}
			if hop != want[k][r.Address] {
				d.t.Errorf("route test --client %s --from %q %s: next hop %s; the gateway delivered to %s", k.client, k.from, r.Address, hop, want[k][r.Address])
			}
		}
	}
	d.t.Logf("route test: %d addresses checked against the delivering sink", checked)
}

// recConn records what a dialogue sent and the reply codes it got, so
// that the dialogue can be replayed through relay session.
type recConn struct {
	*smtpConn
	script strings.Builder
	codes  []string
}

func (c *recConn) send(s string) {
	c.smtpConn.send(s)
	c.script.WriteString(s)
}

func (c *recConn) readReply() (reply, error) {
	r, err := c.smtpConn.readReply()
	if err == nil {
		c.codes = append(c.codes, r.code)
	}
	return r, err
}

type replay struct {
	tx diffTx
	c  *recConn
}

// checkRelaySession feeds recorded dialogues to relay session: every
// reply code must be the live gateway's.
func (d *differ) checkRelaySession(cfg string) {
	checked := 0
	for _, r := range d.replays {
		if checked == 12 {
			break // each run is a process start
		}
		checked++
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := sekisho(ctx, "relay", "session", "-c", cfg, "-q", "--client", r.tx.Client, "--listener", r.tx.Listener)
		cmd.Stdin = strings.NewReader(r.c.script.String())
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		cancel()
		if err != nil {
			d.t.Fatalf("relay session: %v", err)
		}
		var codes []string
		for _, line := range strings.Split(out.String(), "\n") {
			line = strings.TrimRight(line, "\r")
			if len(line) >= 3 && (len(line) == 3 || line[3] == ' ') {
				codes = append(codes, line[:3])
			}
		}
		if strings.Join(codes, " ") != strings.Join(r.c.codes, " ") {
			d.t.Errorf("relay session --client %s --listener %s answered %v; the live gateway %v\n%s",
				r.tx.Client, r.tx.Listener, codes, r.c.codes, r.c.script.String())
		}
	}
	d.t.Logf("relay session: %d dialogues replayed", checked)
}
