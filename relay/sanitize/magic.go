package sanitize

import (
	"bytes"
	"path"
	"slices"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// Media types the sniffer reports beyond the usual ones. A macro-enabled
// Office file is told apart from a plain one by the vbaProject.bin entry in
// the ZIP, whatever its name or declared type says.
const (
	TypeOctet     = "application/octet-stream"
	TypeZip       = "application/zip"
	TypeOLE       = "application/x-ole-storage" // legacy Office (.doc/.xls/.ppt/.msg): may carry macros
	TypeTNEF      = "application/ms-tnef"       // winmail.dat
	TypeExe       = "application/x-msdownload"
	TypeXLSX      = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	TypeDOCX      = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	TypePPTX      = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	TypeXLSM      = "application/vnd.ms-excel.sheet.macroEnabled.12"
	TypeDOCM      = "application/vnd.ms-word.document.macroEnabled.12"
	TypePPTM      = "application/vnd.ms-powerpoint.presentation.macroEnabled.12"
	TypeEncrypted = "application/x-encrypted-zip" // a password ZIP (PPAP): its content cannot be checked
	TypeODT       = "application/vnd.oasis.opendocument.text"
	TypeODS       = "application/vnd.oasis.opendocument.spreadsheet"
	TypeODP       = "application/vnd.oasis.opendocument.presentation"
)

// tnefMagic starts winmail.dat, which mimetype does not know.
const tnefMagic = "\x78\x9f\x3e\x22"

// sniffer watches an attachment's decoded bytes as they stream past: it
// keeps the head for the magic bytes, counts the size and looks for the
// ZIP entry names that reveal what an Office file really is. Memory stays
// at a few hundred bytes whatever the size.
type sniffer struct {
	head      []byte
	tail      []byte // the last bytes of the previous write, so names split across writes are found
	size      int64
	vba       bool
	xl, word  bool
	ppt       bool
	encrypted bool
}

// sniffHead is what mimetype reads.
const sniffHead = 4096

var zipNames = []string{"vbaProject.bin", "xl/workbook", "word/document", "ppt/presentation"}

func (s *sniffer) Write(p []byte) (int, error) {
	if len(s.head) < sniffHead {
		s.head = append(s.head, p[:min(len(p), sniffHead-len(s.head))]...)
	}
	s.size += int64(len(p))
	if len(s.head) < 2 || bytes.HasPrefix(s.head, []byte("PK")) {
		s.scanZip(p)
	}
	return len(p), nil
}

// scanZip looks at local file headers ("PK\x03\x04", flags at offset 6,
// name at 30) and at bare entry names, which appear uncompressed in both the
// local headers and the central directory.
func (s *sniffer) scanZip(p []byte) {
	// Names and headers split across two writes are found in the seam:
	// the previous write's tail joined to this write's head.
	seam := append(s.tail, p[:min(len(p), 64)]...)
	s.scanChunk(seam)
	s.scanChunk(p)
	if len(p) >= 64 {
		s.tail = append(s.tail[:0], p[len(p)-64:]...)
	} else {
		s.tail = append(s.tail, p...)
		s.tail = append(s.tail[:0], s.tail[max(0, len(s.tail)-64):]...)
	}
}

func (s *sniffer) scanChunk(buf []byte) {
	for _, n := range zipNames {
		if bytes.Contains(buf, []byte(n)) {
			switch n {
			case "vbaProject.bin":
				s.vba = true
			case "xl/workbook":
				s.xl = true
			case "word/document":
				s.word = true
			case "ppt/presentation":
				s.ppt = true
			}
		}
	}
	for i := 0; ; {
		j := bytes.Index(buf[i:], []byte("PK\x03\x04"))
		if j < 0 || i+j+8 > len(buf) {
			break
		}
		// General purpose flag bit 0: the entry is encrypted.
		if buf[i+j+6]&1 != 0 {
			s.encrypted = true
		}
		i += j + 4
	}
}

// detected returns the media type the content really has: what
// mimetype finds in the head, named as the allow list names it, and for a
// ZIP what the entry names seen in the whole stream say (an Office file,
// one with macros, an encrypted archive).
func (s *sniffer) detected() string {
	if len(s.head) == 0 {
		return "application/x-empty"
	}
	if bytes.HasPrefix(s.head, []byte(tnefMagic)) {
		return TypeTNEF
	}
	m := mimetype.Detect(s.head)
	for t := m; t != nil; t = t.Parent() {
		switch t.String() {
		case "application/zip":
			if z := s.zipType(); z != TypeZip || m == t || isOOXML(m.String()) {
				return z
			}
			return mediaType(m.String()) // a Java archive, OpenDocument, EPUB…
		case "application/x-ole-storage":
			return TypeOLE
		case "application/vnd.microsoft.portable-executable":
			return TypeExe
		case "application/x-elf":
			return "application/x-executable"
		case "text/rtf":
			return "application/rtf"
		case "text/csv", "text/tab-separated-values":
			return "text/plain"
		}
	}
	if bytes.HasPrefix(s.head, []byte("MZ")) {
		return TypeExe // a DOS program, or a PE mimetype could not see whole
	}
	return mediaType(m.String())
}

// mediaType drops a type's parameters ("text/plain; charset=utf-8").
func mediaType(t string) string {
	if i := strings.IndexByte(t, ';'); i >= 0 {
		return strings.TrimSpace(t[:i])
	}
	return t
}

func isOOXML(t string) bool {
	return t == TypeXLSX || t == TypeDOCX || t == TypePPTX
}

func (s *sniffer) isZip() bool { return bytes.HasPrefix(s.head, []byte("PK")) }

func (s *sniffer) zipType() string {
	switch {
	case s.encrypted:
		return TypeEncrypted
	case s.xl && s.vba:
		return TypeXLSM
	case s.word && s.vba:
		return TypeDOCM
	case s.ppt && s.vba:
		return TypePPTM
	case s.xl:
		return TypeXLSX
	case s.word:
		return TypeDOCX
	case s.ppt:
		return TypePPTX
	}
	return TypeZip
}

// extTypes are the detected types an extension may honestly carry; a file
// whose content does not match its extension is never allowed through.
var extTypes = map[string][]string{
	"pdf": {"application/pdf"}, "png": {"image/png"}, "jpg": {"image/jpeg"}, "jpeg": {"image/jpeg"},
	"gif": {"image/gif"}, "tif": {"image/tiff"}, "tiff": {"image/tiff"}, "bmp": {"image/bmp"},
	"txt": {"text/plain"}, "csv": {"text/plain"}, "xlsx": {TypeXLSX}, "docx": {TypeDOCX}, "pptx": {TypePPTX},
	"xlsm": {TypeXLSM}, "docm": {TypeDOCM}, "pptm": {TypePPTM}, "zip": {TypeZip, TypeEncrypted},
	"doc": {TypeOLE}, "xls": {TypeOLE}, "ppt": {TypeOLE}, "msg": {TypeOLE}, "rtf": {"application/rtf"},
	"dat": {TypeTNEF}, "exe": {TypeExe}, "gz": {"application/gzip"}, "7z": {"application/x-7z-compressed"},
	"rar": {"application/vnd.rar"}, "html": {"text/html"}, "htm": {"text/html"},
	"odt": {TypeODT}, "ods": {TypeODS}, "odp": {TypeODP},
}

// officeTypes are the contents an Office document may have for its
// conversion: LibreOffice reads each by its content, so a docx that holds
// macros (a docm inside) or an old .doc named .docx converts all the same.
var officeTypes = []string{TypeOLE, TypeDOCX, TypeXLSX, TypePPTX, TypeDOCM, TypeXLSM, TypePPTM, TypeODT, TypeODS, TypeODP, "application/rtf"}

// convertible reports whether the content suits the conversion of its
// class.
func convertible(class, ext, detected string) bool {
	if class == ClassOffice {
		return slices.Contains(officeTypes, detected)
	}
	return extMatches(ext, detected)
}

// extension returns a file name's extension, lower case, without the dot.
func extension(name string) string {
	return strings.ToLower(strings.TrimPrefix(path.Ext(strings.TrimSpace(name)), "."))
}

// extMatches reports whether the detected type is one the extension may carry.
func extMatches(ext, detected string) bool {
	for _, t := range extTypes[ext] {
		if t == detected {
			return true
		}
	}
	return false
}

// KnownExtension reports whether the content check knows what an
// extension should hold.
func KnownExtension(ext string) bool { _, ok := extTypes[ext]; return ok }

// DetectableTypes lists the media types the content check can report.
func DetectableTypes() []string {
	seen := map[string]bool{}
	var out []string
	for _, ts := range extTypes {
		for _, t := range ts {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Detectable reports whether the content check can report t.
func Detectable(t string) bool { return slices.Contains(DetectableTypes(), t) }
