package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/store"
)

// request list / approve / deny work on the store the console uses.
func TestRequestCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("relay:\n  hostname: gw.test.jp\n  queue:\n    dir: q\n  store:\n    driver: sqlite\n    path: s.db\n"), 0o644)
	s, err := store.Open(context.Background(), store.Config{Path: db}, "gw.test.jp")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s.CreateRequest(context.Background(), store.Request{Kind: store.KindRelease, Instance: "gw.test.jp", Item: "20261129-0123456789",
		Requester: "tanaka@test.jp", Recipients: []string{"tanaka@test.jp"}, Reason: "見積書", Policy: "approval", State: store.StatePending})
	s.Close()
	out, errOut, code := runSekisho(t, "", "request", "list", "-c", cfg, "--pending")
	if code != exitOK || !strings.Contains(out, "tanaka@test.jp") || !strings.Contains(out, "reason: 見積書") {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runSekisho(t, "", "request", "approve", "-c", cfg, "--as", "bucho@test.jp", "--comment", "ok", itoa64(r.ID))
	if code != exitOK || !strings.Contains(out, "approved by bucho@test.jp") {
		t.Fatalf("approve: %d %s %s", code, out, errOut)
	}
	if _, errOut, code = runSekisho(t, "", "request", "deny", "-c", cfg, itoa64(r.ID)); code != exitFinding || !strings.Contains(errOut, "changed by someone else") {
		t.Errorf("a second decision: %d %s", code, errOut)
	}
	if _, _, code = runSekisho(t, "", "request", "approve", "-c", cfg, "x"); code != exitUsage {
		t.Errorf("a bad number: %d", code)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
