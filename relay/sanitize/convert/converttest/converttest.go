// Package converttest makes the documents the tests of the reconstruction
// convert, with LibreOffice itself, from the flat-XML sources in
// relay/sanitize/convert/testdata: a two-page report (docx) and the same
// with a VBA macro project, a spreadsheet (xlsx), a presentation (pptx), a
// Japanese document in vertical text (docx), a ten-page PDF and the same
// PDF with JavaScript and an embedded file added, a JPEG with EXIF, and
// password ZIPs (ZipCrypto and AES, by 7-Zip). They are made once and
// kept in a folder of the system's temporary folder named by a hash of
// the sources, so every test binary of a run (convert, sanitize,
// conformance) shares one set: LibreOffice's start is what costs.
package converttest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// Docs are the paths of the documents.
type Docs struct {
	Dir      string
	Report   string // report.docx: two pages
	Macro    string // macro.docx: the report with a VBA project (vbaProject.bin)
	Sheet    string // sheet.xlsx
	Slides   string // slides.pptx: two slides
	Tategaki string // tategaki.docx: Japanese, vertical
	Pages    string // pages.pdf: ten pages
	Script   string // script.pdf: pages.pdf with JavaScript and an embedded file
	Photo    string // photo.jpg: with EXIF (a camera make and GPS position)
}

// The Japanese the documents hold, to find again in what was made.
const (
	TategakiText = "住民税の申告について"
	ExifMarker   = "SekishoCam"
)

// Password is the password of the test archives.
const Password = "Kagi-2025!"

var (
	once sync.Once
	docs Docs
	err  error
)

// Need skips the test when a program is not installed.
func Need(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (.ci/run installs it): %v", p, err)
		}
	}
}

// Documents returns the documents, making them on first use; the test
// skips when LibreOffice or poppler is not installed.
func Documents(t testing.TB) Docs {
	t.Helper()
	Need(t, "soffice", "pdfinfo", "pdftoppm", "prlimit")
	once.Do(func() { docs, err = make1() })
	if err != nil {
		t.Fatalf("making the test documents: %v", err)
	}
	return docs
}

func source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

func make1() (Docs, error) {
	src := source()
	names := []string{"report.fodt", "tategaki.fodt", "sheet.fods", "slides.fodp", "pages.fodt"}
	h := sha256.New()
	h.Write([]byte("v1"))
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return Docs{}, err
		}
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "sekisho-testdocs-"+hex.EncodeToString(h.Sum(nil))[:16])
	d := Docs{Dir: dir, Report: filepath.Join(dir, "report.docx"), Macro: filepath.Join(dir, "macro.docx"),
		Sheet: filepath.Join(dir, "sheet.xlsx"), Slides: filepath.Join(dir, "slides.pptx"), Tategaki: filepath.Join(dir, "tategaki.docx"),
		Pages: filepath.Join(dir, "pages.pdf"), Script: filepath.Join(dir, "script.pdf"), Photo: filepath.Join(dir, "photo.jpg")}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return d, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "sekisho-testdocs-tmp-")
	if err != nil {
		return Docs{}, err
	}
	defer os.RemoveAll(tmp)
	// One LibreOffice a target format, each with its own profile, at
	// once.
	groups := []struct {
		to    string
		files []string
	}{{"docx", []string{"report.fodt", "tategaki.fodt"}}, {"xlsx", []string{"sheet.fods"}},
		{"pptx", []string{"slides.fodp"}}, {"pdf", []string{"pages.fodt"}}}
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"--headless", "--norestore", "-env:UserInstallation=file://" + filepath.Join(tmp, "profile-"+g.to),
				"--convert-to", g.to, "--outdir", tmp}
			for _, f := range g.files {
				args = append(args, filepath.Join(src, f))
			}
			if out, err := exec.Command("soffice", args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("soffice --convert-to %s: %v: %s", g.to, err, out)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return Docs{}, e
		}
	}
	for _, n := range []string{"report.docx", "tategaki.docx", "sheet.xlsx", "slides.pptx", "pages.pdf"} {
		if _, err := os.Stat(filepath.Join(tmp, n)); err != nil {
			return Docs{}, fmt.Errorf("LibreOffice made no %s", n)
		}
	}
	if err := addMacro(filepath.Join(tmp, "report.docx"), filepath.Join(tmp, "macro.docx")); err != nil {
		return Docs{}, err
	}
	if err := addScript(filepath.Join(tmp, "pages.pdf"), filepath.Join(tmp, "script.pdf")); err != nil {
		return Docs{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "photo.jpg"), PhotoWithExif(), 0o644); err != nil {
		return Docs{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		return Docs{}, err
	}
	os.RemoveAll(filepath.Join(tmp, "profile-docx"))
	os.RemoveAll(filepath.Join(tmp, "profile-xlsx"))
	os.RemoveAll(filepath.Join(tmp, "profile-pptx"))
	os.RemoveAll(filepath.Join(tmp, "profile-pdf"))
	// Another test binary may have made the same set meanwhile: the
	// first rename wins, and either set is the same.
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr != nil {
			return Docs{}, err
		}
	}
	return d, nil
}

