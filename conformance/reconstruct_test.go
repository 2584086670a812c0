package conformance

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	gomessage "github.com/emersion/go-message"

	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

// Issue 29: attachments staff can open safely. Office documents and PDFs
// are rebuilt as PDFs of page images (LibreOffice and poppler, in the
// converters' sandbox), images are re-encoded, password ZIPs are held
// until their recipient opens them in the console.

// reconstructRelay is sanitizeRelay with reconstruction on; extra goes
// into relay.sanitize.convert. The converters run at the gateway's
// priority: here they compete with the other tests of the run, not with
// a mail path, and their priority is convert's TestNice.
func reconstructRelay(convertExtra string) string {
	return sanitizeRelay + `  reconstruct:
    office: image-pdf
    pdf: image-pdf
    image: reencode
    encrypted: unlock
  convert:
    temp_dir: "{{path "convert"}}"
    nice: 0
` + convertExtra
}

// convertWait: LibreOffice on a loaded machine is slow; the scenarios
// wait for what it makes, not for a time.
const convertWait = 4 * waitTimeout

// attachments reads the files of a delivered message: name → bytes.
func attachments(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	m, err := gomessage.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the delivered message does not parse: %v", err)
	}
	out := map[string][]byte{}
	m.Walk(func(_ []int, e *gomessage.Entity, err error) error {
		if _, p, _ := e.Header.ContentDisposition(); p["filename"] != "" {
			var b bytes.Buffer
			b.ReadFrom(e.Body)
			out[p["filename"]] = b.Bytes()
		}
		return nil
	})
	return out
}

// pdfPageCount asks poppler for a PDF's page count.
func pdfPageCount(t *testing.T, pdf []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.pdf")
	os.WriteFile(p, pdf, 0o600)
	out, err := exec.Command("pdfinfo", p).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// checkSafe checks a rebuilt attachment carries nothing active.
func checkSafe(t *testing.T, name string, b []byte) {
	t.Helper()
	for _, bad := range []string{"/JavaScript", "/JS ", "/EmbeddedFile", "/OpenAction", "/Font", "vbaProject", converttest.ExifMarker, "payload.exe"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("%s holds %q", name, bad)
		}
	}
}

// A docx with a macro, a spreadsheet, a PDF with JavaScript and a JPEG
// with EXIF reach the inner server as four safe attachments (page counts
// kept); the original, with all four as they came, is in the quarantine.
// `sanitize test --out` shows and writes the same.
func TestReconstruct_FourAttachmentsArriveSafe(t *testing.T) {
	t.Parallel()
	d := converttest.Documents(t)
	converttest.Need(t, "7zz")
	w := newWorld(t)
	g := w.start(configC(reconstructRelay("")))
	inner := w.sinks["inner"]
	msg := converttest.Four(t, d, "yamada@example.com", "tanaka@test.jp")
	sendRaw(t, w, internetIP, "yamada@example.com", "tanaka@test.jp", msg)
	got := inner.Wait(t, convertWait, "the rebuilt message", func(m []sinkMessage) bool { return len(m) >= 1 })
	files := attachments(t, got[0].Data)
	if len(files) != 4 {
		t.Fatalf("%d attachments, want 4: %v", len(files), keysOf(files))
	}
	for name, pages := range map[string]int{"報告書.pdf": 2, "budget.pdf": 1, "notice.pdf": 10} {
		b, ok := files[name]
		if !ok {
			t.Errorf("no %s among %v", name, keysOf(files))
			continue
		}
		checkSafe(t, name, b)
		if n := pdfPageCount(t, b); n != pages {
			t.Errorf("%s: %d pages, want %d", name, n, pages)
		}
	}
	if b, ok := files["photo.jpg"]; !ok || !bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
		t.Errorf("no re-encoded photo.jpg")
	} else {
		checkSafe(t, "photo.jpg", b)
	}
	if !bytes.Contains(got[0].Data, []byte("converted=4")) {
		t.Errorf("X-Sekisho-Sanitized does not count the conversions")
	}
	list := quarantined(t, g)
	if len(list) != 1 {
		t.Fatalf("%d originals in the quarantine, want 1", len(list))
	}
	orig := runCLI(t, "quarantine", "show", "-c", g.cfg, "--raw", list[0].ID)
	if !strings.HasSuffix(orig, string(msg)) {
		t.Errorf("the quarantine does not hold the original as it came (%d bytes, sent %d)", len(orig), len(msg))
	}

	// The dry run: class, action and result of each, the files written.
	dir := t.TempDir()
	eml := filepath.Join(dir, "four.eml")
	os.WriteFile(eml, msg, 0o600)
	out := t.TempDir()
	cmd := sekisho(t.Context(), "sanitize", "test", "-c", g.cfg, "--message", eml, "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sanitize test: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"class=office action=image-pdf -> 報告書.pdf", "class=pdf action=image-pdf -> notice.pdf", "10 pages",
		"class=image action=reencode -> photo.jpg"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("sanitize test lacks %q:\n%s", want, stderr.String())
		}
	}
	for _, name := range []string{"報告書.pdf", "budget.pdf", "notice.pdf", "photo.jpg"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("--out wrote no %s", name)
		}
	}
}

