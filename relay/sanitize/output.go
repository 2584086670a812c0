package sanitize

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// HeaderSanitized is the field added to every sanitized message.
const HeaderSanitized = "X-Sekisho-Sanitized"

// dropped header fields: the MIME structure is ours now, and a sender's
// own X-Sekisho-Sanitized must not pass for ours.
var dropped = map[string]bool{
	"Content-Type": true, "Content-Transfer-Encoding": true, "Mime-Version": true,
	"Content-Disposition": true, "Content-Id": true, "Content-Md5": true, HeaderSanitized: true,
}

var addressFields = map[string]bool{"From": true, "To": true, "Cc": true, "Reply-To": true, "Sender": true,
	"Resent-From": true, "Resent-To": true, "Resent-Cc": true, "Resent-Sender": true}

// write emits the sanitized message: the original header fields (8-bit
// ones re-encoded), ours, then the text and any kept attachments.
func (wk *walker) write(w io.Writer, h textproto.Header, text string) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := &encoder{iso: wk.o.Charset == CharsetISO2022J}
	body := wk.defang(text)
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	// The text is encoded first, so the notice can say how many
	// characters the output charset could not hold.
	encoded := enc.text(foldLong(body, enc.iso))
	wk.rep.Replaced += enc.replaced
	encoded = append(enc.text(wk.notice()), encoded...)

	tagged := false
	for f := h.Fields(); f.Next(); {
		k := f.Key()
		if dropped[k] {
			continue
		}
		v := f.Value()
		if k == "Subject" && wk.o.SubjectTag != "" && wk.rep.Changed() && !tagged {
			tagged = true
			subj := decodeHeader(v)
			if !strings.Contains(subj, wk.o.SubjectTag) {
				subj = wk.o.SubjectTag + " " + subj
			}
			writeField(bw, k, enc.header(subj))
			continue
		}
		if hasHigh(v) {
			writeField(bw, k, reencode(enc, k, v))
			continue
		}
		raw, err := f.Raw()
		if err != nil {
			continue
		}
		bw.Write(raw)
	}
	if !tagged && wk.o.SubjectTag != "" && wk.rep.Changed() && !h.Has("Subject") {
		writeField(bw, "Subject", enc.header(wk.o.SubjectTag))
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
			writeBase64(bw, strings.NewReader(string(crlf(encoded))))
		}
	}
	if len(wk.kept) == 0 {
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
		name := k.att.Name
		writeField(bw, "Content-Type", mime.FormatMediaType(k.att.Detected, map[string]string{"name": enc.header(name)}))
		writeField(bw, "Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
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

// reencode turns a header value with raw 8-bit bytes into encoded words;
// address fields keep their addresses and encode only the display names.
func reencode(enc *encoder, k, v string) string {
	d := decodeHeader(v)
	if addressFields[k] {
		if list, err := mail.ParseAddressList(d); err == nil {
			parts := make([]string, len(list))
			for i, a := range list {
				if a.Name == "" {
					parts[i] = "<" + a.Address + ">"
				} else {
					parts[i] = enc.header(a.Name) + " <" + a.Address + ">"
				}
			}
			return strings.Join(parts, ", ")
		}
	}
	return enc.header(d)
}

// writeBase64 writes r base64-encoded in 76-column lines.
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

// crlf turns LF line ends into CRLF.
func crlf(b []byte) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n"))
}

// foldLong cuts lines that ISO-2022-JP's 7-bit form could not carry (a
// line must stay under 998 octets; a kanji takes two plus escapes).
func foldLong(s string, iso bool) string {
	if !iso {
		return s
	}
	var b strings.Builder
	for line := range strings.SplitAfterSeq(s, "\n") {
		r := []rune(line)
		for len(r) > 300 {
			b.WriteString(string(r[:300]) + "\n")
			r = r[300:]
		}
		b.WriteString(string(r))
	}
	return b.String()
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
	out := b.String()
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
