package sanitize

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"strings"
)

// Transfer decoders that read as mail clients do: a broken encoding
// decodes as far as it goes, never failing the part. Only the reader
// underneath can fail (a disk error), and that error is passed on.

// transferDecoder undoes a Content-Transfer-Encoding. Unknown encodings
// read as they are (RFC 2045 says to treat them as opaque).
func transferDecoder(cte string, body io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return newBase64Reader(body)
	case "quoted-printable":
		return &qpReader{br: bufio.NewReaderSize(body, 4096)}
	case "x-uuencode", "uuencode", "x-uue", "uue":
		// Eudora's and old Unix mailers'; clients decode it.
		return &uuReader{br: bufio.NewReaderSize(body, 4096)}
	}
	return body
}

// base64Reader decodes base64, skipping everything outside the alphabet
// (line breaks, spaces, the garbage some mailers append) and stopping at
// the padding; a last incomplete group gives the bytes it holds.
type base64Reader struct {
	r     io.Reader
	raw   []byte
	quad  []byte // characters carried to the next read (fewer than four)
	out   []byte // decoded, not yet returned
	dec   []byte
	ended bool // padding seen: the rest is skipped
	err   error
}

func newBase64Reader(r io.Reader) *base64Reader {
	return &base64Reader{r: r, raw: make([]byte, 16<<10), quad: make([]byte, 0, 16<<10+4), dec: make([]byte, 12<<10+3)}
}

var b64Valid = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.raw)
		raw := d.raw[:n]
		if i := bytes.IndexByte(raw, '='); i >= 0 {
			raw, d.ended = raw[:i], true
		}
		q := d.quad[:len(d.quad)+len(raw)]
		j := len(d.quad)
		for _, c := range raw {
			q[j] = c
			if b64Valid[c] {
				j++
			}
		}
		d.quad = q[:j]
		if err != nil || d.ended {
			// The end: the last group decodes as far as it goes.
			if len(d.quad)%4 == 1 {
				d.quad = d.quad[:len(d.quad)-1]
			}
			m, _ := base64.RawStdEncoding.Decode(d.dec[:cap(d.dec)], d.quad)
			d.out, d.quad = d.dec[:m], d.quad[:0]
			if err == nil {
				err = d.skip()
			}
			d.err = err
			continue
		}
		whole := len(d.quad) / 4 * 4
		m, _ := base64.StdEncoding.Decode(d.dec[:cap(d.dec)], d.quad[:whole])
		d.out = d.dec[:m]
		d.quad = append(d.quad[:0], d.quad[whole:]...)
	}
	c := copy(p, d.out)
	d.out = d.out[c:]
	return c, nil
}

// skip reads what follows the padding, so the caller sees the part end.
func (d *base64Reader) skip() error {
	_, err := io.Copy(io.Discard, d.r)
	if err == nil {
		err = io.EOF
	}
	return err
}

// countRest returns how many bytes the rest of the encoded data decodes
// to without decoding it: attachments that are removed anyway need only
// their size.
func (d *base64Reader) countRest() (int64, error) {
	n := int64(len(d.out))
	d.out = nil
	chars := int64(len(d.quad))
	d.quad = d.quad[:0]
	for d.err == nil && !d.ended {
		m, err := d.r.Read(d.raw)
		raw := d.raw[:m]
		if i := bytes.IndexByte(raw, '='); i >= 0 {
			raw, d.ended = raw[:i], true
		}
		for _, c := range raw {
			if b64Valid[c] {
				chars++
			}
		}
		if err != nil {
			d.err = err
		}
	}
	if d.ended && d.err == nil {
		d.err = d.skip()
	}
	n += chars / 4 * 3
	if r := chars % 4; r > 1 {
		n += r - 1
	}
	if d.err == io.EOF {
		return n, nil
	}
	return n, d.err
}

// qpReader decodes quoted-printable a line at a time: "=XX" in either
// case, soft breaks, trailing white space dropped; an "=" that starts no
// escape stays as it is.
type qpReader struct {
	br  *bufio.Reader
	buf []byte
	out []byte
	err error
}

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.out) == 0 {
		if q.err != nil {
			return 0, q.err
		}
		line, err := q.br.ReadSlice('\n')
		whole := true
		if err == bufio.ErrBufferFull {
			err, whole = nil, false
		}
		q.buf = qpLine(q.buf[:0], line, whole)
		q.out = q.buf
		q.err = err
	}
	c := copy(p, q.out)
	q.out = q.out[c:]
	return c, nil
}

