package sanitize

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/sekisho/sekisho/relay/sanitize/convert"
	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

func reconstructOptions(t testing.TB) Options {
	cc := convert.DefaultConfig()
	cc.TempDir = t.TempDir()
	// The test's converters compete with the other test packages of the
	// run, not with a mail path: at their usual priority (convert's
	// TestNice covers the setting).
	cc.Nice = 0
	return Options{ReleaseID: "20260406-0123456789", KeepUntil: time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC),
		Reconstruct: Reconstruct{Office: ActionImagePDF, PDF: ActionImagePDF, Image: ActionReencode, Encrypted: ActionUnlock},
		Convert:     convert.New(cc, nil), TempDir: t.TempDir(), Context: context.Background(), ConsoleURL: "https://console.example/"}
}

// parts reads the attachments of a sanitized message: name → bytes.
func parts(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	m, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	m.Walk(func(_ []int, e *message.Entity, err error) error {
		if _, p, _ := e.Header.ContentDisposition(); p["filename"] != "" {
			b := new(bytes.Buffer)
			b.ReadFrom(e.Body)
			out[p["filename"]] = b.Bytes()
		}
		return nil
	})
	return out
}

// TestReconstructFour: the four attachments become four safe
// ones, and the notice says what became of each.
func TestReconstructFour(t *testing.T) {
	d := converttest.Documents(t)
	msg := converttest.Four(t, d, "sender@example.com", "staff@city.example.lg.jp")
	var out bytes.Buffer
	rep, err := Message(bytes.NewReader(msg), &out, reconstructOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Converted) != 4 || len(rep.Removed) != 0 || !rep.Changed() {
		t.Fatalf("converted %d, removed %+v", len(rep.Converted), rep.Removed)
	}
	got := parts(t, out.Bytes())
	for _, name := range []string{"報告書.pdf", "budget.pdf", "notice.pdf", "photo.jpg"} {
		b, ok := got[name]
		if !ok {
			t.Errorf("no %s among %v", name, keys(got))
			continue
		}
		for _, bad := range []string{"/JavaScript", "/EmbeddedFile", "vbaProject", converttest.ExifMarker} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s holds %s", name, bad)
			}
		}
	}
	text := decodedText(t, out.Bytes())
	for _, want := range []string{"報告書.docx → 報告書.pdf (画像のみのPDF 2 ページ", "notice.pdf → notice.pdf (画像のみのPDF 10 ページ",
		"photo.jpg → photo.jpg (画像を再作成"} {
		if !strings.Contains(text, want) {
			t.Errorf("the notice lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(rep.Summary("x"), "converted=4") {
		t.Errorf("summary: %s", rep.Summary("x"))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func decodedText(t *testing.T, data []byte) string {
	t.Helper()
	m, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var text string
	m.Walk(func(_ []int, e *message.Entity, err error) error {
		if mt, _, _ := e.Header.ContentType(); mt == "text/plain" && text == "" {
			b := new(bytes.Buffer)
			b.ReadFrom(e.Body)
			text = b.String()
		}
		return nil
	})
	return text
}

// TestConversionFailureCostsOnlyItsFile: a converter stopped at its CPU
// time limit removes its file with the reason; the others arrive.
func TestConversionFailureCostsOnlyItsFile(t *testing.T) {
	converttest.Need(t, "prlimit")
	dir := t.TempDir()
	spin := filepath.Join(dir, "soffice")
	os.WriteFile(spin, []byte("#!/bin/sh\nwhile :; do :; done\n"), 0o755)
	o := reconstructOptions(t)
	cc := o.Convert.Config()
	cc.Soffice, cc.Timeout = spin, time.Second
	o.Convert = convert.New(cc, nil)
	msg := converttest.Message("a@example.com", "b@example.jp", "two",
		converttest.File{Name: "slow.docx", Type: "application/octet-stream", Data: []byte("PK\x03\x04word/document.xml")},
		converttest.File{Name: "photo.jpg", Type: "image/jpeg", Data: converttest.PhotoWithExif()})
	var out bytes.Buffer
	rep, err := Message(bytes.NewReader(msg), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Code != convert.CodeTimeout || len(rep.Converted) != 1 {
		t.Fatalf("removed %+v, converted %+v", rep.Removed, rep.Converted)
	}
	if _, ok := parts(t, out.Bytes())["photo.jpg"]; !ok {
		t.Error("the image was lost with the document")
	}
	if text := decodedText(t, out.Bytes()); !strings.Contains(text, "slow.docx") || !strings.Contains(text, "more than 1s of CPU time") {
		t.Errorf("the notice does not say why slow.docx went:\n%s", text)
	}
}

// TestBusyConverterDefers: a converter that runs past the clock's
// backstop without using its CPU time (a busy machine) costs no file: the
// message is not written and the error says to retry.
func TestBusyConverterDefers(t *testing.T) {
	converttest.Need(t, "prlimit")
	dir := t.TempDir()
	hang := filepath.Join(dir, "soffice")
	os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 300\n"), 0o755)
	o := reconstructOptions(t)
	cc := o.Convert.Config()
	cc.Soffice, cc.Timeout, cc.WallTimeout = hang, time.Second, time.Second
	o.Convert = convert.New(cc, nil)
	msg := converttest.Message("a@example.com", "b@example.jp", "one",
		converttest.File{Name: "slow.docx", Type: "application/octet-stream", Data: []byte("PK\x03\x04word/document.xml")})
	rep, err := Message(bytes.NewReader(msg), io.Discard, o)
	if !errors.Is(err, convert.ErrBusy) {
		t.Fatalf("err = %v (removed %+v), want the message deferred as busy", err, rep.Removed)
	}
}

// TestHeldArchive: a password ZIP is held (not delivered), the notice
// says how to open it; under keep it is removed as before.
func TestHeldArchive(t *testing.T) {
	zp := filepath.Join(t.TempDir(), "ppap.zip")
	converttest.Zip(t, zp, "ZipCrypto", map[string][]byte{"a.txt": []byte("x")})
	data, _ := os.ReadFile(zp)
	msg := converttest.Message("a@example.com", "b@example.jp", "ppap", converttest.File{Name: "見積.zip", Type: "application/zip", Data: data})
	var out bytes.Buffer
	rep, err := Message(bytes.NewReader(msg), &out, reconstructOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Held) != 1 || rep.Held[0].Path != "2" || rep.Held[0].Class != ClassEncrypted || len(parts(t, out.Bytes())) != 0 {
		t.Fatalf("held %+v", rep.Held)
	}
	if text := decodedText(t, out.Bytes()); !strings.Contains(text, "見積.zip") || !strings.Contains(text, "https://console.example/") {
		t.Errorf("notice:\n%s", text)
	}
	rep, _ = Message(bytes.NewReader(msg), &bytes.Buffer{}, Options{})
	if len(rep.Held) != 0 || len(rep.Removed) != 1 || rep.Removed[0].Code != CodeEncrypted {
		t.Errorf("without reconstruction: %+v", rep)
	}
}

func TestCheckPrograms(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{Source: "internet"}}
	cfg.Reconstruct = Reconstruct{Office: ActionImagePDF, PDF: ActionText, Image: ActionReencode, Encrypted: ActionUnlock}
	cfg.Convert.Soffice, cfg.Convert.SevenZip = "/nonexistent/soffice", "no-such-7zip"
	err := cfg.CheckPrograms()
	if err == nil || !strings.Contains(err.Error(), `convert.soffice: "/nonexistent/soffice" is not installed, and reconstruct.office: image-pdf needs it`) ||
		!strings.Contains(err.Error(), `convert.seven_zip: "no-such-7zip" is not installed, and reconstruct.encrypted: unlock needs it`) {
		t.Errorf("err = %v", err)
	}
	cfg.Reconstruct = DefaultReconstruct()
	if err := cfg.CheckPrograms(); err != nil {
		t.Errorf("nothing converted, yet: %v", err)
	}
}
