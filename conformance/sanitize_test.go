package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
)

// sanitizeRelay is the 無害化 block an LGWAN-side municipality adds to
// configuration C: mail from the internet to the inner server is made
// harmless (an HTML newsletter's tables and lists kept readable: prefer
// html); the originals are kept in the scenario's folder.
const sanitizeRelay = `
sanitize:
  rules:
    - source: internet
      routes: [inner-server]
  subject_tag: "[無害化]"
  prefer: html
  quarantine:
    dir: "{{path "quarantine"}}"
    retention: 336h
`

// sendRaw sends one message from the client address src to rcpt, the
// data as it is (CRLF lines), dot-stuffed, and expects 250 to DATA
// (steps/send-message.txt).
func sendRaw(t *testing.T, w *world, src, from, rcpt string, data []byte) {
	t.Helper()
	w.dialogueFile(t, "send-message", map[string]string{"Source": src, "From": from, "Rcpt": rcpt, "Data": stuff(string(data))})
}

// quarantined lists the quarantine through `sekisho quarantine list --json`.
func quarantined(t *testing.T, g *gateway) []struct {
	ID string `json:"id"`
} {
	t.Helper()
	out := runCLI(t, "quarantine", "list", "-c", g.cfg, "--json")
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	return list
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := sekisho(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sekisho %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// readText parses a delivered message and returns its decoded text.
func readText(t *testing.T, data []byte) (*gomessage.Entity, string) {
	t.Helper()
	m, err := gomessage.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the delivered message does not parse: %v\n%s", err, data)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(body)
}

// Issue 17: an HTML newsletter in Shift_JIS with a PDF and an .xlsm, sent
// from the internet, reaches the inner server as readable UTF-8 text with
// the notice; the original is kept in the quarantine and `quarantine
// release`, with the gateway running, delivers it unchanged; the same
// message from the inner server passes untouched; a multipart without its
// boundary arrives with its text, as a mail client shows it (issue 25).
func TestSanitize_InternetNewsletterSanitizedKeptAndReleased(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(sanitizeRelay))
	inner := w.sinks["inner"]
	orig, err := os.ReadFile(filepath.Join("testdata", "sanitize", "newsletter_sjis_pdf_xlsm.eml"))
	if err != nil {
		t.Fatal(err)
	}

	sendRaw(t, w, internetIP, "yamada@example.com", "bucho@test.jp", orig)
	msgs := inner.Wait(t, waitTimeout, "the sanitized newsletter", func(m []sinkMessage) bool { return len(m) >= 1 })
	m, text := readText(t, msgs[0].Data)
	if mt, params, _ := m.Header.ContentType(); mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type %s %v, want text/plain in UTF-8", mt, params)
	}
	if !utf8.ValidString(text) {
		t.Errorf("the text is not valid UTF-8")
	}
	for _, want := range []string{"市役所ニュースレター", "【無害化のお知らせ / Sanitization notice】",
		"HTML形式の本文をテキストに変換しました", "案内.pdf", "集計.xlsm", "隔離ID / Release ID: "} {
		if !strings.Contains(text, want) {
			t.Errorf("the delivered text lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"<html", "<script", "https://"} {
		if strings.Contains(text, bad) {
			t.Errorf("the delivered text contains %q", bad)
		}
	}
	if subj, _ := m.Header.Text("Subject"); !strings.HasPrefix(subj, "[無害化] 【重要】ニュースレター第12号") {
		t.Errorf("Subject %q", subj)
	}
	if m.Header.Get("X-Sekisho-Sanitized") == "" {
		t.Errorf("no X-Sekisho-Sanitized field:\n%s", msgs[0].header())
	}
	id := regexp.MustCompile(`Release ID: ([0-9]{8}-[0-9a-f]{10})`).FindStringSubmatch(text)
	if id == nil {
		t.Fatalf("no release ID in the text:\n%s", text)
	}
	list := quarantined(t, g)
	if len(list) != 1 || list[0].ID != id[1] {
		t.Fatalf("quarantine holds %+v, want only %s", list, id[1])
	}
	kept := runCLI(t, "quarantine", "show", "-c", g.cfg, "--raw", id[1])
	if !strings.HasSuffix(kept, string(orig)) || !strings.HasPrefix(kept, "Received: ") {
		t.Fatalf("the quarantine does not hold the message as received (Received field, then the original)")
	}

	// Released while the gateway runs: the original, marked, reaches the
	// recipient, and the stage lets it pass.
	out := runCLI(t, "quarantine", "release", "-c", g.cfg, id[1])
	if !strings.Contains(out, id[1]+" released to bucho@test.jp: queued as ") {
		t.Errorf("release printed %q", out)
	}
	msgs = inner.Wait(t, waitTimeout, "the released original", func(m []sinkMessage) bool { return len(m) >= 2 })
	rel := string(msgs[1].Data)
	if !strings.HasPrefix(rel, "X-Sekisho-Released: "+id[1]+"; ") || !strings.HasSuffix(rel, kept) {
		t.Errorf("the released copy is not the kept original with the mark:\n%.600s", rel)
	}
	if msgs[1].To[0] != "bucho@test.jp" || msgs[1].From != "yamada@example.com" {
		t.Errorf("released envelope %s", msgs[1])
	}
	if l := quarantined(t, g); len(l) != 1 {
		t.Errorf("the release was quarantined again: %+v", l)
	}

	// The same newsletter from the inner server is not touched.
	sendRaw(t, w, innerIP, "tanaka@test.jp", "bucho@test.jp", orig)
	msgs = inner.Wait(t, waitTimeout, "the newsletter from inside", func(m []sinkMessage) bool { return len(m) >= 3 })
	if !strings.HasSuffix(string(msgs[2].Data), string(orig)) || strings.Contains(msgs[2].header(), "X-Sekisho-Sanitized") {
		t.Errorf("mail from the inner network was changed:\n%.600s", msgs[2].Data)
	}

	// A multipart its sender gave no boundary: mail clients read it, and
	// so does the stage. The text arrives; nothing was lost, so nothing
	// is kept.
	broken, err := os.ReadFile(filepath.Join("testdata", "sanitize", "broken_no_boundary.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, w, internetIP, "x@example.com", "bucho@test.jp", broken)
	msgs = inner.Wait(t, waitTimeout, "the broken message", func(m []sinkMessage) bool { return len(m) >= 4 })
	if _, text = readText(t, msgs[3].Data); strings.TrimSpace(text) != "text" {
		t.Errorf("the broken message's text did not arrive as a mail client shows it:\n%s", msgs[3].Data)
	}
	if list = quarantined(t, g); len(list) != 1 {
		t.Fatalf("quarantine after the broken message: %+v", list)
	}
	g.waitQueueEmpty(t)
}
