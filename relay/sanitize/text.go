package sanitize

import (
	"bytes"
	"io"
	"mime"
	"strings"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // ISO-2022-JP output decoded back
)

// Text sanitizes a message as the live stage does and returns the text a
// recipient reads (the first text/plain part, decoded), with the report:
// the console shows an original's body only this way, never the
// original's HTML. maxBytes bounds the text returned.
func Text(original io.Reader, o Options, maxBytes int) (string, *Report, error) {
	var out bytes.Buffer
	rep, err := Message(original, &out, o)
	if err != nil {
		return "", nil, err
	}
	m, err := gomessage.Read(&out)
	if err != nil && !gomessage.IsUnknownCharset(err) {
		return "", rep, err
	}
	text, err := firstText(m)
	if err != nil {
		return "", rep, err
	}
	if len(text) > maxBytes {
		text = text[:maxBytes]
		for len(text) > 0 && text[len(text)-1]&0xC0 == 0x80 {
			text = text[:len(text)-1]
		}
	}
	return strings.ReplaceAll(text, "\r\n", "\n"), rep, nil
}

func firstText(e *gomessage.Entity) (string, error) {
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			if t, err := firstText(p); err != nil || t != "" {
				return t, err
			}
		}
	}
	mt, _, _ := mime.ParseMediaType(e.Header.Get("Content-Type"))
	if mt != "" && mt != "text/plain" {
		return "", nil
	}
	b, err := io.ReadAll(io.LimitReader(e.Body, 8<<20))
	return string(b), err
}
