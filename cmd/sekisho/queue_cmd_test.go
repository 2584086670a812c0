package main

import (
	"github.com/sekisho/sekisho/rewrite"

	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

const queueTestConfig = `
relay:
  queue:
    dir: spool
    max_bytes: 1GiB
    max_messages: 1000
    segment_size: 64MiB
    inline_max: 1MiB
    compact_after: 5m
`

// queueWorld is a spool with two messages, opened as a running gateway
// would hold it, and a configuration file pointing at it.
func queueWorld(t *testing.T) (dir, cfgPath string, q *queue.Spool, ids []queue.ID) {
	t.Helper()
	jst := time.FixedZone("JST", 9*3600)
	saved := time.Local
	time.Local = jst
	t.Cleanup(func() { time.Local = saved })
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfgPath, queueTestConfig)
	var errOut strings.Builder
	qcfg, ok := queueConfig(&cmdEnv{stderr: &errOut}, cfgPath)
	if !ok {
		t.Fatal(errOut.String())
	}
	now := time.Date(2025, 4, 1, 9, 30, 0, 0, jst)
	q, err := queue.Open(qcfg, queue.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	env := queue.Envelope{
		From: "taro@city.example.lg.jp", ReceivedAt: now, Source: rewrite.SourceInner,
		ClientIP: "192.168.0.103", Helo: "inner.city.example.lg.jp", BodyType: "8BITMIME",
		Rcpts: []queue.Recipient{
			{Addr: "hanako@town.example.lg.jp", OrigAddr: "hanako@town.example.jp", Notify: "FAILURE"},
			{Addr: "jiro@example.com", OrigAddr: "jiro@example.com"},
		},
	}
	data := "Received: from inner\r\nSubject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\nFrom: taro@city.example.lg.jp\r\n\r\nbody\r\n"
	for range 2 {
		id, err := q.Enqueue(env, strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := q.MarkDelivered(ids[0], 1); err != nil {
		t.Fatal(err)
	}
	if err := q.MarkDeferred(ids[0], 0, now.Add(2*time.Minute), "451 4.7.1 Greylisted,\r\n please retry"); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath, q, ids
}

func TestQueueListAndShow(t *testing.T) {
	dir, cfg, _, ids := queueWorld(t)
	out, errOut, code := runSekisho(t, "", "queue", "list", "-c", cfg)
	if code != exitOK {
		t.Fatalf("queue list: %d %s", code, errOut)
	}
	assertGolden(t, "queue/list.txt", dir, out)

	out, errOut, code = runSekisho(t, "", "queue", "show", "-c", cfg, strings.ToLower(ids[0].String()))
	if code != exitOK {
		t.Fatalf("queue show: %d %s", code, errOut)
	}
	assertGolden(t, "queue/show.txt", dir, out)

	out, _, code = runSekisho(t, "", "queue", "list", "-c", cfg, "--json")
	var msgs []queue.Message
	if code != exitOK || json.Unmarshal([]byte(out), &msgs) != nil || len(msgs) != 2 {
		t.Fatalf("queue list --json: %d %s", code, out)
	}
	if msgs[0].ID != ids[0] || msgs[0].Rcpts[0].Status != queue.Deferred || msgs[0].Envelope.Rcpts[0].OrigAddr != "hanako@town.example.jp" {
		t.Errorf("JSON listing: %+v", msgs[0])
	}
	out, _, code = runSekisho(t, "", "queue", "show", "-c", cfg, "--json", ids[1].String())
	var shown struct {
		queue.Message
		Header string `json:"header"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != ids[1] || !strings.Contains(shown.Header, "Subject:") {
		t.Fatalf("queue show --json: %d %s", code, out)
	}
}

// TestQueueChangesThroughRunningGateway: hold, release, retry and delete
// while the spool is held open, as by a running gateway.
func TestQueueChangesThroughRunningGateway(t *testing.T) {
	_, cfg, q, ids := queueWorld(t)
	for _, tc := range []struct {
		args  []string
		code  int
		out   string
		check func() bool
	}{
		{[]string{"hold", ids[1].String()}, exitOK, ids[1].String() + ": held\n",
			func() bool { m, _ := q.Get(ids[1]); return m.Held }},
		{[]string{"release", ids[1].String()}, exitOK, ids[1].String() + ": released\n",
			func() bool { m, _ := q.Get(ids[1]); return !m.Held }},
		{[]string{"retry", "--all"}, exitOK, ids[0].String() + ": due now\n", nil},
		{[]string{"delete", ids[0].String()}, exitOK, ids[0].String() + ": deleted\n",
			func() bool { _, err := q.Get(ids[0]); return err != nil }},
		{[]string{"delete", ids[0].String()}, exitFinding, "", nil},
		{[]string{"hold", "not-an-id"}, exitUsage, "", nil},
		{[]string{"hold"}, exitUsage, "", nil},
		{[]string{"hold", "--all"}, exitUsage, "usage", nil}, // --all is retry's only
	} {
		args := append([]string{"queue"}, tc.args[0], "-c", cfg)
		out, errOut, code := runSekisho(t, "", append(args, tc.args[1:]...)...)
		if code != tc.code || (out != tc.out && !(tc.out == "usage" && strings.HasPrefix(out, "usage:"))) {
			t.Errorf("queue %v: code %d out %q err %q; want %d %q", tc.args, code, out, errOut, tc.code, tc.out)
		}
		if tc.check != nil && !tc.check() {
			t.Errorf("queue %v: not applied", tc.args)
		}
	}
}

func TestQueueNoSpool(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfg, queueTestConfig)
	_, errOut, code := runSekisho(t, "", "queue", "list", "-c", cfg)
	if code != exitFinding || !strings.Contains(errOut, "spool directory") {
		t.Errorf("list without a spool: %d %q", code, errOut)
	}
}

// queue salvage shows the unfinished messages of a set-aside segment and
// --import queues them again, refusing while a gateway holds the spool.
func TestQueueSalvage(t *testing.T) {
	dir, cfg, q, ids := queueWorld(t)
	seg := filepath.Join(dir, "spool", "0000000000000001.seg")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[12] ^= 0xff // a damaged header
	corrupt := filepath.Join(t.TempDir(), "0000000000000001.seg.corrupt")
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runSekisho(t, "", "queue", "salvage", corrupt)
	if code != exitOK || !strings.Contains(out, "2 unfinished") || !strings.Contains(out, ids[0].String()) ||
		!strings.Contains(out, "damaged header") || !strings.Contains(out, "to <hanako@town.example.lg.jp>") ||
		strings.Contains(out, "to <jiro@example.com>  delivered") {
		t.Fatalf("queue salvage: %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = runSekisho(t, "", "queue", "salvage", "--import", "-c", cfg, corrupt)
	if code != exitFinding || !strings.Contains(errOut, "stop the gateway") {
		t.Fatalf("import beside a running gateway: %d %s", code, errOut)
	}
	q.Close()
	out, errOut, code = runSekisho(t, "", "queue", "salvage", "--import", "-c", cfg, corrupt)
	// Both are still queued under their IDs: nothing is imported twice.
	if code != exitOK || strings.Count(out, "not imported") != 2 {
		t.Fatalf("import of still-queued messages: %d\n%s%s", code, out, errOut)
	}
	if _, _, code := runSekisho(t, "", "queue", "salvage"); code != exitUsage {
		t.Errorf("no file: exit %d, want %d", code, exitUsage)
	}
}
