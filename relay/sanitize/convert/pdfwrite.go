package convert

import (
	"bufio"
	"fmt"
	"image/color"
	"image/jpeg"
	"io"
	"os"
)

// WriteImagePDF writes a PDF of one page a JPEG, each page the size of
// its image at dpi. We write it ourselves rather than through a PDF
// library: the file must hold nothing but the images (no fonts, no
// metadata, no names a reader might act on), and a writer of catalog,
// page tree, pages, content streams and DCT image XObjects with their
// cross-reference table is a page of code that can be read whole, where a
// library would bring a document model we would have to audit for what
// it adds. The JPEG bytes are copied as they are (DCTDecode): nothing is
// decoded or encoded again.
func WriteImagePDF(w io.Writer, jpegs []string, dpi int) error {
	cw := &countWriter{w: bufio.NewWriterSize(w, 64<<10)}
	var offsets []int64
	obj := func() int {
		offsets = append(offsets, cw.n)
		n := len(offsets)
		fmt.Fprintf(cw, "%d 0 obj\n", n)
		return n
	}
	// Objects 1 and 2 are the catalog and the page tree; each page is
	// three objects from 3 on: the page, its content, its image.
	cw.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	obj()
	cw.WriteString("<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	obj()
	cw.WriteString("<< /Type /Pages /Kids [")
	for i := range jpegs {
		fmt.Fprintf(cw, " %d 0 R", 3+3*i)
	}
	fmt.Fprintf(cw, " ] /Count %d >>\nendobj\n", len(jpegs))
	for i, p := range jpegs {
		if err := writePage(cw, obj, p, 3+3*i, dpi); err != nil {
			return err
		}
	}
	xref := cw.n
	fmt.Fprintf(cw, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(cw, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(cw, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	if cw.err != nil {
		return cw.err
	}
	return cw.w.Flush()
}

func writePage(cw *countWriter, obj func() int, path string, page, dpi int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil {
		return failed(CodeFailed, "a rendered page is not a JPEG: %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	space := "/DeviceRGB"
	switch cfg.ColorModel {
	case color.GrayModel:
		space = "/DeviceGray"
	case color.CMYKModel:
		space = "/DeviceCMYK /Decode [1 0 1 0 1 0 1 0]" // Adobe's inverted CMYK JPEGs
	}
	wpt, hpt := points(cfg.Width, dpi), points(cfg.Height, dpi)
	obj()
	fmt.Fprintf(cw, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>\nendobj\n",
		wpt, hpt, page+2, page+1)
	content := fmt.Sprintf("q %s 0 0 %s 0 0 cm /Im0 Do Q\n", wpt, hpt)
	obj()
	fmt.Fprintf(cw, "<< /Length %d >>\nstream\n%sendstream\nendobj\n", len(content), content)
	obj()
	fmt.Fprintf(cw, "<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n",
		cfg.Width, cfg.Height, space, fi.Size())
	if n, err := io.Copy(cw, f); err != nil {
		return fmt.Errorf("copying a rendered page: %w", err)
	} else if n != fi.Size() {
		return fmt.Errorf("copying a rendered page: %d of its %d bytes", n, fi.Size())
	}
	cw.WriteString("\nendstream\nendobj\n")
	return nil
}

// points is a length in pixels at dpi as PDF points (1/72 inch).
func points(px, dpi int) string {
	return fmt.Sprintf("%.2f", float64(px)*72/float64(dpi))
}

// countWriter counts the bytes written, for the cross-reference offsets,
// and remembers the first error.
type countWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countWriter) WriteString(s string) { c.Write([]byte(s)) }