func qpLine(dst, line []byte, whole bool) []byte {
	nl := false
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line, nl = line[:n-1], true
		if n > 1 && line[n-2] == '\r' {
			line = line[:n-2]
		}
	}
	if whole {
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
	}
	soft := false
	if len(line) > 0 && line[len(line)-1] == '=' {
		line, soft = line[:len(line)-1], true
	}
	dst = appendUnescaped(dst, line, '=')
	if nl && !soft {
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// uuReader decodes uuencode: the lines after "begin MODE NAME" up to a
// line of length zero or "end", each a length character and groups of
// four characters for three bytes. A short line gives the bytes it
// holds; anything before "begin" is skipped.
type uuReader struct {
	br      *bufio.Reader
	begun   bool
	out     []byte
	buf     []byte
	err     error
	discard bool // the rest of a line longer than the buffer
}

func (u *uuReader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		line, err := u.br.ReadSlice('\n')
		long := err == bufio.ErrBufferFull
		if long {
			err = nil
		}
		skip := u.discard
		u.discard = long
		u.err = err
		if skip {
			continue
		}
		line = bytes.TrimRight(line, " \t\r\n")
		switch {
		case !u.begun:
			u.begun = bytes.HasPrefix(line, []byte("begin "))
		case len(line) == 0:
		case bytes.Equal(line, []byte("end")) || line[0] == '`' || line[0] == ' ':
			// The end, or a line of zero bytes before it.
			u.err = io.EOF
		default:
			u.buf = uuLine(u.buf[:0], line)
			u.out = u.buf
		}
	}
	c := copy(p, u.out)
	u.out = u.out[c:]
	return c, nil
}

// uuLine decodes one uuencoded line: its first character says how many
// bytes follow (at most 63). Missing characters are zeros: the spaces
// that encode them are trimmed by mailers and by our line reading.
func uuLine(dst, line []byte) []byte {
	n := int(line[0]-' ') & 63
	chars := line[1:]
	for i := 0; n > 0; i += 4 {
		var q [4]byte
		for j := range q {
			if i+j < len(chars) {
				q[j] = (chars[i+j] - ' ') & 63
			}
		}
		b := [3]byte{q[0]<<2 | q[1]>>4, q[1]<<4 | q[2]>>2, q[2]<<6 | q[3]}
		k := min(n, 3)
		dst = append(dst, b[:k]...)
		n -= k
	}
	return dst
}

// uuBlock is a uuencoded file written inside a plain text: its name and
// its lines, "begin" to "end".
type uuBlock struct {
	name string
	data []byte
}

// inlineUU takes the uuencoded files out of a plain text, as mail
// clients show them as attachments (Outlook 2000 and old Unix mailers
// wrote attachments so): each line "begin MODE NAME" whose next line is
// uuencode, with the lines up to "end" or the end of the text. It
// returns the text without them, and the files.
func inlineUU(text []byte) ([]byte, []uuBlock) {
	if !bytes.Contains(text, []byte("begin ")) {
		return text, nil
	}
	var rest []byte
	var blocks []uuBlock
	for len(text) > 0 {
		line, after := cutLine(text)
		name, ok := uuBegin(line)
		if next, _ := cutLine(after); !ok || !uuLineShape(next) {
			rest = append(rest, text[:len(text)-len(after)]...)
			text = after
			continue
		}
		end := after
		for len(end) > 0 {
			l, a := cutLine(end)
			end = a
			if string(bytes.TrimRight(l, " \t\r\n")) == "end" {
				break
			}
		}
		blocks = append(blocks, uuBlock{name: name, data: text[:len(text)-len(end)]})
		text = end
	}
	return rest, blocks
}

// cutLine splits off the first line of text, its line break included.
func cutLine(text []byte) (line, rest []byte) {
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		return text[:i+1], text[i+1:]
	}
	return text, nil
}

// uuBegin reads "begin MODE NAME": three or four octal digits, and the
// name, which may be missing.
func uuBegin(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimRight(line, " \t\r\n"), []byte("begin "))
	if !ok {
		return "", false
	}
	mode, name, _ := bytes.Cut(rest, []byte(" "))
	if len(mode) < 3 || len(mode) > 4 {
		return "", false
	}
	for _, c := range mode {
		if c < '0' || c > '7' {
			return "", false
		}
	}
	return string(bytes.TrimSpace(name)), true
}

// uuLineShape: a line of uuencode, its length character saying about as
// many characters as follow (trailing spaces may be lost; some encoders
// add a check character).
func uuLineShape(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 2 {
		return false
	}
	for _, c := range line {
		if c < ' ' || c > '`' {
			return false
		}
	}
	n := int(line[0]-' ') & 63
	want := (n + 2) / 3 * 4
	return n > 0 && len(line)-1 <= want+1 && len(line)-1 >= want/2
}
