package sanitize

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// walker walks one message's MIME tree as it streams past.
type walker struct {
	o         Options
	rep       *Report
	kept      []keptFile
	parts     int
	textBytes int64
	ioErr     error
}

// text kinds, for choosing among alternatives
const (
	kindNone  = ""
	kindPlain = "plain"
	kindHTML  = "html"
)

// entity renders one entity (header + body) and returns its text and the
// kind of text it was made from. Attachments are recorded in the report.
func (wk *walker) entity(h textproto.Header, body io.Reader, depth int, path string, top bool) (string, string, error) {
	wk.parts++
	if depth > maxDepth {
		return "", "", &parseError{fmt.Sprintf("part %s: MIME nesting deeper than %d", path, maxDepth)}
	}
	if wk.parts > maxParts {
		return "", "", &parseError{fmt.Sprintf("more than %d MIME parts", maxParts)}
	}
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, params, err = "text/plain", map[string]string{}, nil
	}
	if err != nil {
		// A broken Content-Type on a multipart cannot be walked; on
		// anything else the part is treated as an opaque attachment.
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/") {
			return "", "", &parseError{fmt.Sprintf("part %s: Content-Type %q: %v", partName(path), ct, err)}
		}
		mt, params = TypeOctet, map[string]string{}
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := fileName(h, params, dparams)
	attached := disp == "attachment" || name != ""

	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return wk.multipart(mt, params, body, depth, path)
	case (mt == "message/rfc822" || mt == "message/global") && depth < maxDepth:
		return wk.embedded(h, body, depth, path)
	case (mt == "text/plain" || mt == "text/html") && !attached:
		raw, err := wk.readText(h, body)
		if err != nil {
			return "", "", err
		}
		text := decodeText(raw, params["charset"])
		if mt == "text/html" {
			return htmlToText(text, wk.o.Links), kindHTML, nil
		}
		return strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), kindPlain, nil
	}
	if top && path == "" {
		path = "1"
	}
	return "", kindNone, wk.attachment(h, mt, name, body, path)
}

func partName(path string) string {
	if path == "" {
		return "(top)"
	}
	return path
}

// multipart walks the children; alternatives give one text, the others
// concatenate theirs.
func (wk *walker) multipart(mt string, params map[string]string, body io.Reader, depth int, path string) (string, string, error) {
	boundary := params["boundary"]
	if boundary == "" {
		return "", "", &parseError{fmt.Sprintf("part %s: %s without a boundary", partName(path), mt)}
	}
	mr := textproto.NewMultipartReader(body, boundary)
	type alt struct{ text, kind string }
	var alts []alt
	n := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", &parseError{fmt.Sprintf("part %s: %v", partName(path), err)}
		}
		n++
		child := strconv.Itoa(n)
		if path != "" {
			child = path + "." + child
		}
		before := len(wk.rep.Removed)
		text, kind, err := wk.child(p.Header, p, depth+1, child, mt)
		p.Close()
		if err != nil {
			return "", "", err
		}
		if mt == "multipart/related" && n > 1 {
			// Parts after the root of a related set are what the HTML
			// shows inline (Outlook's image001.png).
			for i := before; i < len(wk.rep.Removed); i++ {
				if strings.HasPrefix(wk.rep.Removed[i].Detected, "image/") {
					wk.rep.Removed[i].Inline = true
				}
			}
		}
		alts = append(alts, alt{text, kind})
	}
	if n == 0 {
		return "", "", &parseError{fmt.Sprintf("part %s: %s with no parts", partName(path), mt)}
	}
	if mt == "multipart/alternative" {
		want := kindPlain
		if wk.o.Prefer == "html" {
			want = kindHTML
		}
		// The preferred kind wins; failing that the last non-empty part,
		// which RFC 2046 makes the sender's own preference.
		choice := -1
		for i, a := range alts {
			if strings.TrimSpace(a.text) == "" {
				continue
			}
			if a.kind == want || choice < 0 || alts[choice].kind != want {
				choice = i
			}
		}
		if choice < 0 {
			return "", kindNone, nil
		}
		if alts[choice].kind == kindHTML {
			wk.rep.HTMLConverted = true
		}
		return alts[choice].text, alts[choice].kind, nil
	}
	var texts []string
	kind := kindNone
	for _, a := range alts {
		if strings.TrimSpace(a.text) != "" {
			texts = append(texts, a.text)
			if a.kind == kindHTML {
				wk.rep.HTMLConverted = true
			}
			if kind == kindNone {
				kind = a.kind
			}
		}
	}
	return strings.Join(texts, "\n\n"), kind, nil
}

// child walks a part of a multipart; signatures of multipart/signed are
// dropped (any change to the text breaks them anyway) and noted.
func (wk *walker) child(h textproto.Header, body io.Reader, depth int, path, parent string) (string, string, error) {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch mt {
	case "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature":
		if parent == "multipart/signed" {
			n, err := io.Copy(io.Discard, body)
			if err != nil {
				return "", "", &parseError{fmt.Sprintf("part %s: %v", path, err)}
			}
			wk.rep.SignatureRemoved = true
			wk.rep.Removed = append(wk.rep.Removed, Attachment{Path: path, Name: "smime.p7s", Size: n, Declared: mt,
				Detected: mt, Reason: "signature (no longer valid once the message is sanitized)"})
			return "", kindNone, nil
		}
	}
	return wk.entity(h, body, depth, path, false)
}

