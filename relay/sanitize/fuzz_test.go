package sanitize

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// FuzzMessage feeds arbitrary bytes to the walker: it must never panic,
// never fail on input alone (only I/O fails), and always write a message
// that parses and whose text decodes to valid UTF-8.
func FuzzMessage(f *testing.F) {
	for _, c := range corpus() {
		f.Add([]byte(c.msg), c.opts.Charset == CharsetISO2022J)
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n--a--"), false)
	// Encodings and formats the corpus above lacks: x-uuencode, UTF-7,
	// text/enriched, a digest.
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: =?utf-7?Q?Fr+APY-sche?=\r\nContent-Type: text/enriched; charset=utf-7\r\n\r\n<bold>x</bold><<\r\n<param>p</param>+AOQ-\r\n--d\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a.pdf\r\n#)5!$\r\n`\r\nend\r\n--d--\r\n"), false)
	f.Add([]byte("Content-Type: text/plain\r\n\r\ntext\r\nbegin 644 a.png\r\n#)5!$\r\n`\r\nend\r\nbegin 600\r\nM"), false)
	real, _ := filepath.Glob(filepath.Join("testdata", "real", "*", "*"))
	for _, p := range real {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, strings.Contains(p, "jpmobile"))
		}
	}
	for _, b := range thirdPartySeeds() {
		f.Add(b, bytes.Contains(b, []byte("iso-2022-jp")))
	}
	f.Fuzz(func(t *testing.T, data []byte, iso bool) {
		o := Options{AllowTypes: []string{"application/pdf"}, AllowExtensions: []string{"pdf"}, ReleaseID: "x", TempDir: t.TempDir()}
		if iso {
			o.Charset = CharsetISO2022J
		}
		var out bytes.Buffer
		rep, err := Message(bytes.NewReader(data), &out, o)
		if err != nil {
			t.Fatalf("error on input alone: %v", err)
		}
		if probs := wireProblems(out.Bytes()); len(probs) > 0 {
			t.Fatalf("output not RFC 5322/2045-clean: %q\n%q", probs, out.String())
		}
		m, err := message.Read(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out.String())
		}
		err = m.Walk(func(_ []int, e *message.Entity, err error) error {
			if err != nil {
				return err
			}
			if mt, _, _ := e.Header.ContentType(); mt == "text/plain" {
				b, err := io.ReadAll(e.Body)
				if err != nil {
					return err
				}
				if !utf8.Valid(b) {
					t.Errorf("text part is not valid UTF-8 after decoding")
				}
				if e.Header.Get("Content-Disposition") == "" && bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) {
					t.Errorf("text part has a CR alone")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking the output: %v", err)
		}
		if rep.Unparseable && (len(rep.Kept) > 0 || len(rep.Removed) > 0) {
			t.Fatalf("an unparseable message reported parts: %+v", rep)
		}
	})
}