// firstTextPart is the decoded text of a delivered message: the notice
// and the body.
func firstTextPart(t *testing.T, data []byte) string {
	t.Helper()
	m, err := gomessage.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var text string
	m.Walk(func(_ []int, e *gomessage.Entity, err error) error {
		if mt, _, _ := e.Header.ContentType(); mt == "text/plain" && text == "" {
			var b bytes.Buffer
			b.ReadFrom(e.Body)
			text = b.String()
		}
		return nil
	})
	return text
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A converter that keeps the CPU busy is stopped at its CPU time: only
// its file is removed (with the reason in the notice); the image beside
// it arrives.
func TestReconstruct_ConversionKilledAtItsLimitCostsOnlyItsFile(t *testing.T) {
	t.Parallel()
	d := converttest.Documents(t)
	converttest.Need(t, "7zz")
	report, _ := os.ReadFile(d.Report)
	w := newWorld(t)
	spin := w.path("soffice-spins")
	if err := os.WriteFile(spin, []byte("#!/bin/sh\nwhile :; do :; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.start(configC(reconstructRelay("    soffice: \"" + spin + "\"\n    timeout: 1s\n")))
	inner := w.sinks["inner"]
	msg := converttest.Message("yamada@example.com", "tanaka@test.jp", "two files",
		converttest.File{Name: "遅い.docx", Type: "application/octet-stream", Data: report},
		converttest.File{Name: "photo.jpg", Type: "image/jpeg", Data: converttest.PhotoWithExif()})
	sendRaw(t, w, internetIP, "yamada@example.com", "tanaka@test.jp", msg)
	got := inner.Wait(t, convertWait, "the message without the slow file", func(m []sinkMessage) bool { return len(m) >= 1 })
	files := attachments(t, got[0].Data)
	if _, ok := files["photo.jpg"]; !ok || len(files) != 1 {
		t.Errorf("attachments %v, want photo.jpg alone", keysOf(files))
	}
	text := firstTextPart(t, got[0].Data)
	if !bytes.Contains(got[0].Data, []byte("removed=1 kept=0 converted=1")) || !strings.Contains(text, "遅い.docx") ||
		!strings.Contains(text, "more than 1s of CPU time") {
		t.Errorf("the notice does not name the removed file:\n%s", text)
	}
}

