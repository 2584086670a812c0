// Package sanitize owns 無害化: it turns a message from the internet into
// one safe to deliver inside LGWAN — text-only body (HTML made readable
// text), attachments removed or kept by an allow list checked against their
// content, a notice of what was removed — in one streaming pass. The same
// function serves the live stage and the dry run.
package sanitize

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/sanitize/convert"
)

// Options say how to sanitize. The zero value removes every attachment and
// writes UTF-8 with defanged links.
type Options struct {
	Charset         string   // CharsetUTF8 (default) or CharsetISO2022J
	Links           string   // LinksDefang (default), LinksPlain or LinksRemove
	Prefer          string   // "plain" (default) or "html": which part of a multipart/alternative becomes the body
	SubjectTag      string   // prepended to the Subject when something was done ("" for none)
	AllowTypes      []string // detected media types an attachment may have to be kept
	AllowExtensions []string // file name extensions (no dot) an attachment may have to be kept
	// ReleaseID names the original in the quarantine; it is shown in the
	// notice. KeepUntil is shown as the date the original is kept until.
	ReleaseID string
	KeepUntil time.Time
	// MaxTextBytes bounds the body text kept in memory (default 4 MiB);
	// longer text is cut with a note.
	MaxTextBytes int64
	// TempDir holds kept attachments while the message is walked ("" is
	// the system default).
	TempDir string
	// Reconstruct says what becomes of each class of attachment; the
	// zero value keeps each to the allow list.
	Reconstruct Reconstruct
	// Convert runs the conversions Reconstruct asks for; nil: each such
	// attachment is removed, saying that no converter is configured.
	Convert *convert.Converter
	// Context ends the conversions early (the gateway stopping): the
	// message is then not written, and Message returns an error.
	Context context.Context
	// PlanOnly reports the conversions Reconstruct asks for without
	// running them, and leaves the files out: for showing the text a
	// recipient got again (the console's index), not for delivery.
	PlanOnly bool
	// ConsoleURL is where the notice sends a recipient to open a held
	// password archive ("" for none).
	ConsoleURL string
}

// Limits of the walker. Parts nested deeper are removed unread, parts
// past the count are skipped and counted: no real message comes near
// either, and neither withholds the rest.
const (
	maxDepth       = 16
	maxParts       = 1000
	defaultMaxText = 4 << 20
)

// Attachment is one part that was removed or kept, and why.
type Attachment struct {
	Path     string `json:"path"`     // MIME part number: "2", "1.3"
	Name     string `json:"name"`     // decoded, made safe (safeName): what the recipient sees
	Size     int64  `json:"size"`     // decoded bytes
	Declared string `json:"declared"` // the Content-Type the sender gave
	Detected string `json:"detected"` // the type its content has
	// Reason says why it was removed, Code the same for a program
	// (CodeNotAllowed, CodeActive, ...); both empty for a kept one.
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"`
	// Findings are the active content an allowed type held (CodeActive):
	// "JavaScript", "macros", "remote template"...
	Findings []string `json:"findings,omitempty"`
	Inline   bool     `json:"inline,omitempty"` // an image shown in the HTML body
	// Class is its class for reconstruction (ClassOffice...), "" for
	// none; Action what its class is configured to get.
	Class  string `json:"class,omitempty"`
	Action string `json:"action,omitempty"`
	// As, AsType and AsSize are what a converted attachment became: the
	// file the recipient got; Pages the pages of a converted document.
	As     string `json:"as,omitempty"`
	AsType string `json:"as_type,omitempty"`
	AsSize int64  `json:"as_size,omitempty"`
	Pages  int    `json:"pages,omitempty"`
}

// Report says what was done.
type Report struct {
	Subject       string       `json:"subject,omitempty"` // the original Subject, decoded
	HTMLConverted bool         `json:"html_converted,omitempty"`
	Removed       []Attachment `json:"removed,omitempty"`
	Kept          []Attachment `json:"kept,omitempty"`
	// Converted were reconstructed (Action, As): the recipient got the
	// converted file in place of each.
	Converted []Attachment `json:"converted,omitempty"`
	// Held are password archives kept for their recipient to open in the
	// console (ActionUnlock).
	Held             []Attachment `json:"held,omitempty"`
	SignatureRemoved bool         `json:"signature_removed,omitempty"`
	// Unparseable: nothing of the message could be shown (no header and
	// no text); ParseError says why. Only a notice was delivered.
	Unparseable bool   `json:"unparseable,omitempty"`
	ParseError  string `json:"parse_error,omitempty"`
	Truncated   bool   `json:"truncated,omitempty"`
	Replaced    int    `json:"replaced,omitempty"` // characters the output charset could not hold (shown as 〓)
	// Unread counts the parts past the walker's limit, skipped unread.
	Unread int `json:"unread_parts,omitempty"`
	// HeaderDropped names the header fields left out, and why: over the
	// caps on reading, or a line over 998 octets that cannot be folded.
	HeaderDropped []string `json:"header_dropped,omitempty"`
	// headerDropped counts them before the list was cut short.
	headerDropped int
}

// Changed reports whether the message lost anything a recipient might want
// back, so its original belongs in the quarantine.
func (r *Report) Changed() bool {
	return r.HTMLConverted || len(r.Removed) > 0 || len(r.Converted) > 0 || len(r.Held) > 0 || r.SignatureRemoved || r.Unparseable || r.Truncated ||
		r.Replaced > 0 || r.Unread > 0 || len(r.HeaderDropped) > 0
}

