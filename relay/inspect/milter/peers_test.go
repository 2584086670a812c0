package milter

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/inspect/milter/miltertest"
)

// These tests run the real content filters (relay/milter/miltertest);
// each is skipped only when its binary is absent.

func message(body string, attach []byte) (hdr, b []byte) {
	h := "From: alice@example.com\r\nTo: bob@city.lg.jp\r\nSubject: test\r\nMessage-ID: <t1@example.com>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
	if attach == nil {
		return []byte(h + "Content-Type: text/plain; charset=us-ascii\r\n"), []byte(body)
	}
	enc := base64.StdEncoding.EncodeToString(attach)
	return []byte(h + "Content-Type: multipart/mixed; boundary=b1\r\n"), []byte("--b1\r\nContent-Type: text/plain\r\n\r\n" + body +
		"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=test.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		enc + "\r\n--b1--\r\n")
}

func txnOf(hdr, body []byte) Transaction {
	t := testTxn()
	t.Header, t.Body = hdr, bytes.NewReader(body)
	return t
}

func TestClamAVMilter(t *testing.T) {
	addr, _ := miltertest.ClamAV(t)
	c := New("gw.city.lg.jp", []Config{{Name: "clamav", Address: addr, Timeout: 10 * time.Second}})
	ctx := context.Background()

	hdr, body := message("Please see the attachment.\r\n", []byte(miltertest.EICAR))
	begin := time.Now()
	r := c.Check(ctx, txnOf(hdr, body))
	t.Logf("EICAR checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Reject || r.Reply.Code/100 != 5 || !strings.Contains(r.Reply.Text, "Sekisho-Test-EICAR") {
		t.Errorf("EICAR: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}

	hdr, body = message("A clean letter.\r\n", []byte("just some bytes\n"))
	begin = time.Now()
	r = c.Check(ctx, txnOf(hdr, body))
	t.Logf("clean message checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Accept || len(r.Failed) > 0 {
		t.Fatalf("clean: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
	out := string(ApplyEdits(hdr, r.Edits))
	if !strings.Contains(out, "X-Virus-Status: Clean") {
		t.Errorf("clean message header after edits:\n%s", out)
	}
}

func TestRspamdMilter(t *testing.T) {
	c := New("gw.city.lg.jp", []Config{{Name: "rspamd", Address: miltertest.Rspamd(t), Timeout: 10 * time.Second}})
	ctx := context.Background()

	hdr, body := message("A clean letter about the budget meeting on Monday.\r\n", nil)
	begin := time.Now()
	r := c.Check(ctx, txnOf(hdr, body))
	t.Logf("clean message checked in %v", time.Since(begin).Round(time.Microsecond))
	if r.Action != Accept || len(r.Failed) > 0 {
		t.Fatalf("clean: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
	out := string(ApplyEdits(hdr, r.Edits))
	if !strings.Contains(out, "X-Spamd-Result: default: False") {
		t.Errorf("no rspamd verdict header after edits %+v:\n%s", r.Edits, out)
	}

	hdr, body = message("Buy now.\r\n"+miltertest.GTUBE+"\r\n", nil)
	r = c.Check(ctx, txnOf(hdr, body))
	if r.Action != Reject || r.Reply.Code/100 != 5 {
		t.Errorf("GTUBE: got %v %+v failed %v", r.Action, r.Reply, r.Failed)
	}
}

// A milter that dies between two messages: the next message is answered
// 451 (tempfail policy) or passes (accept policy), never lost or hung.
func TestClamAVMilterDies(t *testing.T) {
	addr, stop := miltertest.ClamAV(t)
	hdr, body := message("hello\r\n", nil)
	if r := New("gw", []Config{{Name: "clamav", Address: addr}}).Check(context.Background(), txnOf(hdr, body)); r.Action != Accept {
		t.Fatalf("before the milter stops: %+v", r)
	}
	stop()
	for _, tc := range []struct {
		policy string
		want   Action
	}{{OnFailureTempfail, TempFail}, {OnFailureAccept, Accept}} {
		r := New("gw", []Config{{Name: "clamav", Address: addr, OnFailure: tc.policy, Timeout: time.Second}}).Check(context.Background(), txnOf(hdr, body))
		if r.Action != tc.want || len(r.Failed) != 1 {
			t.Errorf("%s: got %v %+v %v", tc.policy, r.Action, r.Reply, r.Failed)
		}
	}
}
