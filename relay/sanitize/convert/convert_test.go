package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

func testConverter(t testing.TB) *Converter {
	cfg := DefaultConfig()
	cfg.TempDir = t.TempDir()
	cfg.Workers = 2
	// The test's converters compete with the other test packages of the
	// run, not with a mail path: at their usual priority (TestNice
	// covers the setting).
	cfg.Nice = 0
	return New(cfg, nil)
}

// pdfPages asks poppler how many pages a PDF has.
func pdfPages(t *testing.T, pdf []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.pdf")
	os.WriteFile(p, pdf, 0o600)
	out, err := exec.Command("pdfinfo", p).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo cannot read what we wrote: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("pdfinfo gave no page count: %s", out)
	return 0
}

// checkImageOnly checks that a PDF we wrote is image pages and nothing
// else: poppler reads it, lists no font and one image a page, and no
// name a reader acts on appears in it.
func checkImageOnly(t *testing.T, pdf []byte, pages int) {
	t.Helper()
	if got := pdfPages(t, pdf); got != pages {
		t.Errorf("%d pages, want %d", got, pages)
	}
	p := filepath.Join(t.TempDir(), "check.pdf")
	os.WriteFile(p, pdf, 0o600)
	fonts, err := exec.Command("pdffonts", p).Output()
	if err != nil {
		t.Fatalf("pdffonts: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(fonts)), "\n"); len(lines) != 2 {
		t.Errorf("fonts in an image-only PDF:\n%s", fonts)
	}
	imgs, err := exec.Command("pdfimages", "-list", p).Output()
	if err != nil {
		t.Fatalf("pdfimages: %v", err)
	}
	if n := len(strings.Split(strings.TrimSpace(string(imgs)), "\n")) - 2; n != pages {
		t.Errorf("%d images, want one a page (%d):\n%s", n, pages, imgs)
	}
	for _, name := range []string{"/JavaScript", "/JS", "/EmbeddedFile", "/OpenAction", "/AA", "/Launch", "/URI", "/Font", "/Names", "/Metadata"} {
		if bytes.Contains(pdf, []byte(name+" ")) || bytes.Contains(pdf, []byte(name+"(")) || bytes.Contains(pdf, []byte(name+"<")) {
			t.Errorf("the rebuilt PDF names %s", name)
		}
	}
}

// TestImagePDF converts each kind of document the issue names, at once
// (the pool runs two), and checks what came out.
func TestImagePDF(t *testing.T) {
	d := converttest.Documents(t)
	converttest.Need(t, "pdffonts", "pdfimages")
	c := testConverter(t)
	for _, tc := range []struct {
		name, path, ext string
		pages           int
	}{
		{"docx with a macro", d.Macro, "docx", 2},
		{"spreadsheet", d.Sheet, "xlsx", 1},
		{"presentation", d.Slides, "pptx", 2},
		{"vertical Japanese", d.Tategaki, "docx", 1},
		{"PDF with JavaScript", d.Script, "pdf", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			res, err := c.ImagePDF(context.Background(), tc.path, tc.ext, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pages != tc.pages {
				t.Errorf("Result.Pages = %d, want %d", res.Pages, tc.pages)
			}
			checkImageOnly(t, out.Bytes(), tc.pages)
		})
	}
}

// TestJapaneseRendered: LibreOffice sets the vertical Japanese in a CJK
// font (fonts-noto-cjk), not missing-glyph boxes: the PDF it makes
// embeds one and its text reads back; the page image has ink.
func TestJapaneseRendered(t *testing.T) {
	d := converttest.Documents(t)
	converttest.Need(t, "pdffonts", "pdftotext")
	c := testConverter(t)
	ctx, done, err := c.slot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	dir := t.TempDir()
	pdf, pages, err := c.toPDF(ctx, dir, d.Tategaki, "docx")
	if err != nil {
		t.Fatal(err)
	}
	if pages != 1 {
		t.Errorf("%d pages, want 1", pages)
	}
	fonts, _ := exec.Command("pdffonts", pdf).Output()
	if !strings.Contains(string(fonts), "CJK") {
		t.Errorf("no CJK font in LibreOffice's PDF (fonts-noto-cjk missing?):\n%s", fonts)
	}
	text, _ := exec.Command("pdftotext", "-raw", pdf, "-").Output()
	if !strings.Contains(strings.Join(strings.Fields(string(text)), ""), converttest.TategakiText) {
		t.Errorf("the Japanese does not read back: %q", text)
	}
	var out bytes.Buffer
	if err := c.renderPages(ctx, dir, pdf, pages, &out); err != nil {
		t.Fatal(err)
	}
	imgs, _ := filepath.Glob(filepath.Join(dir, "page-*.jpg"))
	f, err := os.Open(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	dark := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			if r, g, bl, _ := img.At(x, y).RGBA(); r+g+bl < 3*0x4000 {
				dark++
			}
		}
	}
	if dark < 200 {
		t.Errorf("the page image is nearly blank (%d dark samples)", dark)
	}
}