// A PPAP ZIP: the notice arrives, the archive is held; the recipient
// opens the console in Chromium, a wrong password is refused, the right
// one sends the files rebuilt; another archive is locked by five wrong
// passwords, refuses the right one after, and an administrator sees the
// attempts in the audit log.
func TestReconstruct_PPAPOpenedInTheConsole(t *testing.T) {
	t.Parallel()
	d := converttest.Documents(t)
	converttest.Need(t, "7zz")
	w := newWorld(t)
	consoleAddr := freePort(t)
	cfg := strings.Replace(consoleConfig(w, "store:\n  driver: sqlite\n  path: \""+w.path("sekisho.db")+"\"\n", consoleAddr),
		indent(sanitizeRelay), indent(reconstructRelay("")), 1)
	g := w.start(cfg)
	base := "http://" + consoleAddr
	waitConsole(t, base, g)
	inner := w.sinks["inner"]

	report, _ := os.ReadFile(d.Report)
	zipA, zipB := filepath.Join(t.TempDir(), "a.zip"), filepath.Join(t.TempDir(), "b.zip")
	converttest.Zip(t, zipA, "ZipCrypto", map[string][]byte{"見積書.docx": report, "写真.jpg": converttest.PhotoWithExif()})
	converttest.Zip(t, zipB, "AES256", map[string][]byte{"契約書.docx": report})
	for _, z := range []struct{ path, subject string }{{zipA, "見積書の送付"}, {zipB, "契約書の送付"}} {
		data, _ := os.ReadFile(z.path)
		sendRaw(t, w, internetIP, "yamada@example.com", "tanaka@test.jp",
			mailWith("yamada@example.com", "tanaka@test.jp", encodedSubject(z.subject), rfc2231(filepath.Base(z.path)),
				"application/zip", data, ""))
	}
	notices := inner.Wait(t, convertWait, "two notices", func(m []sinkMessage) bool { return len(m) >= 2 })
	for _, m := range notices {
		if len(attachments(t, m.Data)) != 0 || !strings.Contains(string(m.Data), "held=1") {
			t.Errorf("a notice with the archive or not saying it is held: %s", m)
		}
	}

	tanaka := newPerson(t, base)
	tanaka.signIn("tanaka@test.jp", "tanaka-secret")
	tanaka.waitText("/my/quarantine", "見積書の送付")
	itemA := linkInRow(tanaka, "見積書の送付")
	itemB := linkInRow(tanaka, "契約書の送付")

	t.Run("a wrong password, then the right one", func(t *testing.T) {
		tanaka.t = t
		tanaka.open(itemA)
		if page := tanaka.text("main"); !strings.Contains(page, "a.zip") || !strings.Contains(page, "あと 5 回") {
			t.Fatalf("the item page shows no held archive:\n%s", page)
		}
		tanaka.do(chromedp.SendKeys(`input[name=password]`, "machigai"))
		tanaka.submit(`form.ask button[name=unlock]`)
		if page := tanaka.text("main"); !strings.Contains(page, "パスワードが違います") || !strings.Contains(page, "あと 4 回") {
			t.Errorf("after a wrong password:\n%s", page)
		}
		tanaka.screenshot("console-unlock")
		tanaka.do(chromedp.SendKeys(`input[name=password]`, converttest.Password))
		tanaka.submit(`form.ask button[name=unlock]`)
		if page := tanaka.text("main"); !strings.Contains(page, "パスワードを確認しました") {
			t.Errorf("after the right password:\n%s", page)
		}
		msgs := inner.Wait(t, convertWait, "the follow-up", func(m []sinkMessage) bool { return len(m) >= 3 })
		files := attachments(t, msgs[2].Data)
		if b, ok := files["見積書.pdf"]; !ok || pdfPageCount(t, b) != 2 {
			t.Errorf("the follow-up's files %v: no two-page 見積書.pdf", keysOf(files))
		} else {
			checkSafe(t, "見積書.pdf", b)
		}
		if b, ok := files["写真.jpg"]; !ok {
			t.Errorf("the follow-up has no 写真.jpg: %v", keysOf(files))
		} else {
			checkSafe(t, "写真.jpg", b)
		}
		if msgs[2].To[0] != "tanaka@test.jp" {
			t.Errorf("the follow-up went to %v", msgs[2].To)
		}
	})

	t.Run("five wrong passwords lock it", func(t *testing.T) {
		tanaka.t = t
		for i := range 5 {
			tanaka.open(itemB)
			tanaka.do(chromedp.SendKeys(`input[name=password]`, "wrong-"+strconv.Itoa(i)))
			tanaka.submit(`form.ask button[name=unlock]`)
		}
		page := tanaka.text("main")
		if !strings.Contains(page, "ロックしました") || eval[bool](tanaka, `!!document.querySelector("input[name=password]")`) {
			t.Errorf("after five wrong passwords the form is still offered:\n%s", page)
		}
		admin := newPerson(t, base)
		admin.signIn("postmaster@test.jp", "postmaster-secret")
		audit := admin.waitText("/admin/audit", "wrong password (5 of 5)")
		if !strings.Contains(audit, "wrong password (1 of 5)") || !strings.Contains(audit, "opened: 2 files") {
			t.Errorf("the audit log:\n%s", audit)
		}
		admin.open(itemB)
		if eval[bool](admin, `!document.querySelector("form[action$='/unlock-reset']")`) {
			t.Errorf("the administrator is not offered to unlock it:\n%s", admin.text("main"))
		}
		g.waitQueueEmpty(t)
		if n := len(inner.Messages()); n != 3 {
			t.Errorf("%d messages reached the inner server, want 3 (two notices, one follow-up)", n)
		}
	})
}
