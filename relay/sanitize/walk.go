package sanitize

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// walker walks one message's MIME tree as it streams past.
type walker struct {
	o         Options
	rep       *Report
	kept      []keptFile // parallel to rep.Kept
	pending   int        // of kept, those waiting for a conversion
	parts     int
	textBytes int64
	ioErr     error // a temporary file could not be written
	// extract, when set, receives the decoded bytes of the part at
	// extractPath (ExtractPart).
	extract     io.Writer
	extractPath string
	extracted   *Attachment
}

// text kinds, for choosing among alternatives
const (
	kindNone  = ""
	kindPlain = "plain"
	kindHTML  = "html"
)

// piece is the text an entity contributes. A text part's bytes are kept
// as they came and decoded only when the piece is used: the alternative
// that is not chosen costs no decoding.
type piece struct {
	kind string
	text string // rendered
	raw  []byte // a text part not rendered yet
	cs   string // its declared charset
	lazy bool
	html bool   // the text holds converted HTML
	rich string // "text/enriched" or "text/richtext": formatting to take out
}

func (p *piece) render(links string) string {
	if p.lazy {
		p.lazy = false
		t := decodeText(p.raw, p.cs)
		p.raw = nil
		switch {
		case p.kind == kindHTML:
			p.text, p.html = htmlToText(t, links), true
		case p.rich != "":
			t = enrichedToText(t, p.rich == "text/richtext")
			p.text = strings.TrimRight(t, "\n")
		default:
			p.text = strings.TrimRight(strings.ReplaceAll(t, "\r\n", "\n"), "\n")
		}
	}
	return p.text
}

// entity walks one entity (its header read, its body in s) and returns
// its text; attachments go into the report.
func (wk *walker) entity(h *header, s *source, depth int, path string) piece {
	wk.parts++
	mt, params := contentType(h.get("Content-Type"))
	disp, dparams := parseMediaType(h.get("Content-Disposition"))
	name := fileName(params, dparams)
	cte := h.get("Content-Transfer-Encoding")
	if path == "" && !strings.HasPrefix(mt, "multipart/") && !isMessage(mt) && (disp == "attachment" || !isText(mt)) {
		path = "1"
	}
	switch {
	case wk.parts > maxParts:
		wk.rep.Unread++
		s.drain()
		return piece{}
	case depth > maxDepth:
		wk.attachment(mt, name, cte, "", s, path, limitReason(CodeTooDeep, fmt.Sprintf("nested more than %d levels deep", maxDepth)))
		return piece{}
	case strings.HasPrefix(mt, "multipart/"):
		return wk.multipart(mt, params, inner(s, cte), depth, path)
	case isMessage(mt):
		return wk.embedded(inner(s, cte), depth, path)
	case isText(mt) && disp != "attachment":
		raw := wk.readText(transferDecoder(cte, s))
		if mt == "text/plain" {
			raw = wk.inlineFiles(raw, path)
		}
		p := piece{kind: kindPlain, raw: raw, cs: params["charset"], lazy: true}
		switch mt {
		case "text/html":
			p.kind = kindHTML
		case "text/enriched", "text/richtext":
			p.rich = mt
		}
		return p
	}
	wk.attachment(mt, name, cte, params["charset"], s, path, nil)
	return piece{}
}

// inlineFiles takes the uuencoded files out of a plain text and handles
// them as the attachments mail clients make of them: removed, or kept by
// the allow list; they never reach the recipient as text a client would
// decode again. Each block is a part of its own, named after its text
// part ("1.uu1", "1.uu2"), so that a report or an unlock can point at one.
func (wk *walker) inlineFiles(raw []byte, path string) []byte {
	text, blocks := inlineUU(raw)
	for i, b := range blocks {
		wk.attachment("", safeName(decodeText([]byte(b.name), "")), "x-uuencode", "", bytes.NewReader(b.data),
			fmt.Sprintf("%s.uu%d", partName(path), i+1), nil)
	}
	return text
}

// contentType reads Content-Type; RFC 2045 §5.2: a missing or invalid one
// means text/plain.
func contentType(v string) (string, map[string]string) {
	mt, params := parseMediaType(v)
	typ, sub, ok := strings.Cut(mt, "/")
	switch {
	case ok && typ != "" && sub != "" && !strings.ContainsAny(mt, " \t\"'"):
		return mt, params
	case typ == "multipart":
		return "multipart/mixed", params
	}
	return "text/plain", params
}

func isMessage(mt string) bool { return mt == "message/rfc822" || mt == "message/global" }

