package sanitize

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"

	"github.com/sekisho/sekisho/rewrite"
)

// HeaderSanitized is the field added to every sanitized message.
const HeaderSanitized = "X-Sekisho-Sanitized"

// dropped header fields: the MIME structure is ours now, and a sender's
// own X-Sekisho-Sanitized must not pass for ours.
var dropped = []string{"Content-Type", "Content-Transfer-Encoding", "Mime-Version", "Content-Disposition",
	"Content-Id", "Content-Md5", "Content-Description", "Content-Location", "Content-Language", HeaderSanitized}

var addressFields = []string{"From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Resent-From", "Resent-To",
	"Resent-Cc", "Resent-Bcc", "Resent-Sender", "Disposition-Notification-To", "Return-Receipt-To", "Errors-To",
	"Mail-Followup-To", "Mail-Reply-To"}

// untouched fields are never defanged: trace and identification fields
// no client makes a link of, whose exact text other programs read.
var untouched = []string{"Received", "Return-Path", "Received-Spf", "Authentication-Results",
	"Arc-Seal", "Arc-Message-Signature", "Arc-Authentication-Results", "Dkim-Signature", "Domainkey-Signature",
	"Message-Id", "In-Reply-To", "References", "Date", "Resent-Date", "Resent-Message-Id"}

func inList(list []string, name string) bool {
	for _, n := range list {
		if equalFold(n, name) {
			return true
		}
	}
	return false
}

// maxLine is RFC 5322's limit on a line, without its CRLF.
const maxLine = 998

// outField is one header field as it will be written: raw bytes passed
// on, or a value to encode and fold.
type outField struct {
	name  string
	raw   []byte
	value string
}

// header decides how each field of the original header is written: as
// it came when it is clean 7-bit text within the line limit; decoded,
// cleaned of control characters, its links defanged and encoded again
// when it holds 8-bit bytes or a link; folded anew when a line is too
// long, or dropped (and reported) when it cannot be.
func (wk *walker) header(h *header, enc *encoder) []outField {
	var out []outField
	tag := wk.o.SubjectTag != "" && wk.rep.Changed()
	for _, f := range h.fields {
		k := f.name
		if inList(dropped, k) {
			continue
		}
		if tag && equalFold(k, "Subject") {
			tag = false
			subj := cleanText(decodeHeader(f.value()))
			if !strings.Contains(subj, wk.o.SubjectTag) {
				subj = wk.o.SubjectTag + " " + subj
			}
			out = append(out, outField{name: "Subject", value: enc.headerForce(wk.defang(subj), false)})
			continue
		}
		dirty := !cleanASCII(f.raw)
		if dirty || !inList(untouched, k) && !inList(addressFields, k) && mayLink(f.raw) {
			v := f.value()
			if inList(addressFields, k) {
				if r, ok := reencode(enc, decodeHeader(v)); ok {
					out = append(out, outField{name: k, value: r})
				} else {
					wk.rep.HeaderDropped = append(wk.rep.HeaderDropped, k+": no address in it could be read")
				}
				continue
			}
			d := cleanText(decodeHeader(v))
			if dirty || wk.defang(d) != d {
				out = append(out, outField{name: k, value: enc.headerForce(wk.defang(d), false)})
				continue
			}
		}
		if longestLine(f.raw) <= maxLine {
			out = append(out, outField{name: k, raw: f.raw})
			continue
		}
		v := f.value()
		if folded, ok := foldValue(k, v); ok {
			out = append(out, outField{name: k, raw: folded})
			continue
		}
		if !inList(untouched, k) && !inList(addressFields, k) {
			// Unstructured text: encoded words may be cut anywhere.
			out = append(out, outField{name: k, value: enc.headerForce(v, true)})
			continue
		}
		wk.rep.HeaderDropped = append(wk.rep.HeaderDropped, k+": a line over 998 octets that cannot be folded")
	}
	if tag {
		out = append(out, outField{name: "Subject", value: enc.header(wk.o.SubjectTag)})
	}
	wk.rep.headerDropped = len(wk.rep.HeaderDropped)
	wk.rep.HeaderDropped = capList(wk.rep.HeaderDropped)
	return out
}

