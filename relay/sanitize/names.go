package sanitize

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fileName finds an attachment's name as a mail client shows it:
// Content-Disposition's filename, else Content-Type's name, each in its
// RFC 2231 form when given, RFC 2047 encoded words decoded and raw 8-bit
// bytes read by the same detection as a body; then made safe (safeName).
func fileName(ctParams, dParams map[string]string) string {
	for _, v := range []string{dParams["filename"], ctParams["name"]} {
		if v = safeName(decodeHeader(v)); v != "" {
			return v
		}
	}
	return ""
}

// maxNameRunes caps a file name; longer ones are cut before the
// extension, which is kept.
const maxNameRunes = 120

// safeName is the name a file may be written and shown under: its last
// path element (a name is never a path: "../../x", "C:\x"), without
// control, format or bidirectional characters (U+202E turns "gpj.exe"
// into what reads as "exe.jpg") and without the dots and spaces Windows
// drops at its ends, capped in length.
func safeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = cleanText(name)
	name = strings.Trim(name, " .")
	if utf8.RuneCountInString(name) > maxNameRunes {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && utf8.RuneCountInString(name[i:]) <= 16 {
			ext = name[i:]
		}
		r := []rune(strings.TrimSuffix(name, ext))
		name = string(r[:maxNameRunes-utf8.RuneCountInString(ext)]) + ext
	}
	return name
}

// cleanText removes what must never reach a line of our own from a value
// the sender wrote: line breaks, tabs and other controls become a space;
// format characters (bidirectional overrides and isolates, zero-width
// joiners, the byte order mark) and U+FFFD go; runs of spaces collapse.
func cleanText(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.IsSpace(r) && r != '\u3000':
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		b.WriteRune(r)
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}

// isPlain: printable ASCII with single spaces, which cleanText leaves as
// it is.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == ' ' && i > 0 && s[i-1] == ' ' {
			return false
		}
	}
	return !strings.HasSuffix(s, " ")
}

// capText cuts a value to n characters, marking the cut.
func capText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// nameParams are the parameters a kept attachment is written with: an
// ASCII name quoted; any other in RFC 2231 form (filename*0*= in UTF-8,
// cut into continuations so that no line grows long), which every
// current client reads, with an RFC 2047 name= on Content-Type for the
// old ones.
func nameParams(enc *encoder, name string) (ctName, disposition string) {
	if !hasHigh(name) {
		q := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
		return "name=" + q, "attachment; filename=" + q
	}
	pct := percentEncode(name)
	var segs []string
	for len(pct) > 0 {
		n := min(len(pct), 60)
		for n < len(pct) && n > 2 && (pct[n-1] == '%' || pct[n-2] == '%') {
			n-- // never inside a %XX
		}
		segs = append(segs, pct[:n])
		pct = pct[n:]
	}
	var b strings.Builder
	b.WriteString("attachment")
	for i, seg := range segs {
		fmt.Fprintf(&b, "; filename*%d*=", i)
		if i == 0 {
			b.WriteString("UTF-8''")
		}
		b.WriteString(seg)
	}
	return `name="` + enc.header(name) + `"`, b.String()
}

// percentEncode encodes everything but RFC 2231's attribute-chars.
func percentEncode(s string) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && strings.IndexByte(`*'%()<>@,;:\"/[]?=`, c) < 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}
