// Package convert reconstructs attachments into files that carry nothing
// active (画像化): an Office document or a PDF rendered page by page to
// images by the real converters (LibreOffice headless, poppler) and rebuilt
// as a new PDF of those images only, or its text extracted; an image
// decoded and encoded again without its metadata; a password ZIP opened
// with 7-Zip. Every converter runs as a process of its own in a sandbox
// (sandbox.go: process group, memory and file size limits, no network, a
// fresh folder and LibreOffice profile), under a deadline and a page
// limit, and a pool sized to the cores bounds how many run at once. The
// sanitize stage calls it at delivery; it owns relay.sanitize.convert.
package convert

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// Pool bounds the conversions running at once, for the life of the
// process: a reload builds a new Converter on the same pool.
type Pool struct {
	slots chan struct{}
}

// NewPool makes a pool of n slots; n <= 0 is one a core.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	return &Pool{slots: make(chan struct{}, n)}
}

// Size is the number of conversions that may run at once.
func (p *Pool) Size() int { return cap(p.slots) }

func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) release() { <-p.slots }

// Converter runs conversions under one configuration.
type Converter struct {
	cfg  Config
	pool *Pool
	// Warn is told, once, of a weaker sandbox than asked for (no network
	// namespace under network: auto); nil: nobody is.
	Warn func(msg string)

	noNamespace atomic.Bool
}

// New makes a converter; pool nil makes one of cfg.Workers slots.
func New(cfg Config, pool *Pool) *Converter {
	if pool == nil {
		pool = NewPool(cfg.Workers)
	}
	return &Converter{cfg: cfg, pool: pool}
}

// Config is the converter's configuration.
func (c *Converter) Config() Config { return c.cfg }

// slot waits for a free slot of the pool (the wait does not count
// against the clock's backstop) and returns the conversion's context,
// with that deadline, and what releases both.
func (c *Converter) slot(ctx context.Context) (context.Context, func(), error) {
	if err := c.pool.acquire(ctx); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WallTimeout)
	return ctx, func() { cancel(); c.pool.release() }, nil
}

// Result says what a conversion made.
type Result struct {
	Pages int // pages of the document (image-pdf, text)
}

// OfficeExtensions are the extensions LibreOffice is given documents
// under: it chooses its import filter by them and by the content.
var OfficeExtensions = []string{"doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "pptm", "odt", "ods", "odp", "rtf"}

// ImagePDF renders the document in (a PDF when ext is "pdf", else an
// Office document of that extension) page by page to images and writes a
// new PDF of those images only to out.
func (c *Converter) ImagePDF(ctx context.Context, in, ext string, out io.Writer) (Result, error) {
	return c.withPDF(ctx, in, ext, func(ctx context.Context, dir, pdf string, pages int) error {
		return c.renderPages(ctx, dir, pdf, pages, out)
	})
}

// renderPages renders the PDF's pages to JPEGs in dir (pdftoppm) and
// writes the PDF of them to out.
func (c *Converter) renderPages(ctx context.Context, dir, pdf string, pages int, out io.Writer) error {
	if _, err := c.run(ctx, job{name: "pdftoppm", prog: c.cfg.Pdftoppm, dir: dir, args: []string{
		"-jpeg", "-jpegopt", "quality=" + strconv.Itoa(c.cfg.Quality), "-r", strconv.Itoa(c.cfg.DPI),
		"-f", "1", "-l", strconv.Itoa(pages), pdf, filepath.Join(dir, "page")}}); err != nil {
		return err
	}
	imgs, err := filepath.Glob(filepath.Join(dir, "page-*.jpg"))
	if err != nil || len(imgs) != pages {
		return failed(CodeFailed, "pdftoppm rendered %d of %d pages", len(imgs), pages)
	}
	sort.Strings(imgs) // pdftoppm pads the page numbers to one width
	return WriteImagePDF(out, imgs, c.cfg.DPI)
}

// Text writes the text of the document in (as ImagePDF) to out, UTF-8.
func (c *Converter) Text(ctx context.Context, in, ext string, out io.Writer) (Result, error) {
	return c.withPDF(ctx, in, ext, func(ctx context.Context, dir, pdf string, pages int) error {
		txt := filepath.Join(dir, "text.txt")
		if _, err := c.run(ctx, job{name: "pdftotext", prog: c.cfg.Pdftotext, dir: dir, args: []string{
			"-enc", "UTF-8", "-layout", "-f", "1", "-l", strconv.Itoa(pages), pdf, txt}}); err != nil {
			return err
		}
		f, err := os.Open(txt)
		if err != nil {
			return failed(CodeFailed, "pdftotext wrote no text")
		}
		defer f.Close()
		_, err = io.Copy(out, f)
		return err
	})
}

// withPDF runs one conversion of the document in: a slot of the pool,
// its deadline, a fresh folder, the document as a PDF within the page
// limit, then then.
func (c *Converter) withPDF(ctx context.Context, in, ext string, then func(ctx context.Context, dir, pdf string, pages int) error) (Result, error) {
	ctx, done, err := c.slot(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	dir, clean, err := c.jobDir()
	if err != nil {
		return Result{}, err
	}
	defer clean()
	pdf, pages, err := c.toPDF(ctx, dir, in, ext)
	if err != nil {
		return Result{}, err
	}
	if err := then(ctx, dir, pdf, pages); err != nil {
		return Result{}, err
	}
	return Result{Pages: pages}, nil
}

// toPDF gives the document in as a PDF in dir (LibreOffice converting an
// Office document) and its page count, refused over the page limit.
func (c *Converter) toPDF(ctx context.Context, dir, in, ext string) (string, int, error) {
	src := filepath.Join(dir, "document."+ext)
	if err := copyFile(src, in); err != nil {
		return "", 0, err
	}
	pdf := src
	if ext != "pdf" {
		outDir := filepath.Join(dir, "out")
		if _, err := c.run(ctx, job{name: "LibreOffice", prog: c.cfg.Soffice, dir: dir, args: []string{
			"--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck", "--nofirststartwizard",
			"-env:UserInstallation=file://" + filepath.Join(dir, "profile"),
			"--convert-to", "pdf", "--outdir", outDir, src}}); err != nil {
			return "", 0, err
		}
		pdf = filepath.Join(outDir, "document.pdf")
		if fi, err := os.Stat(pdf); err != nil || fi.Size() == 0 {
			return "", 0, failed(CodeFailed, "LibreOffice could not read the document")
		}
	}
	out, err := c.run(ctx, job{name: "pdfinfo", prog: c.cfg.Pdfinfo, dir: dir, args: []string{pdf}})
	if err != nil {
		return "", 0, err
	}
	pages := 0
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			pages, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	switch {
	case pages <= 0:
		return "", 0, failed(CodeFailed, "the document has no pages that can be read")
	case pages > c.cfg.MaxPages:
		return "", 0, failed(CodeTooLarge, "%d pages, more than the limit of %d", pages, c.cfg.MaxPages)
	}
	return pdf, pages, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying the document for its converter: %w", err)
	}
	return out.Close()
}