// cleanASCII: printable ASCII, tabs and the CRLFs of folding only.
func cleanASCII(raw []byte) bool {
	for i, c := range raw {
		if c >= 0x7f || c < ' ' && c != '\t' && !(c == '\r' && i+1 < len(raw) && raw[i+1] == '\n') && !(c == '\n' && i > 0 && raw[i-1] == '\r') {
			return false
		}
	}
	return true
}

// mayLink: the field may hold a link or an encoded word that hides one.
func mayLink(raw []byte) bool {
	return bytes.Contains(raw, []byte("://")) || bytes.Contains(raw, []byte("=?")) || bytes.Contains(bytes.ToLower(raw), []byte("www."))
}

// headerDefang defangs the links of a header value as the body's are
// (List-Unsubscribe's <https://…> too: the client's unsubscribe button
// would open it).
func longestLine(raw []byte) int {
	n := 0
	for line := range bytes.SplitSeq(raw, []byte("\r\n")) {
		n = max(n, len(line))
	}
	return n
}

// foldValue folds a value at its spaces; ok is false when a word is too
// long for any line.
func foldValue(k, v string) ([]byte, bool) {
	var b bytes.Buffer
	col := len(k) + 1
	b.WriteString(k + ":")
	for i, word := range strings.Split(v, " ") {
		if len(word) > maxLine-1 {
			return nil, false
		}
		if i > 0 || word != "" {
			if col+1+len(word) > 78 && col > len(k)+1 {
				b.WriteString("\r\n")
				col = 0
			}
			b.WriteString(" " + word)
			col += 1 + len(word)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes(), true
}

// write emits the sanitized message: the original header fields (see
// header), ours, then the text and any kept attachments.
func (wk *walker) write(w io.Writer, h *header, text string) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := &encoder{iso: wk.o.Charset == CharsetISO2022J}
	body := wk.defang(cleanBody(text))
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	// The text is encoded first, so the notice can say how many
	// characters the output charset could not hold; the header next, so
	// it can say which fields were dropped.
	encoded := enc.text(foldLong(body, enc.iso))
	wk.rep.Replaced += enc.replaced
	fields := wk.header(h, enc)
	encoded = append(enc.text(wk.notice()), encoded...)

	for _, f := range fields {
		if f.raw != nil {
			bw.Write(f.raw)
		} else {
			writeField(bw, f.name, f.value)
		}
	}
	writeField(bw, HeaderSanitized, wk.rep.Summary(wk.o.ReleaseID))
	writeField(bw, "MIME-Version", "1.0")
	charset, cte := "UTF-8", "base64"
	if enc.iso {
		charset, cte = "ISO-2022-JP", "7bit"
	}
	textHeader := func() {
		writeField(bw, "Content-Type", "text/plain; charset="+charset)
		writeField(bw, "Content-Transfer-Encoding", cte)
	}
	writeText := func() {
		if enc.iso {
			bw.Write(crlf(encoded))
		} else {
			writeBase64(bw, bytes.NewReader(crlf(encoded)))
		}
	}
	if len(wk.kept) == 0 || wk.o.PlanOnly {
		// Under PlanOnly the files are left out (the notice still lists
		// them): the text is all that is wanted, and the message is not
		// held in memory file by file.
		textHeader()
		bw.WriteString("\r\n")
		writeText()
		return flushErr(bw)
	}
	boundary := newBoundary()
	writeField(bw, "Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	bw.WriteString("\r\n--" + boundary + "\r\n")
	textHeader()
	bw.WriteString("\r\n")
	writeText()
	for _, k := range wk.kept {
		bw.WriteString("\r\n--" + boundary + "\r\n")
		ctName, disp := nameParams(enc, k.att.Name)
		ct := k.att.Detected
		if strings.HasPrefix(ct, "text/") && k.charset != "" {
			ct += "; charset=" + k.charset
		}
		writeField(bw, "Content-Type", ct+"; "+ctName)
		writeField(bw, "Content-Disposition", disp)
		writeField(bw, "Content-Transfer-Encoding", "base64")
		bw.WriteString("\r\n")
		if _, err := k.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("reading a held attachment: %w", err)
		}
		if err := writeBase64(bw, k.file); err != nil {
			return fmt.Errorf("reading a held attachment: %w", err)
		}
	}
	bw.WriteString("\r\n--" + boundary + "--\r\n")
	return flushErr(bw)
}

// cleanBody removes the control characters no text should carry (NUL,
// escape sequences left by a wrong charset, C1 controls); tabs, line
// breaks and form feeds stay.
func cleanBody(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7f || c == 0xc2 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r >= 0x7f && r < 0xa0 {
			return -1
		}
		return r
	}, s)
}

