package approval

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
)

// TestUnlockExecutor: a held archive is opened by its password only,
// its files go out rebuilt in one follow-up, once however often Execute
// runs, and what the opening left goes with its original.
func TestUnlockExecutor(t *testing.T) {
	converttest.Need(t, "7zz", "prlimit")
	dir := t.TempDir()
	cfg := sanitize.DefaultConfig()
	cfg.Rules = []sanitize.Rule{{Source: "internet"}}
	cfg.Quarantine.Dir = filepath.Join(dir, "quarantine")
	cfg.Reconstruct = sanitize.Reconstruct{Office: sanitize.ActionImagePDF, PDF: sanitize.ActionImagePDF,
		Image: sanitize.ActionReencode, Encrypted: sanitize.ActionUnlock}
	cfg.Convert.TempDir = filepath.Join(dir, "convert")
	stage, err := sanitize.NewStage(cfg, nil, sanitize.StageDeps{})
	if err != nil {
		t.Fatal(err)
	}
	zp := filepath.Join(dir, "ppap.zip")
	converttest.Zip(t, zp, "AES256", map[string][]byte{"写真.jpg": converttest.PhotoWithExif(), "readme.txt": []byte("hello")})
	data, _ := os.ReadFile(zp)
	msg := converttest.Message("a@example.com", "tanaka@city.example.lg.jp", "ppap",
		converttest.File{Name: "見積.zip", Type: "application/zip", Data: data})
	env := queue.Envelope{From: "a@example.com", Source: rewrite.SourceInternet,
		Rcpts: []queue.Recipient{{Addr: "tanaka@city.example.lg.jp"}}}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil }
	res, err := stage.Apply(context.Background(), env, "inner", open, nil, io.Discard)
	if err != nil || res.ReleaseID == "" || len(res.Report.Held) != 1 {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	qs, err := quarantine.Open(cfg.Quarantine.Dir, cfg.Quarantine.Retention)
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	ex := &UnlockExecutor{Quarantine: qs, Stage: func() *sanitize.Stage { return stage }, Dir: filepath.Join(cfg.Quarantine.Dir, "unlocked"),
		Hostname: "gw.test", Postmaster: "postmaster@gw.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Enqueue: func(env queue.Envelope, r io.Reader) (queue.ID, error) {
			b, _ := io.ReadAll(r)
			sent = append(sent, b)
			return queue.ID(42), nil
		}}
	part := res.Report.Held[0].Path
	if _, err := ex.Open(context.Background(), res.ReleaseID, part, "wrong"); !IsWrongPassword(err) {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, err := ex.Open(context.Background(), res.ReleaseID, "9", converttest.Password); err == nil {
		t.Fatal("a part that holds no archive was opened")
	}
	n, err := ex.Open(context.Background(), res.ReleaseID, part, converttest.Password)
	if err != nil || n != 2 {
		t.Fatalf("the right password: %d files, %v", n, err)
	}
	r := store.Request{Kind: store.KindUnlock, Item: res.ReleaseID, Reason: part, Recipients: []string{"tanaka@city.example.lg.jp"}}
	for range 2 {
		if _, err := ex.Execute(context.Background(), r, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent) != 1 {
		t.Fatalf("%d follow-ups, want 1", len(sent))
	}
	got := string(sent[0])
	for _, want := range []string{"To: <tanaka@city.example.lg.jp>", "converted=1", "Content-Type: image/jpeg"} {
		if !strings.Contains(got, want) {
			t.Errorf("the follow-up lacks %q", want)
		}
	}
	m, err := gomessage.Read(bytes.NewReader(sent[0]))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	m.Walk(func(_ []int, e *gomessage.Entity, err error) error {
		if _, p, _ := e.Header.ContentDisposition(); p["filename"] != "" {
			names = append(names, p["filename"])
			b, _ := io.ReadAll(e.Body)
			if bytes.Contains(b, []byte(converttest.ExifMarker)) {
				t.Errorf("%s kept its EXIF", p["filename"])
			}
		}
		return nil
	})
	if len(names) != 1 || names[0] != "写真.jpg" {
		t.Errorf("attachments %v, want the photo alone (readme.txt is not on the allow list)", names)
	}
	// A folder of an original no longer kept goes; this one stays.
	stale := filepath.Join(ex.Dir, "20200101-0123456789-2")
	os.MkdirAll(stale, 0o700)
	if n, err := ex.Sweep(time.Now()); n != 1 || err != nil {
		t.Errorf("sweep: %d, %v", n, err)
	}
	if _, err := os.Stat(ex.folder(res.ReleaseID, part)); err != nil {
		t.Errorf("the kept original's folder was swept: %v", err)
	}
}
