package milter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ApplyEdits returns header (a CRLF header block, with or without the
// empty line that ends it; it is kept if present) with the edits applied
// in order, the way sendmail and Postfix apply
// them: AddHeader appends, ChangeHeader replaces (or, with an empty value,
// deletes) the Index-th field of that name counting from 1, InsertHeader
// puts the field at position Index counting from 0. A ChangeHeader whose
// field does not exist adds it, as Postfix does.
func ApplyEdits(header []byte, edits []HeaderEdit) []byte {
	if len(edits) == 0 {
		return header
	}
	body, ended := bytes.CutSuffix(header, []byte("\r\n\r\n"))
	if ended {
		header = append(body[:len(body):len(body)], '\r', '\n')
	}
	fields := splitFields(header)
	for _, e := range edits {
		line := formatField(e.Name, e.Value)
		switch e.Op {
		case AddHeader:
			fields = append(fields, line)
		case InsertHeader:
			i := min(max(e.Index, 0), len(fields))
			fields = append(fields[:i], append([][]byte{line}, fields[i:]...)...)
		case ChangeHeader:
			n, at := 0, -1
			for i, f := range fields {
				if strings.EqualFold(fieldName(f), e.Name) {
					n++
					if n == max(e.Index, 1) {
						at = i
						break
					}
				}
			}
			switch {
			case at < 0 && e.Value != "":
				fields = append(fields, line)
			case at >= 0 && e.Value == "":
				fields = append(fields[:at], fields[at+1:]...)
			case at >= 0:
				fields[at] = line
			}
		}
	}
	if ended {
		fields = append(fields, []byte("\r\n"))
	}
	return bytes.Join(fields, nil)
}

// checkEdit refuses a header edit that cannot be written as a field: a
// name that is not RFC 5322's printable ASCII without a colon, or a value
// holding NUL. The milter breaks the protocol and fails.
func checkEdit(name, value string) error {
	if name == "" {
		return errors.New("header edit without a field name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("header edit with an invalid field name %q", name)
		}
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("header edit of %s with a NUL in its value", name)
	}
	return nil
}

// formatField writes a field. Milters send folded values with bare LF or
// CRLF, which become CRLF; a line break not followed by white space would
// start a field of the milter's making, or end the header at an empty
// line, so every line after the first is folded (a tab put in front) and
// empty ones are dropped. A bare CR becomes a space.
func formatField(name, value string) []byte {
	value = strings.ReplaceAll(value, "\r\n", "\n")
	value = strings.ReplaceAll(value, "\r", " ")
	var b strings.Builder
	for i, line := range strings.Split(value, "\n") {
		if i > 0 {
			if strings.TrimSpace(line) == "" {
				continue
			}
			b.WriteString("\r\n")
			if line[0] != ' ' && line[0] != '\t' {
				b.WriteByte('\t')
			}
		}
		b.WriteString(line)
	}
	value = b.String()
	sep := ": "
	if strings.HasPrefix(value, " ") || strings.HasPrefix(value, "\t") {
		sep = ":"
	}
	return []byte(name + sep + value + "\r\n")
}

// splitFields cuts a header block into fields, continuation lines kept
// with their field.
func splitFields(h []byte) [][]byte {
	var out [][]byte
	for len(h) > 0 {
		end := 0
		for {
			i := bytes.IndexByte(h[end:], '\n')
			if i < 0 {
				end = len(h)
				break
			}
			end += i + 1
			if end >= len(h) || (h[end] != ' ' && h[end] != '\t') {
				break
			}
		}
		f := h[:end]
		if len(bytes.TrimRight(f, "\r\n")) > 0 {
			if !bytes.HasSuffix(f, []byte("\n")) {
				f = append(f[:len(f):len(f)], '\r', '\n')
			}
			out = append(out, f)
		}
		h = h[end:]
	}
	return out
}

func fieldName(f []byte) string {
	i := bytes.IndexByte(f, ':')
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(string(f[:i]))
}
