package conformance

import (
	"os"
	"strings"
	"testing"
	"time"
)

// archiveConfig is configuration C with E-Post's Carbon Copy List: mail
// from the internet is copied to archive@archive.invalid (a next hop of
// its own), mail from the inside to archive-out@archive.invalid, which a
// route files into a folder.
func archiveConfig(w *world) string {
	cfg := configC(`
archive:
  - direction: inbound
    address: archive@archive.invalid
  - direction: outbound
    address: archive-out@archive.invalid
`)
	return strings.Replace(cfg, "  routes:\n", `  routes:
    - name: archive
      address: archive@archive.invalid
      targets: ["{{sink "archive"}}"]
      tls: none
    - name: archive-folder
      address: archive-out@archive.invalid
      targets: ["dir:`+w.path("archive-folder")+`"]
`, 1)
}

// Issue 15: the archive copy is queued like any recipient: with its next
// hop down it waits, survives kill -9, and arrives after the restart; the
// copy is blind (no header names it) and the outbound copy lands in the
// dir: folder.
func TestArchive_CopySurvivesKillAndArrives(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(archiveConfig(w))
	archive, inner := w.sinks["archive"], w.sinks["inner"]
	archive.Down()
	w.dialogueFile(t, "archive-inbound-and-outbound", nil)
	inner.Wait(t, waitTimeout, "the inbound message", func(m []sinkMessage) bool { return len(m) == 1 })
	w.sinks["internet"].Wait(t, waitTimeout, "the outbound message", func(m []sinkMessage) bool { return len(m) == 1 })
	// The inbound copy waits in the queue for its next hop.
	deadline := time.Now().Add(waitTimeout)
	for {
		q := g.queue(t)
		if len(q) == 1 && len(q[0].States) == 2 && q[0].States[1].Attempts >= 1 &&
			q[0].Envelope.Rcpts[1].Addr == "archive@archive.invalid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive copy is not waiting in the queue: %+v", q)
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.kill(t)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	archive.Up(t)
	w.dialogueFile(t, "archive-copy-arrived", nil)
	g.waitQueueEmpty(t)
	if n := len(archive.Messages()); n != 1 {
		t.Errorf("the archive got %d copies, want 1", n)
	}
	// Blind: no copy's header names an archive address; the bodies are the message.
	for _, m := range append(append(inner.Messages(), archive.Messages()...), w.sinks["internet"].Messages()...) {
		if h := m.header(); strings.Contains(h, "archive.invalid") {
			t.Errorf("a header names the archive:\n%s", h)
		}
	}
	if got := string(archive.Messages()[0].Data); !strings.Contains(got, "Subject: inbound, archived") {
		t.Errorf("the archive copy is not the message:\n%s", got)
	}
	// The outbound copy is a file in the route's dir: folder.
	deadline = time.Now().Add(waitTimeout)
	for {
		files, _ := os.ReadDir(w.path("archive-folder"))
		found := false
		for _, f := range files {
			b, _ := os.ReadFile(w.path("archive-folder") + "/" + f.Name())
			found = found || strings.Contains(string(b), "Subject: outbound, archived")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no outbound archive copy in %s (%d files)", w.path("archive-folder"), len(files))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