func TestText(t *testing.T) {
	d := converttest.Documents(t)
	converttest.Need(t, "pdftotext")
	c := testConverter(t)
	var out bytes.Buffer
	res, err := c.Text(context.Background(), d.Report, "docx", &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 2 || !strings.Contains(out.String(), "second page of the report") || !strings.Contains(out.String(), "四半期報告書") {
		t.Errorf("pages %d, text %q", res.Pages, out.String())
	}
}

func TestPageLimit(t *testing.T) {
	d := converttest.Documents(t)
	c := testConverter(t)
	c.cfg.MaxPages = 3
	_, err := c.ImagePDF(context.Background(), d.Pages, "pdf", &bytes.Buffer{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTooLarge || !strings.Contains(e.Reason, "10 pages") {
		t.Fatalf("err = %v, want a page-limit refusal", err)
	}
}

// TestWallTimeoutKillsTheGroup: a converter that never ends (and started
// a child of its own) is killed with its whole process group at the
// clock's backstop, and the conversion says the machine was busy.
func TestWallTimeoutKillsTheGroup(t *testing.T) {
	converttest.Need(t, "prlimit", "sleep")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "soffice")
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+pidFile+"\nwait\n"), 0o755)
	c := testConverter(t)
	c.cfg.Soffice, c.cfg.Timeout, c.cfg.WallTimeout = script, time.Second, time.Second
	doc := filepath.Join(dir, "a.docx")
	os.WriteFile(doc, []byte("PK"), 0o600)
	_, err := c.ImagePDF(context.Background(), doc, "docx", &bytes.Buffer{})
	var e *Error
	if !errors.Is(err, ErrBusy) || errors.As(err, &e) {
		t.Fatalf("err = %v, want ErrBusy and no conversion failure", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(30 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break // gone, or dead and waiting to be reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the converter's child %s outlived the time limit: %s", pid, stat)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCPUTimeLimit: a converter that keeps the CPU busy is stopped by
// the kernel at its CPU time, and that is the document's failure.
func TestCPUTimeLimit(t *testing.T) {
	converttest.Need(t, "prlimit")
	dir := t.TempDir()
	script := filepath.Join(dir, "soffice")
	os.WriteFile(script, []byte("#!/bin/sh\nwhile :; do :; done\n"), 0o755)
	c := testConverter(t)
	c.cfg.Soffice, c.cfg.Timeout = script, time.Second
	doc := filepath.Join(dir, "a.docx")
	os.WriteFile(doc, []byte("PK"), 0o600)
	_, err := c.ImagePDF(context.Background(), doc, "docx", &bytes.Buffer{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout || !strings.Contains(e.Reason, "more than 1s of CPU time") {
		t.Fatalf("err = %v, want a CPU time refusal", err)
	}
}

// TestNice: converters run at the configured priority, every process
// beneath them too; 0 leaves the priority the gateway has.
func TestNice(t *testing.T) {
	converttest.Need(t, "prlimit", "nice")
	base, err := exec.Command("nice").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(base)))
	for _, nice := range []int{0, 10, 19} {
		c := testConverter(t)
		c.cfg.Nice = nice
		out, err := c.run(context.Background(), job{name: "nice", prog: "sh", dir: t.TempDir(), args: []string{"-c", "nice"}})
		if err != nil {
			t.Fatal(err)
		}
		want := min(n+nice, 19)
		if got := strings.TrimSpace(string(out)); got != strconv.Itoa(want) {
			t.Errorf("nice %d: the converter's child runs at %s, want %d", nice, got, want)
		}
	}
}

// TestNoNetwork: a converter cannot reach even the loopback, where the
// test listens. The converter is this test binary, run again as
// TestHelperDial.
func TestNoNetwork(t *testing.T) {
	converttest.Need(t, "prlimit")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := testConverter(t)
	c.cfg.Network = NetworkIsolate
	out, err := c.run(context.Background(), job{name: "dial", prog: os.Args[0], dir: t.TempDir(),
		args: []string{"-test.run=^TestHelperDial$", "--", ln.Addr().String()}})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && strings.Contains(e.Reason, "refused a network namespace") {
			t.Skipf("this system gives no network namespace: %v", err)
		}
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "dial failed") {
		t.Errorf("a converter reached the loopback: %s", out)
	}
	c.cfg.Network = NetworkNone
	out, _ = c.run(context.Background(), job{name: "dial", prog: os.Args[0], dir: t.TempDir(),
		args: []string{"-test.run=^TestHelperDial$", "--", ln.Addr().String()}})
	if !strings.Contains(string(out), "dial ok") {
		t.Errorf("without isolation the helper should reach the loopback (else the test proves nothing): %s", out)
	}
}

// TestHelperDial is the converter of TestNoNetwork: it dials the address
// after "--" and says whether it could.
func TestHelperDial(t *testing.T) {
	i := slices.Index(os.Args, "--")
	if i < 0 || i+1 >= len(os.Args) {
		t.Skip("run by TestNoNetwork")
	}
	conn, err := net.DialTimeout("tcp", os.Args[i+1], 5*time.Second)
	if err != nil {
		fmt.Println("dial failed:", err)
		return
	}
	conn.Close()
	fmt.Println("dial ok")
}

func TestMemoryLimit(t *testing.T) {
	d := converttest.Documents(t)
	c := testConverter(t)
	c.cfg.MaxMemory = 64 << 20 // far below what LibreOffice maps to start
	_, err := c.ImagePDF(context.Background(), d.Report, "docx", &bytes.Buffer{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeFailed {
		t.Fatalf("err = %v, want LibreOffice to fail under the memory limit", err)
	}
}