// isText: the types shown as the message's text.
func isText(mt string) bool {
	switch mt {
	case "text/plain", "text/html", "text/enriched", "text/richtext", "message/delivery-status", "message/global-delivery-status",
		"text/rfc822-headers", "message/disposition-notification":
		return true
	}
	return false
}

// inner is where a multipart or an embedded message inside a part is
// read from: the part's own lines, or, when a sender encoded it (against
// RFC 2045, but mail clients decode it), the decoded bytes.
func inner(s *source, cte string) *source {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64", "quoted-printable":
		return newSource(transferDecoder(cte, s))
	}
	return s
}

// multipart walks the parts; an alternative gives one text, the others
// join theirs.
func (wk *walker) multipart(mt string, params map[string]string, s *source, depth int, path string) piece {
	level := -1
	if b := strings.TrimRight(params["boundary"], " \t"); b != "" {
		level = s.push(b)
	}
	pre, found := wk.preamble(s, &level)
	if !found {
		// No part at all: what there is shows as text.
		if level >= 0 {
			s.pop()
		}
		if strings.TrimSpace(string(pre)) == "" {
			return piece{}
		}
		return piece{kind: kindPlain, raw: pre, lazy: true}
	}
	type child struct {
		p            piece
		kept0, kept1 int // the child's range in rep.Kept
	}
	var children []child
	n := 0
	for {
		if s.stop == level {
			s.stop = -1
		}
		s.startPart()
		n++
		if wk.parts >= maxParts {
			// Past the walker's limit the parts are counted and
			// skipped, their headers unread: memory stays what the
			// limit allows, however many parts a message has.
			wk.rep.Unread++
			s.drain()
			if s.stop != level || s.closing || s.eof {
				break
			}
			continue
		}
		cpath := strconv.Itoa(n)
		if path != "" {
			cpath = path + "." + cpath
		}
		c := child{kept0: len(wk.rep.Kept)}
		removed0 := len(wk.rep.Removed)
		ph := readHeader(s, partCaps, false)
		c.p = wk.child(ph, s, depth+1, cpath, mt)
		s.drain()
		c.kept1 = len(wk.rep.Kept)
		if mt == "multipart/related" && n > 1 {
			// Parts after the root of a related set are what the HTML
			// shows inline (Outlook's image001.png).
			for i := removed0; i < len(wk.rep.Removed); i++ {
				if strings.HasPrefix(wk.rep.Removed[i].Detected, "image/") {
					wk.rep.Removed[i].Inline = true
				}
			}
		}
		children = append(children, c)
		if s.stop != level || s.closing || s.eof || wk.ioErr != nil {
			break
		}
	}
	s.pop()
	if mt != "multipart/alternative" {
		var texts []string
		out := piece{}
		for i := range children {
			p := &children[i].p
			if t := p.render(wk.o.Links); strings.TrimSpace(t) != "" {
				texts = append(texts, t)
				out.html = out.html || p.html
				if out.kind == kindNone {
					out.kind = p.kind
				}
			}
		}
		out.text = strings.Join(texts, "\n\n")
		return out
	}
	// The preferred kind wins, the last of it first (RFC 2046 puts the
	// sender's own preference last); failing that the last part with
	// text.
	want := kindPlain
	if wk.o.Prefer == "html" {
		want = kindHTML
	}
	choice := -1
	for _, preferred := range []bool{true, false} {
		for i := len(children) - 1; i >= 0 && choice < 0; i-- {
			p := &children[i].p
			if p.kind == kindNone || (p.kind == want) != preferred {
				continue
			}
			if strings.TrimSpace(p.render(wk.o.Links)) != "" {
				choice = i
			}
		}
	}
	// Attachments of the alternatives not chosen belong to a version of
	// the text the recipient does not get.
	// Later ranges first: removing one shifts those after it.
	for i := len(children) - 1; i >= 0; i-- {
		if i == choice || choice < 0 && i == len(children)-1 {
			continue
		}
		wk.unkeep(children[i].kept0, children[i].kept1)
	}
	if choice < 0 {
		return piece{}
	}
	return children[choice].p
}

