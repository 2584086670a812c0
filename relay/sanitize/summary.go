package sanitize

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// Summary is what a message shows its reader, read as the sanitize stage
// reads mail (so an attachment a mail client would show is never missed)
// and left unchanged: its subject, its text (an HTML body made text) and
// its attachments. The outbound rules ask it whether a message has an
// attachment; the approval pages show it.
type Summary struct {
	Subject string `json:"subject,omitempty"`
	// Text is the body a reader sees first, cut at the limit given.
	Text      string `json:"text,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	HTML      bool   `json:"html,omitempty"`
	// Attachments are the files, with their detected types; Reason and
	// Code are empty (nothing was decided about them).
	Attachments []Attachment `json:"attachments,omitempty"`
	// Unread counts parts past the walker's limit, skipped unread: each
	// may be a file.
	Unread int `json:"unread_parts,omitempty"`
}

// Files counts the attachments a reader sees as files: images shown
// inside an HTML body do not count, parts left unread do.
func (s Summary) Files() int {
	n := s.Unread
	for _, a := range s.Attachments {
		if !a.Inline {
			n++
		}
	}
	return n
}

// Summarize reads a message from r and says what it shows, its text cut
// at maxText bytes (0: no text, the files alone). It returns an error
// only when reading r failed.
func Summarize(r io.Reader, maxText int) (Summary, error) {
	// No type is allowed: every attachment is read, its type detected and
	// its content dropped, so nothing is kept on disk. The text is read
	// with the stage's own budget, not maxText: files written into a text
	// (uuencoded) are found only in the text read, and must be found as
	// the stage finds them. maxText only cuts what is shown.
	wk, src, s, _, p := walkMessage(r, Options{Links: LinksPlain})
	defer wk.cleanup()
	rep := wk.rep
	sum := Summary{Subject: rep.Subject}
	text := ""
	if maxText > 0 { // 0: only the files are wanted (the outbound rules)
		text = p.render(wk.o.Links)
	}
	if _, err := io.Copy(io.Discard, s.br); err != nil && src.err == nil {
		src.err = err
	}
	if src.err != nil {
		return Summary{}, fmt.Errorf("reading the message: %w", src.err)
	}
	sum.Text, sum.HTML, sum.Truncated, sum.Unread = cleanBody(text), p.html, rep.Truncated, rep.Unread
	if len(sum.Text) > maxText {
		cut := max(maxText, 0)
		for cut > 0 && !utf8.RuneStart(sum.Text[cut]) {
			cut--
		}
		sum.Text, sum.Truncated = sum.Text[:cut], true
	}
	for _, a := range rep.Removed {
		a.Reason, a.Code, a.Findings = "", "", nil
		sum.Attachments = append(sum.Attachments, a)
	}
	return sum, nil
}