// addMacro writes the docx with a VBA project added the way Word keeps
// one: word/vbaProject.bin (an OLE compound file), its content type and
// its relationship from the document.
func addMacro(in, out string) error {
	zr, err := zip.OpenReader(in)
	if err != nil {
		return err
	}
	defer zr.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		switch f.Name {
		case "[Content_Types].xml":
			data = bytes.Replace(data, []byte("</Types>"),
				[]byte(`<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>`), 1)
		case "word/_rels/document.xml.rels":
			data = bytes.Replace(data, []byte("</Relationships>"),
				[]byte(`<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/></Relationships>`), 1)
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			return err
		}
		w.Write(data)
	}
	w, err := zw.Create("word/vbaProject.bin")
	if err != nil {
		return err
	}
	w.Write([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))
	w.Write(bytes.Repeat([]byte{0}, 504))
	w.Write([]byte("Attribute VB_Name = \"ThisDocument\"\r\nSub AutoOpen()\r\n  Shell \"calc.exe\"\r\nEnd Sub\r\n"))
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

var (
	trailerRoot = regexp.MustCompile(`/Root (\d+) 0 R`)
	trailerSize = regexp.MustCompile(`/Size (\d+)`)
	pagesRef    = regexp.MustCompile(`/Pages (\d+) 0 R`)
	startXref   = regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`)
)

// addScript appends an incremental update to the PDF, as an editor
// would: a catalog that runs JavaScript when the document opens and names
// an embedded file.
func addScript(in, out string) error {
	pdf, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	tail := pdf[max(0, len(pdf)-2048):]
	root, size, sx := trailerRoot.FindSubmatch(tail), trailerSize.FindSubmatch(tail), startXref.FindSubmatch(tail)
	if root == nil || size == nil || sx == nil {
		return fmt.Errorf("%s: no classic trailer to update", in)
	}
	rootNum, _ := strconv.Atoi(string(root[1]))
	n, _ := strconv.Atoi(string(size[1]))
	i := bytes.Index(pdf, []byte(fmt.Sprintf("\n%d 0 obj", rootNum)))
	if i < 0 {
		return fmt.Errorf("%s: no catalog object %d", in, rootNum)
	}
	pages := pagesRef.FindSubmatch(pdf[i:min(len(pdf), i+400)])
	if pages == nil {
		return fmt.Errorf("%s: the catalog names no page tree", in)
	}
	payload := "MZ this stands for a program\n"
	objs := []struct {
		num  int
		body string
	}{
		{n, `<< /Type /Action /S /JavaScript /JS (app.alert\('sekisho test'\);) >>`},
		{n + 1, fmt.Sprintf("<< /Type /EmbeddedFile /Length %d >>\nstream\n%s\nendstream", len(payload), payload)},
		{n + 2, fmt.Sprintf("<< /Type /Filespec /F (payload.exe) /EF << /F %d 0 R >> >>", n+1)},
		{n + 3, fmt.Sprintf("<< /Names [(payload.exe) %d 0 R] >>", n+2)},
		{n + 4, fmt.Sprintf("<< /Names [(open) %d 0 R] >>", n)},
		{rootNum, fmt.Sprintf("<< /Type /Catalog /Pages %s 0 R /OpenAction %d 0 R /Names << /EmbeddedFiles %d 0 R /JavaScript %d 0 R >> >>",
			pages[1], n, n+3, n+4)},
	}
	var b bytes.Buffer
	b.Write(pdf)
	if !bytes.HasSuffix(pdf, []byte("\n")) {
		b.WriteByte('\n')
	}
	offsets := map[int]int{}
	for _, o := range objs {
		offsets[o.num] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", o.num, o.body)
	}
	xref := b.Len()
	b.WriteString("xref\n")
	for _, o := range objs {
		fmt.Fprintf(&b, "%d 1\n%010d 00000 n \n", o.num, offsets[o.num])
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R /Prev %s >>\nstartxref\n%d\n%%%%EOF\n", n+5, rootNum, sx[1], xref)
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// PhotoWithExif is a small JPEG with an APP1 EXIF segment naming a
// camera (ExifMarker) and a GPS position, as a phone writes one.
func PhotoWithExif() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	var j bytes.Buffer
	jpeg.Encode(&j, img, &jpeg.Options{Quality: 90})
	// A little-endian TIFF with IFD0: Make (ASCII) and a GPS IFD pointer.
	var t bytes.Buffer
	t.WriteString("II*\x00\x08\x00\x00\x00")
	make_ := ExifMarker + "\x00"
	t.Write([]byte{2, 0})                                     // two entries
	t.Write([]byte{0x0f, 0x01, 2, 0})                         // Make, ASCII
	t.Write([]byte{byte(len(make_)), 0, 0, 0})                // count
	t.Write([]byte{38, 0, 0, 0})                              // offset of the string
	t.Write([]byte{0x25, 0x88, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0}) // GPSInfo IFD at 0 (none): still a GPS tag
	t.Write([]byte{0, 0, 0, 0})                               // no next IFD
	t.WriteString(make_)
	app1 := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xff, 0xe1, byte((len(app1) + 2) >> 8), byte(len(app1) + 2)}
	out := append([]byte{}, j.Bytes()[:2]...)
	out = append(out, seg...)
	out = append(out, app1...)
	return append(out, j.Bytes()[2:]...)
}

// Zip writes a password ZIP of files (name → content) with 7-Zip:
// method "ZipCrypto" or "AES256". The test skips without 7-Zip.
func Zip(t testing.TB, path, method string, files map[string][]byte) {
	t.Helper()
	Need(t, "7zz")
	src := t.TempDir()
	var names []string
	for n, data := range files {
		p := filepath.Join(src, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	args := append([]string{"a", "-tzip", "-bso0", "-bsp0", "-p" + Password, "-mem=" + method, path}, names...)
	cmd := exec.Command("7zz", args...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("7zz: %v: %s", err, out)
	}
}

// File is an attachment for Message.
type File struct {
	Name, Type string
	Data       []byte
}

// Message writes an internet message with a short text and the files
// attached (base64), as a mail client sends them.
func Message(from, to, subject string, files ...File) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Mon, 06 Apr 2026 10:00:00 +0900\r\n", from, to, subject)
	fmt.Fprintf(&b, "Message-ID: <%x@test.example>\r\nMIME-Version: 1.0\r\n", sha256.Sum256([]byte(subject+to)))
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString("Please find the documents attached.\r\n")
	for _, f := range files {
		fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n", f.Type, f.Name, f.Name)
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(f.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// Four is the message of the first scenario: a docx with a
// macro, a spreadsheet, a PDF with JavaScript and a JPEG with EXIF.
func Four(t testing.TB, d Docs, from, to string) []byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return Message(from, to, "four attachments",
		File{"報告書.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", read(d.Macro)},
		File{"budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", read(d.Sheet)},
		File{"notice.pdf", "application/pdf", read(d.Script)},
		File{"photo.jpg", "image/jpeg", read(d.Photo)})
}
