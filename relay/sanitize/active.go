package sanitize

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/xml"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Active content: an allowed type is still not "safe" when the file can
// run something or fetch something when opened. A PDF with JavaScript, a
// launch action, embedded files, rich media or an XFA form; an Office file
// with macros, ActiveX, an embedded OLE package, a remote template or
// another external relationship (the template and image tricks that leak
// NTLM hashes or pull in a payload), an external workbook link or a DDE
// field. The checks run only on attachments the allow list would keep,
// on the held copy.

// activeContent returns what makes a held attachment active, in words
// for the notice; nil when nothing was found.
func activeContent(f *os.File, detected string) ([]string, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch detected {
	case "application/pdf":
		return pdfActive(f, fi.Size())
	case TypeXLSX, TypeDOCX, TypePPTX, TypeXLSM, TypeDOCM, TypePPTM:
		return ooxmlActive(f, fi.Size())
	}
	return nil, nil
}

// pdfNames are the PDF names that make a document active, and what the
// notice calls them.
var pdfNames = map[string]string{
	"JavaScript": "JavaScript", "JS": "JavaScript", "Launch": "launch action",
	"EmbeddedFile": "embedded file", "EmbeddedFiles": "embedded file",
	"RichMedia": "rich media", "XFA": "XFA form",
}

// Bounds on inflating a PDF's streams (object streams hide names there).
const (
	pdfStreamMax = 16 << 20
	pdfTotalMax  = 64 << 20
)

// pdfActive looks for the names in the file as written, with #xx
// escapes undone (/J#61vaScript is /JavaScript), and inside every
// Flate-compressed stream, where object streams put them out of sight of
// a plain scan.
func pdfActive(f *os.File, size int64) ([]string, error) {
	found := map[string]bool{}
	var starts []int64
	sc := pdfScanner{found: found, streams: &starts}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&sc, bufio.NewReaderSize(f, 64<<10)); err != nil {
		return nil, err
	}
	sc.end()
	total := int64(0)
	for _, off := range starts {
		if total >= pdfTotalMax {
			break
		}
		zr, err := zlib.NewReader(io.NewSectionReader(f, off, size-off))
		if err != nil {
			continue // not Flate (an image), or not a stream at all
		}
		in := pdfScanner{found: found}
		n, _ := io.Copy(&in, io.LimitReader(zr, min(pdfStreamMax, pdfTotalMax-total)))
		in.end()
		total += n
		zr.Close()
	}
	return findingList(found), nil
}

// pdfScanner finds names in a PDF's bytes as they stream past, and the
// offsets where streams start ("stream" and its line break).
type pdfScanner struct {
	found   map[string]bool
	streams *[]int64 // nil: do not look for streams (inside a stream)
	off     int64
	inName  bool
	name    []byte
	last    [8]byte // the last bytes, for "stream\r\n"
}

func (p *pdfScanner) Write(b []byte) (int, error) {
	for _, c := range b {
		if p.inName {
			if isPDFDelimiter(c) {
				p.endName()
			} else if len(p.name) < 64 {
				p.name = append(p.name, c)
			}
		}
		if c == '/' {
			p.inName, p.name = true, p.name[:0]
		}
		copy(p.last[:], p.last[1:])
		p.last[7] = c
		p.off++
		if c == '\n' && p.streams != nil {
			l := p.last[:]
			if bytes.HasSuffix(l, []byte("stream\r\n")) || bytes.HasSuffix(l, []byte("stream\n")) {
				i := bytes.LastIndex(l, []byte("stream"))
				if i == 0 || l[i-1] != 'd' {
					*p.streams = append(*p.streams, p.off)
				}
			}
		}
	}
	return len(b), nil
}

func (p *pdfScanner) end() {
	if p.inName {
		p.endName()
	}
}

func (p *pdfScanner) endName() {
	p.inName = false
	name := p.name
	if bytes.IndexByte(name, '#') >= 0 {
		name = appendUnescaped(nil, name, '#')
	}
	if what, ok := pdfNames[string(name)]; ok {
		p.found[what] = true
	}
}

func isPDFDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', 0, '/', '[', ']', '<', '>', '(', ')', '{', '}', '%':
		return true
	}
	return false
}

func findingList(found map[string]bool) []string {
	var out []string
	for k := range found {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Bounds on reading an Office file's parts.
const (
	ooxmlRelsMax = 1 << 20
	ooxmlPartMax = 32 << 20
)

var relKind = regexp.MustCompile(`^[A-Za-z]{1,40}$`)

var ddeField = regexp.MustCompile(`(?i)(instr="\s*|<w:instrText[^>]*>\s*)DDE(AUTO)?\b`)

// ooxmlActive opens the package: macros, ActiveX, OLE packages, external
// relationships other than hyperlinks, external workbook links and DDE
// fields.
func ooxmlActive(f *os.File, size int64) ([]string, error) {
	found := map[string]bool{}
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return []string{"an Office file that cannot be opened to check"}, nil
	}
	for _, e := range zr.File {
		name := strings.ToLower(e.Name)
		base := path.Base(name)
		switch {
		case base == "vbaproject.bin" || strings.HasSuffix(name, ".bin") && strings.Contains(name, "vba"):
			found["macros"] = true
		case strings.Contains(name, "/activex/"):
			found["ActiveX control"] = true
		case strings.Contains(name, "/embeddings/") && strings.HasSuffix(name, ".bin"):
			found["embedded OLE object"] = true
		case strings.HasPrefix(name, "xl/externallinks/"):
			found["external workbook link"] = true
		case strings.HasSuffix(name, ".rels"):
			if err := relsActive(e, found); err != nil {
				found["a part that cannot be read"] = true
			}
		case name == "word/document.xml":
			rc, err := e.Open()
			if err != nil {
				found["a part that cannot be read"] = true
				continue
			}
			b, err := io.ReadAll(io.LimitReader(rc, ooxmlPartMax))
			rc.Close()
			if err != nil {
				found["a part that cannot be read"] = true
			}
			if ddeField.Match(b) {
				found["DDE field"] = true
			}
		}
	}
	return findingList(found), nil
}

// relsActive reads a relationships part: an external target other than a
// hyperlink (a remote template, a linked image or object, a frame) is
// fetched when the file opens.
func relsActive(e *zip.File, found map[string]bool) error {
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	d := xml.NewDecoder(io.LimitReader(rc, ooxmlRelsMax))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" {
			continue
		}
		var typ, mode string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "Type":
				typ = a.Value
			case "TargetMode":
				mode = a.Value
			}
		}
		if !strings.EqualFold(mode, "External") {
			continue
		}
		kind := path.Base(typ)
		if kind == "hyperlink" {
			continue
		}
		if kind == "attachedTemplate" {
			found["remote template"] = true
			continue
		}
		if !relKind.MatchString(kind) {
			kind = "relationship"
		}
		found["external "+kind] = true
	}
}