func flushErr(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the sanitized message: %w", err)
	}
	return nil
}

// writeField writes one header field folded at spaces near 76 columns.
func writeField(w *bufio.Writer, k, v string) {
	line := k + ":"
	col := len(line)
	for i, word := range strings.Split(v, " ") {
		if i > 0 || word != "" {
			if col+1+len(word) > 76 && col > len(k)+1 {
				line += "\r\n"
				col = 0
			}
			line += " " + word
			col += 1 + len(word)
		}
	}
	w.WriteString(line + "\r\n")
}

// reencode writes an address field whose value had raw 8-bit bytes or
// control characters: each address kept, display names encoded. A value
// net/mail cannot read keeps its addresses (as rewrite reads them) and
// loses its names.
func reencode(enc *encoder, d string) (string, bool) {
	if list, err := mail.ParseAddressList(d); err == nil && len(list) > 0 {
		parts := make([]string, len(list))
		for i, a := range list {
			if name := cleanText(a.Name); name == "" {
				parts[i] = "<" + a.Address + ">"
			} else if hasHigh(name) {
				parts[i] = enc.header(name) + " <" + a.Address + ">"
			} else {
				parts[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `" <` + a.Address + ">"
			}
		}
		return strings.Join(parts, ", "), true
	}
	var addrs []string
	for _, a := range rewrite.ScanHeader([]byte("To: " + cleanText(d) + "\r\n\r\n")) {
		if a.Address != "" && !hasHigh(a.Address) {
			addrs = append(addrs, "<"+a.Address+">")
		}
	}
	return strings.Join(addrs, ", "), len(addrs) > 0
}

// writeBase64 writes r base64-encoded in 76-column lines.
// WriteBase64 writes r base64-encoded in lines of 76 characters, each
// ended by CRLF (RFC 2045 §6.8): every MIME part sekisho writes.
func WriteBase64(w *bufio.Writer, r io.Reader) error { return writeBase64(w, r) }

func writeBase64(w *bufio.Writer, r io.Reader) error {
	buf := make([]byte, 57*64)
	line := make([]byte, 76)
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i < n; i += 57 {
			chunk := buf[i:min(i+57, n)]
			base64.StdEncoding.Encode(line, chunk)
			w.Write(line[:base64.StdEncoding.EncodedLen(len(chunk))])
			w.WriteString("\r\n")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// crlf writes every line break as CRLF, as RFC 2045 wants text in its
// canonical form: LF, CRLF, and a CR alone (which a quoted-printable =0D
// or an old Mac mailer leaves) each end a line.
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+bytes.Count(b, lfBytes))
	for {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = bytes.TrimSuffix(b[:i], []byte("\r"))
		}
		for j := bytes.IndexByte(line, '\r'); j >= 0; j = bytes.IndexByte(line, '\r') {
			out = append(append(out, line[:j]...), '\r', '\n')
			line = line[j+1:]
		}
		out = append(out, line...)
		if i < 0 {
			return out
		}
		out = append(out, '\r', '\n')
		b = b[i+1:]
	}
}

