package sanitize

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The real corpus: third-party test mail from public collections, each
// file's source and licence in testdata/real/SOURCES.md. Each message is
// sanitized with the municipal profile; the output goes to a golden file
// (go test -update), and no message may be withheld: every one has text
// or parts a mail client shows.

func municipalOptions() Options {
	return Options{Prefer: "html", SubjectTag: "[無害化]",
		AllowTypes:      []string{"application/pdf", "image/png", "image/jpeg", TypeXLSX, TypeDOCX, "text/plain"},
		AllowExtensions: []string{"pdf", "png", "jpg", "jpeg", "xlsx", "docx", "txt", "csv"}}
}

func TestRealCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "real", "*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	withheld := 0
	for _, f := range files {
		name := filepath.ToSlash(strings.TrimPrefix(f, filepath.Join("testdata", "real")+string(filepath.Separator)))
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o := municipalOptions()
			o.TempDir = t.TempDir()
			var out bytes.Buffer
			rep, err := Message(bytes.NewReader(msg), &out, testOptions(o))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Unparseable {
				withheld++
				t.Errorf("withheld: %s", rep.ParseError)
			}
			for line := range strings.SplitSeq(out.String(), "\r\n") {
				if len(line) > maxLine {
					t.Errorf("a line of %d octets", len(line))
				}
			}
			checkGolden(t, filepath.Join("testdata", "real-golden", strings.ReplaceAll(name, "/", "__")+".txt"), rep, out.Bytes())
		})
	}
	t.Logf("%d messages, %d withheld", len(files), withheld)
}