// Result says in one word what was done: "withheld" (only a notice was
// delivered), "sanitized" (something was removed or converted; the
// original is kept) or "re-encoded" (nothing was lost, but the message
// was written again as text in our own MIME structure).
func (r *Report) Result() string {
	switch {
	case r.Unparseable:
		return "withheld"
	case r.Changed():
		return "sanitized"
	}
	return "re-encoded"
}

// Summary is the value of X-Sekisho-Sanitized: ASCII, one line.
func (r *Report) Summary(releaseID string) string {
	var parts []string
	if r.Unparseable {
		parts = append(parts, "withheld: "+r.ParseError)
	}
	if r.HTMLConverted {
		parts = append(parts, "html converted to text")
	}
	att := fmt.Sprintf("attachments removed=%d kept=%d", len(r.Removed), len(r.Kept))
	if len(r.Converted) > 0 {
		att += fmt.Sprintf(" converted=%d", len(r.Converted))
	}
	if len(r.Held) > 0 {
		att += fmt.Sprintf(" held=%d", len(r.Held))
	}
	parts = append(parts, att)
	if r.SignatureRemoved {
		parts = append(parts, "signature removed")
	}
	if r.Truncated {
		parts = append(parts, "text truncated")
	}
	if r.Replaced > 0 {
		parts = append(parts, fmt.Sprintf("characters replaced=%d", r.Replaced))
	}
	if r.Unread > 0 {
		parts = append(parts, fmt.Sprintf("parts not read=%d", r.Unread))
	}
	if len(r.HeaderDropped) > 0 {
		parts = append(parts, fmt.Sprintf("header fields dropped=%d", max(r.headerDropped, len(r.HeaderDropped))))
	}
	if releaseID != "" && r.Changed() {
		parts = append(parts, "release-id="+releaseID)
	}
	return strings.Join(parts, "; ")
}

// readErr remembers a failure of the underlying reader, so a disk error
// while reading the original is returned as an error, not mistaken for a
// broken message.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Message reads a message from r and writes its sanitized form to w. It
// reads as a mail client does, so nearly every message shows; it returns
// an error only when reading r or writing w (or a temporary file) failed.
// A message with nothing a client could show (no header, no text) is not
// an error: a notice goes in its place, and Report.Unparseable says why.
func Message(r io.Reader, w io.Writer, o Options) (*Report, error) {
	wk, src, s, h, p := walkMessage(r, o)
	defer wk.cleanup()
	rep := wk.rep
	rep.HeaderDropped = h.dropped // header() adds its own and cuts the list short
	text := p.render(wk.o.Links)
	rep.HTMLConverted = p.html
	if src.err != nil {
		return nil, fmt.Errorf("reading the message: %w", src.err)
	}
	if wk.ioErr != nil {
		return nil, wk.ioErr
	}
	if len(h.fields) == 0 && strings.IndexByte(text, 0) >= 0 {
		// No header and binary content: not mail any client could show.
		rep.Unparseable = true
		rep.ParseError = "no header, and the content is binary, not text"
		text = ""
		wk.discardKept()
		rep.Kept, rep.Removed, rep.Held, rep.HTMLConverted = nil, nil, nil, false
	}
	if wk.pending > 0 && !rep.Unparseable {
		wk.convertAll()
		if wk.ioErr != nil {
			return nil, wk.ioErr
		}
	}
	// The rest of the input is read so a caller's copy to the quarantine
	// (a TeeReader) sees every byte.
	if _, err := io.Copy(io.Discard, s.br); err != nil {
		return nil, fmt.Errorf("reading the message: %w", err)
	}
	if err := wk.write(w, h, text); err != nil {
		return nil, err
	}
	return rep, nil
}

// walkMessage reads a message's header and walks its structure: the
// walker (its report, with the decoded Subject, and the attachments it
// kept), the reader's error holder, the source left after the message's
// parts, the top header and the entity to render.
func walkMessage(r io.Reader, o Options) (*walker, *readErr, *source, *header, piece) {
	o = o.withDefaults()
	src := &readErr{r: r}
	s := newSource(src)
	wk := &walker{o: o, rep: &Report{}}
	h := readHeader(s, topCaps, true)
	wk.rep.Subject = cleanText(decodeHeader(h.get("Subject")))
	return wk, src, s, h, wk.entity(h, s, 0, "")
}

// capList keeps a report's list of notes short: the first ones, then
// how many more.
func capList(l []string) []string {
	const n = 20
	if len(l) <= n {
		return l
	}
	return append(l[:n:n], fmt.Sprintf("and %d more", len(l)-n))
}

func (o Options) withDefaults() Options {
	if o.Charset == "" {
		o.Charset = CharsetUTF8
	}
	if o.Links == "" {
		o.Links = LinksDefang
	}
	if o.Prefer == "" {
		o.Prefer = "plain"
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = defaultMaxText
	}
	return o
}

// keptFile is an allowed attachment, held in a temporary file until the
// output is written.
type keptFile struct {
	att     Attachment
	file    *os.File
	charset string // a text file's declared charset: its bytes are as they came
	action  string // a conversion to run on it (reconstruct.go); "" for a file kept as it is
}

func (wk *walker) discardKept() {
	for _, k := range wk.kept {
		k.file.Close()
		removeFile(k.file)
	}
	wk.kept = nil
}

func (wk *walker) cleanup() { wk.discardKept() }
