package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/milter/miltertest"
	"github.com/sekisho/sekisho/rewrite"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// Every YAML block of docs/milters.md is a configuration the loader
// takes, and its milters, pointed at a real clamav-milter and rspamd
// started with the guide's settings, refuse EICAR and score a clean
// letter.
func TestMilterGuide(t *testing.T) {
	doc := mustRead(t, "../../docs/milters.md")
	blocks := yamlBlock.FindAllSubmatch(doc, -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/milters.md has %d YAML blocks, want the rspamd, clamav and combined ones", len(blocks))
	}
	var cfgs [][]milter.Config
	for i, b := range blocks {
		cfg, err := parseConfig(b[1], "docs/milters.md")
		if err == nil {
			err = cfg.validate()
		}
		if err != nil {
			t.Fatalf("block %d: %v\n%s", i+1, err, b[1])
		}
		if len(cfg.Relay.Inspect.Milters) == 0 {
			t.Fatalf("block %d configures no milter", i+1)
		}
		cfgs = append(cfgs, cfg.Relay.Inspect.Milters)
	}

	// The guide's milters, at the addresses of real ones.
	clamav, _ := miltertest.ClamAV(t)
	rspamd := miltertest.Rspamd(t)
	ctx := context.Background()
	for i, ms := range cfgs {
		names := map[string]bool{}
		for j := range ms {
			switch ms[j].Name {
			case "clamav":
				ms[j].Address = clamav
			case "rspamd":
				ms[j].Address = rspamd
			default:
				t.Fatalf("block %d: milter %q is neither clamav nor rspamd", i+1, ms[j].Name)
			}
			names[ms[j].Name] = true
		}
		c := milter.New("gw.city.example.lg.jp", ms)
		if names["clamav"] {
			r := c.Check(ctx, guideMessage("See the attachment.\r\n", miltertest.EICAR))
			if r.Action != milter.Reject || !strings.Contains(r.Reply.Text, "Virus found") {
				t.Errorf("block %d, EICAR: %v %+v failed %v", i+1, r.Action, r.Reply, r.Failed)
			}
		}
		r := c.Check(ctx, guideMessage("A clean letter about the budget meeting on Monday.\r\n", ""))
		if r.Action != milter.Accept || len(r.Failed) > 0 {
			t.Errorf("block %d, clean letter: %v %+v failed %v", i+1, r.Action, r.Reply, r.Failed)
			continue
		}
		h := string(milter.ApplyEdits([]byte("Subject: x\r\n"), r.Edits))
		if names["clamav"] && !strings.Contains(h, "X-Virus-Status: Clean") {
			t.Errorf("block %d: no clamav verdict in %q", i+1, h)
		}
		if names["rspamd"] && !strings.Contains(h, "X-Spamd-Result:") {
			t.Errorf("block %d: no rspamd verdict in %q", i+1, h)
		}
	}
}

// guideMessage is a letter from the internet, with an attachment when
// attach is set.
func guideMessage(body, attach string) milter.Transaction {
	h := "From: alice@example.com\r\nTo: tanaka@city.example.lg.jp\r\nSubject: test\r\nMessage-ID: <g1@example.com>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
	b := body
	if attach == "" {
		h += "Content-Type: text/plain; charset=us-ascii\r\n"
	} else {
		h += "Content-Type: multipart/mixed; boundary=b1\r\n"
		b = "--b1\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n--b1\r\nContent-Type: application/octet-stream\r\n" +
			"Content-Disposition: attachment; filename=test.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte(attach)) + "\r\n--b1--\r\n"
	}
	return milter.Transaction{
		ClientIP: netip.MustParseAddr("192.0.2.7"), ClientPort: 40000, Helo: "mx.example.com",
		From: "alice@example.com", Rcpts: []string{"tanaka@city.example.lg.jp"}, QueueID: "G1",
		Source: rewrite.SourceInternet, Header: []byte(h), Body: bytes.NewReader([]byte(b)),
		Trace: "Received: from mx.example.com ([192.0.2.7])\r\n\tby gw.city.example.lg.jp (sekisho) with ESMTP id G.1; " + time.Now().Format(time.RFC1123Z) + "\r\n",
	}
}