// preamble reads up to the first delimiter. It returns the preamble
// (capped) and whether a part follows. A sender that gave no boundary, or
// one its delimiters do not use, still wrote parts: a line "--X" followed
// by a Content- field before any declared delimiter makes X the boundary,
// as mail clients that guess would read it.
func (wk *walker) preamble(s *source, level *int) ([]byte, bool) {
	var pre []byte
	keep := func(text, nl []byte) {
		if len(pre) < maxPreamble {
			pre = append(append(pre, text...), nl...)
		}
	}
	for {
		text, nl, ok := s.next()
		if !ok {
			break
		}
		if len(text) > 2 && len(text) <= 200 && text[0] == '-' && text[1] == '-' && !s.partial {
			cand := bytes.TrimRight(text, " \t")
			cand = append([]byte(nil), cand...)
			candNL := append([]byte(nil), nl...)
			next, nextNL, ok2 := s.next()
			if ok2 && len(next) > 8 && equalFold(string(next[:8]), "content-") && !bytes.HasSuffix(cand, []byte("--")) {
				if *level < 0 {
					*level = s.push(string(cand[2:]))
				} else {
					s.bounds[*level] = cand
				}
				s.pushBack(next, nextNL)
				return pre, true
			}
			keep(cand, candNL)
			if !ok2 {
				break
			}
			s.pushBack(next, nextNL)
			continue
		}
		keep(text, nl)
	}
	if *level >= 0 && s.stop == *level && !s.closing {
		return pre, true
	}
	return pre, false
}

// maxPreamble caps the text kept from a multipart with no parts.
const maxPreamble = 64 << 10

// unkeep turns the kept attachments in rep.Kept[from:to] into removed
// ones: they belong to an alternative that was not chosen.
func (wk *walker) unkeep(from, to int) {
	if from >= to {
		return
	}
	for i := from; i < to; i++ {
		a := wk.rep.Kept[i]
		a.Reason, a.Code = "part of a version of the text that was not used", CodeUnusedAlternative
		wk.rep.Removed = append(wk.rep.Removed, a)
		k := wk.kept[i]
		k.file.Close()
		removeFile(k.file)
	}
	wk.rep.Kept = append(wk.rep.Kept[:from], wk.rep.Kept[to:]...)
	wk.kept = append(wk.kept[:from], wk.kept[to:]...)
}

// child walks a part of a multipart; signatures of multipart/signed are
// dropped (any change to the text breaks them anyway) and noted.
func (wk *walker) child(h *header, s *source, depth int, path, parent string) piece {
	if parent == "multipart/digest" && h.get("Content-Type") == "" {
		// RFC 2046 §5.1.5: a digest's parts are messages unless they
		// say otherwise.
		return wk.embedded(inner(s, h.get("Content-Transfer-Encoding")), depth, path)
	}
	mt, _ := contentType(h.get("Content-Type"))
	switch mt {
	case "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature":
		if parent == "multipart/signed" {
			n, _ := io.Copy(io.Discard, transferDecoder(h.get("Content-Transfer-Encoding"), s))
			wk.rep.SignatureRemoved = true
			wk.rep.Removed = append(wk.rep.Removed, Attachment{Path: path, Name: "smime.p7s", Size: n, Declared: mt,
				Detected: mt, Reason: "signature (no longer valid once the message is sanitized)", Code: CodeSignature})
			return piece{}
		}
	}
	return wk.entity(h, s, depth, path)
}

// embedded renders an attached message (forwarded as attachment) as a
// quoted block with its own header summary; its attachments are handled
// like the outer ones. One without a header is no message a client could
// show: it is removed as an attachment, the outer message stays.
func (wk *walker) embedded(s *source, depth int, path string) piece {
	ih := readHeader(s, embeddedCaps, true)
	if len(ih.fields) == 0 {
		wk.attachment("message/rfc822", "", "", "", s, partName(path), &reason{"embedded message without a header", CodeBroken})
		return piece{}
	}
	p := wk.entity(ih, s, depth+1, path)
	text := p.render(wk.o.Links)
	var b strings.Builder
	b.WriteString("---------- 添付されたメッセージ / Attached message ----------\n")
	for _, k := range []string{"From", "Date", "Subject", "To", "Cc"} {
		if v := ih.get(k); v != "" {
			b.WriteString(k + ": " + capText(cleanText(decodeHeader(v)), 300) + "\n")
		}
	}
	b.WriteString("\n")
	if text != "" {
		b.WriteString(text + "\n")
	}
	b.WriteString("---------- ここまで / End of attached message ----------")
	return piece{kind: kindPlain, text: b.String(), html: p.html}
}

var embeddedCaps = headerCaps{fields: 300, bytes: 256 << 10, fieldSize: 16 << 10}

func partName(path string) string {
	if path == "" {
		return "1"
	}
	return path
}

// readText reads a text part up to the text budget; the rest is drained
// and the report says the text was cut.
func (wk *walker) readText(body io.Reader) []byte {
	left := max(wk.o.MaxTextBytes-wk.textBytes, 0)
	var buf bytes.Buffer
	buf.ReadFrom(io.LimitReader(body, left+1))
	raw := buf.Bytes()
	if int64(len(raw)) > left {
		raw = raw[:left]
		wk.rep.Truncated = true
		io.Copy(io.Discard, body)
	}
	wk.textBytes += int64(len(raw))
	return raw
}
