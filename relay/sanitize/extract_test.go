package sanitize

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// ExtractPart takes one attachment out of an original: each uuencoded
// file of a text is a part of its own, and an original that cannot be
// read to the end gives an error, never a cut file.
func TestExtractPart(t *testing.T) {
	msg := "Subject: two\r\n\r\nhello\r\nbegin 644 a.txt\r\n$86%A80``\r\n`\r\nend\r\n" +
		"and\r\nbegin 644 b.txt\r\n$8F)B8@``\r\n`\r\nend\r\n"
	for path, want := range map[string]struct{ name, data string }{"1.uu1": {"a.txt", "aaaa"}, "1.uu2": {"b.txt", "bbbb"}} {
		var out bytes.Buffer
		a, err := ExtractPart(strings.NewReader(msg), path, &out)
		if err != nil || a.Name != want.name || out.String() != want.data {
			t.Errorf("part %s: %q %q (%v), want %q %q", path, a.Name, out.String(), err, want.name, want.data)
		}
	}
	if _, err := ExtractPart(strings.NewReader(msg), "1", io.Discard); err == nil {
		t.Error("the text part itself was extracted as a file")
	}

	big := "Subject: cut\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain\r\n\r\nsee the file\r\n--b\r\nContent-Type: application/zip; name=a.zip\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("UEsDBAoAAAAAAA==\r\n", 20000) + "--b--\r\n"
	r := io.MultiReader(strings.NewReader(big[:len(big)/2]), &failingReader{})
	if a, err := ExtractPart(r, "2", io.Discard); err == nil {
		t.Errorf("a read error halfway gave %+v and no error", a)
	}
}
