// Package sanitize owns 無害化: it turns a message from the internet into
// one safe to deliver inside LGWAN — text-only body (HTML made readable
// text), attachments removed or kept by an allow list checked against their
// content, a notice of what was removed — in one streaming pass. The same
// function serves the live stage and the dry run.
package sanitize

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
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
}

// Limits of the walker: deeper nesting or more parts than this is not a
// real message and is treated as unparseable.
const (
	maxDepth       = 16
	maxParts       = 1000
	defaultMaxText = 4 << 20
)

// Attachment is one part that was removed or kept.
type Attachment struct {
	Path     string `json:"path"` // MIME part number: "2", "1.3"
	Name     string `json:"name"`
	Size     int64  `json:"size"`     // decoded bytes
	Declared string `json:"declared"` // the Content-Type the sender gave
	Detected string `json:"detected"` // the type its content has
	Reason   string `json:"reason,omitempty"`
	Inline   bool   `json:"inline,omitempty"` // an image shown in the HTML body
}

// Report says what was done.
type Report struct {
	Subject          string       `json:"subject,omitempty"` // the original Subject, decoded
	HTMLConverted    bool         `json:"html_converted,omitempty"`
	Removed          []Attachment `json:"removed,omitempty"`
	Kept             []Attachment `json:"kept,omitempty"`
	SignatureRemoved bool         `json:"signature_removed,omitempty"`
	Unparseable      bool         `json:"unparseable,omitempty"`
	ParseError       string       `json:"parse_error,omitempty"`
	Truncated        bool         `json:"truncated,omitempty"`
	Replaced         int          `json:"replaced,omitempty"` // characters the output charset could not hold (shown as 〓)
}

// Changed reports whether the message lost anything a recipient might want
// back, so its original belongs in the quarantine.
func (r *Report) Changed() bool {
	return r.HTMLConverted || len(r.Removed) > 0 || r.SignatureRemoved || r.Unparseable || r.Truncated || r.Replaced > 0
}

// Summary is the value of X-Sekisho-Sanitized: ASCII, one line.
func (r *Report) Summary(releaseID string) string {
	var parts []string
	if r.Unparseable {
		parts = append(parts, "unparseable; body withheld")
	}
	if r.HTMLConverted {
		parts = append(parts, "html converted to text")
	}
	parts = append(parts, fmt.Sprintf("attachments removed=%d kept=%d", len(r.Removed), len(r.Kept)))
	if r.SignatureRemoved {
		parts = append(parts, "signature removed")
	}
	if r.Truncated {
		parts = append(parts, "text truncated")
	}
	if r.Replaced > 0 {
		parts = append(parts, fmt.Sprintf("characters replaced=%d", r.Replaced))
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
// returns an error only when reading r or writing w (or a temporary file)
// failed; a message that cannot be parsed is not an error: the result is a
// notice to the recipient in its place, and Report.Unparseable is set.
func Message(r io.Reader, w io.Writer, o Options) (*Report, error) {
	o = o.withDefaults()
	src := &readErr{r: r}
	br := bufio.NewReaderSize(src, 32<<10)
	rep := &Report{}
	wk := &walker{o: o, rep: rep}
	defer wk.cleanup()

	h, herr := textproto.ReadHeader(br)
	var text, kind string
	var err error
	if herr == nil {
		rep.Subject = decodeHeader(h.Get("Subject"))
		text, kind, err = wk.entity(h, br, 0, "", true)
		if kind == kindHTML {
			rep.HTMLConverted = true
		}
	} else {
		err = &parseError{herr.Error()}
	}
	if src.err != nil {
		return nil, fmt.Errorf("reading the message: %w", src.err)
	}
	if wk.ioErr != nil {
		return nil, wk.ioErr
	}
	var pe *parseError
	if errors.As(err, &pe) {
		rep.Unparseable = true
		rep.ParseError = pe.msg
		// Nothing of a message we could not read reaches the recipient:
		// not the text, not an attachment.
		text = ""
		wk.discardKept()
		rep.Kept = nil
		rep.Removed = nil
	} else if err != nil {
		return nil, err
	}
	// The rest of the input is read so a caller's copy to the quarantine
	// (a TeeReader) sees every byte.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("reading the message: %w", err)
	}
	if err := wk.write(w, h, text); err != nil {
		return nil, err
	}
	return rep, nil
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

// parseError is a message that is not valid MIME.
type parseError struct{ msg string }

func (e *parseError) Error() string { return "unparseable message: " + e.msg }

// keptFile is an allowed attachment, held in a temporary file until the
// output is written.
type keptFile struct {
	att  Attachment
	file *os.File
}

func (wk *walker) discardKept() {
	for _, k := range wk.kept {
		k.file.Close()
		os.Remove(k.file.Name())
	}
	wk.kept = nil
}

func (wk *walker) cleanup() { wk.discardKept() }