// foldLong cuts lines that ISO-2022-JP's 7-bit form could not carry
// within RFC 5322's 998 octets: a kanji takes two, and every switch
// between ASCII and JIS X 0208 three more for the escape.
func foldLong(s string, iso bool) string {
	// A line of up to 370 bytes encodes to at most 998: three bytes of
	// UTF-8 become at most two plus two escapes.
	const safe = 370
	if !iso || !hasLongLine(s, safe) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/safe)
	for line := range strings.SplitAfterSeq(s, "\n") {
		if len(line) <= safe {
			b.WriteString(line)
			continue
		}
		n, ascii, start := 0, true, 0
		for i, r := range line {
			w := 1
			if r >= 0x80 {
				w = 2
			}
			if (r >= 0x80) == ascii {
				w += 3 // the escape into or out of JIS X 0208
			}
			if n+w+3 > maxLine-8 {
				b.WriteString(line[start:i])
				b.WriteByte('\n')
				start, n, ascii = i, 0, true
				if r >= 0x80 {
					w = 5
				} else {
					w = 1
				}
			}
			n += w
			ascii = r < 0x80
		}
		b.WriteString(line[start:])
	}
	return b.String()
}

func hasLongLine(s string, n int) bool {
	for len(s) > n {
		i := strings.IndexByte(s, '\n')
		if i < 0 || i > n {
			return true
		}
		s = s[i+1:]
	}
	return false
}

// newBoundary is a variable so golden tests get a fixed boundary.
var newBoundary = func() string {
	var b [12]byte
	rand.Read(b[:])
	return "sekisho-" + hex.EncodeToString(b[:])
}

var wwwRE = regexp.MustCompile(`(?i)\bwww(\.[a-z0-9-]+)+`)

// defangSchemes are the URL schemes a mail client makes clickable.
var defangSchemes = map[string]string{"http": "hxxp", "https": "hxxps", "ftp": "fxp"}

// defang makes every URL in the text unclickable but readable:
// https://example.jp/x becomes hxxps://example[.]jp/x. It scans for "://"
// rather than running a regexp over the whole text, which dominated the
// cost of a Japanese newsletter.
func (wk *walker) defang(s string) string {
	if wk.o.Links == LinksPlain {
		return s
	}
	return defangText(s)
}

// defangText is defang whatever the link style.
func defangText(s string) string {
	if !strings.Contains(s, "://") {
		return defangWWW(s)
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		j := i
		for j > 0 && isASCIILetter(rest[j-1]) {
			j--
		}
		scheme, ok := defangSchemes[strings.ToLower(rest[j:i])]
		if !ok || (j > 0 && isWordByte(rest[j-1])) {
			b.WriteString(rest[:i+3])
			rest = rest[i+3:]
			continue
		}
		hostEnd := i + 3
		for hostEnd < len(rest) && urlByte(rest[hostEnd]) && !strings.ContainsRune("/?#", rune(rest[hostEnd])) {
			hostEnd++
		}
		end := hostEnd
		for end < len(rest) && urlByte(rest[end]) {
			end++
		}
		b.WriteString(rest[:j])
		b.WriteString(scheme + "://" + strings.ReplaceAll(rest[i+3:hostEnd], ".", "[.]") + rest[hostEnd:end])
		rest = rest[end:]
	}
	b.WriteString(rest)
	return defangWWW(b.String())
}

// defangWWW makes a bare www.example.jp unclickable.
func defangWWW(out string) string {
	if !strings.Contains(out, "www.") && !strings.Contains(out, "WWW.") && !strings.Contains(out, "Www.") {
		return out
	}
	return wwwRE.ReplaceAllStringFunc(out, func(h string) string { return strings.ReplaceAll(h, ".", "[.]") })
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isWordByte(c byte) bool { return isASCIILetter(c) || c >= '0' && c <= '9' || c == '_' }

// urlByte: a URL runs until white space, a quote or angle bracket, or a
// non-ASCII byte (Japanese text often follows a URL with no space).
func urlByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '\'' && c != '<' && c != '>'
}
