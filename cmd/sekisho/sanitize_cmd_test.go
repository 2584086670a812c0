package main

import (
	"context"

	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
)

const newsletter = "../../relay/sanitize/testdata/corpus/outlook_sjis_html_pdf_xlsm.eml"

const sanitizeTestConfig = `
relay:
  queue:
    dir: spool
  sanitize:
    rules:
      - source: internet
        routes: [inner]
    prefer: html
    subject_tag: "[無害化]"
    allow:
      types: [application/pdf]
      extensions: [pdf]
    quarantine:
      dir: quarantine
      retention: 336h
`

func sanitizeWorld(t *testing.T) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "sekisho.yaml")
	writeConfig(t, cfgPath, sanitizeTestConfig)
	return dir, cfgPath
}

func TestSanitizeTestCommand(t *testing.T) {
	_, cfgPath := sanitizeWorld(t)
	out, errOut, code := runSekisho(t, "", "sanitize", "test", "-c", cfgPath, "--message", newsletter, "--text")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"X-Sekisho-Sanitized: html converted to text; attachments removed=2 kept=1", "説明会 | 4月10日 14:00 | 本庁舎3階",
		"[application/pdf \"案内.pdf\", 77 bytes]", "hxxps://www[.]example[.]com"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"removed  3      集計.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", "kept     2      案内.pdf"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	out, _, code = runSekisho(t, "", "sanitize", "test", "-c", cfgPath, "--message", newsletter, "--json")
	var doc struct {
		Report  map[string]any `json:"report"`
		Message string         `json:"message"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || !strings.Contains(doc.Message, "MIME-Version: 1.0") {
		t.Errorf("--json: exit %d, %q", code, out)
	}
	// A broken message shows as mail clients show it; one with nothing to
	// show (no header, binary content) is a finding. The wire form comes
	// from stdin.
	if _, errOut, code = runSekisho(t, "Content-Type: multipart/mixed\r\n\r\nx\r\n", "sanitize", "test", "-c", cfgPath, "--message", "-"); code != exitOK {
		t.Errorf("broken message: exit %d, %s", code, errOut)
	}
	_, errOut, code = runSekisho(t, "\x00\x01\x02binary\r\n", "sanitize", "test", "-c", cfgPath, "--message", "-")
	if code != exitFinding || !strings.Contains(errOut, "withheld: no header, and the content is binary") {
		t.Errorf("binary: exit %d, %s", code, errOut)
	}
	if _, _, code := runSekisho(t, "", "sanitize", "test", "-c", cfgPath); code != exitUsage {
		t.Errorf("no --message: exit %d", code)
	}
}

// The quarantine commands on an original kept by the live stage: list,
// show, release into the spool, purge.
func TestQuarantineCommands(t *testing.T) {
	dir, cfgPath := sanitizeWorld(t)
	var errOut strings.Builder
	cfg, ok := (&cmdEnv{stderr: &errOut}).config(cfgPath)
	if !ok {
		t.Fatal(errOut.String())
	}
	stage, err := sanitize.NewStage(cfg.Relay.Sanitize, nil, sanitize.StageDeps{})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(newsletter)
	if err != nil {
		t.Fatal(err)
	}
	env := queue.Envelope{From: "yamada@example.com", Rcpts: []queue.Recipient{{Addr: "soumu@city.example.lg.jp"}}, Source: rewrite.SourceInternet, ClientIP: "203.0.113.5"}
	res, err := stage.Apply(context.Background(), env, "inner", func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(orig)), nil }, nil, io.Discard)
	if err != nil || res.ReleaseID == "" {
		t.Fatalf("Apply: %+v, %v", res, err)
	}
	id := res.ReleaseID

	out, errS, code := runSekisho(t, "", "quarantine", "list", "-c", cfgPath)
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "【重要】ニュースレター第12号") || !strings.Contains(out, "-- 1 original\n") {
		t.Errorf("list: exit %d\n%s%s", code, out, errS)
	}
	out, _, code = runSekisho(t, "", "quarantine", "show", "-c", cfgPath, id)
	if code != exitOK || !strings.Contains(out, "from:       <yamada@example.com>") || !strings.Contains(out, "X-Mailer: Microsoft Outlook 16.0") || !strings.Contains(out, "removed  3      集計.xlsm") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	out, _, code = runSekisho(t, "", "quarantine", "show", "-c", cfgPath, "--raw", id)
	if code != exitOK || out != string(orig) {
		t.Errorf("show --raw: exit %d, not the original", code)
	}
	if _, errS, code := runSekisho(t, "", "quarantine", "show", "-c", cfgPath, "20990101-0000000000"); code != exitFinding || !strings.Contains(errS, "no such ID") {
		t.Errorf("show unknown: exit %d, %s", code, errS)
	}

	out, errS, code = runSekisho(t, "", "quarantine", "release", "-c", cfgPath, id, "--to", "admin@city.example.lg.jp")
	if code != exitOK || !strings.Contains(out, id+" released to admin@city.example.lg.jp: queued as ") {
		t.Fatalf("release: exit %d\n%s%s", code, out, errS)
	}
	q, err := queue.Inspect(cfg.Relay.Queue)
	if err != nil {
		t.Fatal(err)
	}
	msgs := q.List()
	q.Close()
	if len(msgs) != 1 || msgs[0].Envelope.Rcpts[0].Addr != "admin@city.example.lg.jp" || msgs[0].Envelope.From != "yamada@example.com" {
		t.Fatalf("queued: %+v", msgs)
	}
	out, _, _ = runSekisho(t, "", "quarantine", "show", "-c", cfgPath, id)
	if !strings.Contains(out, "released:   ") || !strings.Contains(out, msgs[0].ID.String()) {
		t.Errorf("release not recorded:\n%s", out)
	}

	// With a gateway holding the spool, the copy is handed to it through
	// the control folder.
	spool, err := queue.Open(cfg.Relay.Queue)
	if err != nil {
		t.Fatal(err)
	}
	out, errS, code = runSekisho(t, "", "quarantine", "release", "-c", cfgPath, id)
	held := spool.List()
	spool.Close()
	if code != exitOK || !strings.Contains(out, "queued as") {
		t.Errorf("release with a running gateway: exit %d, %s%s", code, out, errS)
	} else if n := len(held); n != 2 || held[1].Envelope.Rcpts[0].Addr != "soumu@city.example.lg.jp" {
		t.Errorf("the running gateway's queue after the release: %d messages, %+v", n, held)
	}
	if _, _, code := runSekisho(t, "", "quarantine", "release", "-c", cfgPath, id, "--to", "not an address"); code != exitUsage {
		t.Errorf("bad --to: exit %d", code)
	}

	out, _, code = runSekisho(t, "", "quarantine", "purge", "-c", cfgPath)
	if code != exitOK || !strings.Contains(out, "-- 0 expired originals removed") {
		t.Errorf("purge: exit %d\n%s", code, out)
	}
	out, _, code = runSekisho(t, "", "quarantine", "purge", "-c", cfgPath, id)
	if code != exitOK || out != id+" removed\n" {
		t.Errorf("purge ID: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine", id+".eml")); !os.IsNotExist(err) {
		t.Errorf("original still on disk: %v", err)
	}
}
