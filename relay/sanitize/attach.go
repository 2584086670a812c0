package sanitize

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Codes say, for a program, why an attachment was removed (Attachment.Code);
// Reason says it for a person.
const (
	CodeNotAllowed        = "not-allowed"        // its extension or type is not on the allow list
	CodeNoExtension       = "no-extension"       // its name has no extension to check
	CodeMismatch          = "type-mismatch"      // its content is not what its extension should hold
	CodeActive            = "active-content"     // allowed type, but it can run or fetch something (Findings say what)
	CodeEncrypted         = "encrypted"          // a password-protected archive: its content cannot be checked
	CodeSignature         = "signature"          // an S/MIME or PGP signature, invalid once the text changed
	CodeUnusedAlternative = "unused-alternative" // part of the version of the text not chosen (prefer)
	CodeTooDeep           = "too-deep"           // nested deeper than the walker goes
	CodeBroken            = "broken"             // an embedded message with no header
)

// reason is why an attachment is removed before its content is looked
// at.
type reason struct {
	text, code string
}

func limitReason(code, text string) *reason { return &reason{text, code} }

// attachment streams a part through the sniffer; a candidate for the
// allow list is copied to a temporary file meanwhile and, if its type
// may be kept, checked for active content. A part that is removed anyway
// is decoded only as far as its type needs. charset is the one the
// sender declared, written again with a kept text file.
func (wk *walker) attachment(declared, name, cte, charset string, body io.Reader, path string, pre *reason) {
	ext := extension(name)
	class := classOf(ext)
	action := wk.o.Reconstruct.action(class)
	conv := pre == nil && converting(action)
	candidate := conv || pre == nil && action == ActionKeep && len(wk.o.AllowTypes) > 0 && slices.Contains(wk.o.AllowExtensions, ext)
	var s sniffer
	var dst io.Writer = &s
	var tmp *os.File
	if candidate {
		f, err := os.CreateTemp(wk.o.TempDir, "sekisho-att-*")
		if err != nil {
			wk.ioErr = fmt.Errorf("holding an attachment: %w", err)
			return
		}
		tmp = f
		dst = &teeWriter{s: &s, f: f}
	}
	extracting := wk.extract != nil && path == wk.extractPath && wk.extracted == nil
	if extracting {
		dst = io.MultiWriter(dst, wk.extract)
	}
	dec := transferDecoder(cte, body)
	var werr error
	if _, err := io.CopyN(dst, dec, sniffHead); err == nil {
		b64, isB64 := dec.(*base64Reader)
		switch {
		case !candidate && !extracting && isB64 && !s.isZip():
			n, _ := b64.countRest()
			s.size += n
		default:
			_, err = io.Copy(dst, dec)
		}
		werr = err
	} else if err != io.EOF {
		werr = err
	}
	att := Attachment{Path: path, Name: name, Size: s.size, Declared: declared, Detected: s.detected()}
	if extracting {
		a := att
		wk.extracted = &a
	}
	if att.Detected == TypeEncrypted && ext == "zip" {
		class, action = ClassEncrypted, wk.o.Reconstruct.action(ClassEncrypted)
	}
	if class != "" {
		att.Class, att.Action = class, action
	}
	var why *reason
	var tw *teeWriter
	if t, ok := dst.(*teeWriter); ok {
		tw = t
	}
	switch {
	case tw != nil && tw.err != nil:
		tmp.Close()
		removeFile(tmp)
		wk.ioErr = fmt.Errorf("holding an attachment: %w", tw.err)
		return
	case werr != nil:
		// The input failed (a disk error reading the original): Message
		// reports it; what was read is not kept.
		why = &reason{"could not be read", CodeBroken}
	case pre != nil:
		why = pre
	case ext == "":
		why = &reason{"no file name extension", CodeNoExtension}
	case action == ActionRemove:
		why = &reason{"attachments of this kind (" + class + ") are removed", CodeRemovedClass}
	case conv || action == ActionUnlock:
		if !convertible(class, ext, att.Detected) {
			why = &reason{fmt.Sprintf("content is %s, not what .%s should hold", att.Detected, ext), CodeMismatch}
			break
		}
		if action == ActionUnlock {
			att.Reason, att.Code = "password-protected: held until its recipient opens it with the password", CodeHeld
			wk.rep.Held = append(wk.rep.Held, att)
			return
		}
		wk.kept = append(wk.kept, keptFile{att: att, file: tmp, action: action})
		wk.rep.Kept = append(wk.rep.Kept, att)
		wk.pending++
		return
	case !slices.Contains(wk.o.AllowExtensions, ext):
		why = &reason{"not on the allow list", CodeNotAllowed}
	case !extMatches(ext, att.Detected):
		why = &reason{fmt.Sprintf("content is %s, not what .%s should hold", att.Detected, ext), CodeMismatch}
	case !slices.Contains(wk.o.AllowTypes, att.Detected):
		why = &reason{"type " + att.Detected + " not on the allow list", CodeNotAllowed}
	default:
		findings, err := activeContent(tmp, att.Detected)
		if err != nil {
			tmp.Close()
			removeFile(tmp)
			wk.ioErr = fmt.Errorf("checking a held attachment: %w", err)
			return
		}
		if len(findings) > 0 {
			att.Findings = findings
			why = &reason{"active content: " + strings.Join(findings, ", "), CodeActive}
		}
	}
	if att.Detected == TypeEncrypted && why != nil && why.code != CodeBroken && why.code != CodeRemovedClass {
		why = &reason{"password-protected archive: content cannot be checked", CodeEncrypted}
	}
	if why == nil {
		wk.kept = append(wk.kept, keptFile{att: att, file: tmp, charset: charsetToken(charset)})
		wk.rep.Kept = append(wk.rep.Kept, att)
		return
	}
	if tmp != nil {
		tmp.Close()
		removeFile(tmp)
	}
	att.Reason, att.Code = why.text, why.code
	wk.rep.Removed = append(wk.rep.Removed, att)
}

// teeWriter writes to the sniffer and the held copy, remembering a
// failure of the copy (ENOSPC) apart from one of the input.
type teeWriter struct {
	s   *sniffer
	f   *os.File
	err error
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.s.Write(p)
	if _, err := t.f.Write(p); err != nil {
		t.err = err
		return 0, err
	}
	return len(p), nil
}

// removeFile removes a held copy; one that cannot be removed is a stray
// the quarantine's Purge sweeps.
func removeFile(f *os.File) { os.Remove(f.Name()) }

// charsetToken is a declared charset fit to write again: a short token
// of the characters charset names use, "" for anything else.
func charsetToken(cs string) string {
	cs = strings.Trim(strings.TrimSpace(cs), `"'`)
	if len(cs) > 40 {
		return ""
	}
	for _, c := range cs {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return ""
		}
	}
	return cs
}