// embedded renders an attached message (forwarded as attachment) as a
// quoted block with its own header summary; its attachments are handled
// like the outer ones.
func (wk *walker) embedded(h textproto.Header, body io.Reader, depth int, path string) (string, string, error) {
	br := bufio.NewReader(transferDecoder(h, body))
	ih, err := textproto.ReadHeader(br)
	if err != nil {
		return "", "", &parseError{fmt.Sprintf("part %s: embedded message header: %v", partName(path), err)}
	}
	text, kind, err := wk.entity(ih, br, depth+1, path, false)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	b.WriteString("---------- 添付されたメッセージ / Attached message ----------\n")
	for _, k := range []string{"From", "Date", "Subject", "To", "Cc"} {
		if v := ih.Get(k); v != "" {
			b.WriteString(k + ": " + decodeHeader(v) + "\n")
		}
	}
	b.WriteString("\n")
	if text != "" {
		b.WriteString(text + "\n")
	}
	b.WriteString("---------- ここまで / End of attached message ----------")
	if kind == kindNone {
		kind = kindPlain
	}
	return b.String(), kind, nil
}

// readText reads a text part up to the text budget; the rest is drained
// and the report says the text was cut.
func (wk *walker) readText(h textproto.Header, body io.Reader) ([]byte, error) {
	left := wk.o.MaxTextBytes - wk.textBytes
	raw, err := io.ReadAll(io.LimitReader(transferDecoder(h, body), max(left, 0)+1))
	if err != nil {
		return nil, &parseError{err.Error()}
	}
	if int64(len(raw)) > left {
		raw = raw[:max(left, 0)]
		wk.rep.Truncated = true
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, &parseError{err.Error()}
		}
	}
	wk.textBytes += int64(len(raw))
	return raw, nil
}

// transferDecoder undoes Content-Transfer-Encoding. Unknown encodings read
// as they are (RFC 2045 says to treat them as opaque).
func transferDecoder(h textproto.Header, body io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Clean{r: body})
	case "quoted-printable":
		return quotedprintable.NewReader(body)
	}
	return body
}

// base64Clean drops everything outside the base64 alphabet, as mail
// readers do: line breaks, spaces, and the garbage some mailers append.
// Decoding stops at the first '=' padding run's end naturally.
type base64Clean struct {
	r   io.Reader
	pad bool
}

func (c *base64Clean) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			if c.pad && b != '=' {
				continue // data after padding is ignored
			}
			if b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '=' {
				if b == '=' {
					c.pad = true
				}
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

var nameParam = regexp.MustCompile(`(?i)(?:file)?name\s*=\s*"?([^";\r\n]+)`)

// fileName finds an attachment's name: Content-Disposition filename, then
// Content-Type name, RFC 2231 and encoded words decoded; names with raw
// 8-bit bytes that defeat the parser are dug out by hand.
func fileName(h textproto.Header, ctParams, dParams map[string]string) string {
	for _, v := range []string{dParams["filename"], ctParams["name"]} {
		if v != "" {
			return decodeHeader(v)
		}
	}
	for _, f := range []string{"Content-Disposition", "Content-Type"} {
		if m := nameParam.FindStringSubmatch(h.Get(f)); m != nil {
			return decodeHeader(strings.TrimSpace(m[1]))
		}
	}
	return ""
}

// attachment streams a part through the sniffer; a candidate for the
// allow list is copied to a temporary file meanwhile.
func (wk *walker) attachment(h textproto.Header, declared, name string, body io.Reader, path string) error {
	ext := extension(name)
	candidate := slices.Contains(wk.o.AllowExtensions, ext) && len(wk.o.AllowTypes) > 0
	var s sniffer
	var dst io.Writer = &s
	var tmp *os.File
	if candidate {
		f, err := os.CreateTemp(wk.o.TempDir, "sekisho-att-*")
		if err != nil {
			wk.ioErr = fmt.Errorf("holding an attachment: %w", err)
			return wk.ioErr
		}
		tmp = f
		dst = io.MultiWriter(&s, f)
	}
	_, cerr := io.Copy(dst, transferDecoder(h, body))
	att := Attachment{Path: path, Name: name, Size: s.size, Declared: declared, Detected: s.detected()}
	reason := ""
	switch {
	case cerr != nil && tmp != nil && isWriteErr(cerr, tmp):
		tmp.Close()
		os.Remove(tmp.Name())
		wk.ioErr = fmt.Errorf("holding an attachment: %w", cerr)
		return wk.ioErr
	case cerr != nil:
		reason = "broken transfer encoding"
	case !slices.Contains(wk.o.AllowExtensions, ext):
		reason = "not on the allow list"
		if ext == "" {
			reason = "no file name extension"
		}
	case !extMatches(ext, att.Detected):
		reason = fmt.Sprintf("content is %s, not what .%s should hold", att.Detected, ext)
	case !slices.Contains(wk.o.AllowTypes, att.Detected):
		reason = "type " + att.Detected + " not on the allow list"
	}
	if att.Detected == TypeEncrypted && reason != "" {
		reason = "password-protected archive: content cannot be checked"
	}
	if reason == "" {
		wk.kept = append(wk.kept, keptFile{att: att, file: tmp})
		wk.rep.Kept = append(wk.rep.Kept, att)
		return nil
	}
	if tmp != nil {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	att.Reason = reason
	wk.rep.Removed = append(wk.rep.Removed, att)
	return nil
}

// isWriteErr tells a failed write to our temporary file from a broken
// encoding in the input.
func isWriteErr(err error, f *os.File) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Path == f.Name()
}
