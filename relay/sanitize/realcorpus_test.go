package sanitize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The real corpus: third-party test mail from public collections, each
// file's source and licence in testdata/real/SOURCES.md. Each message is
// sanitized with the municipal profile; the output goes to a golden file
// (go test -update), and no message may be withheld: every one has text
// or parts a mail client shows. The larger third-party corpus, whose
// files are not in the repository, is thirdparty_test.go's.

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
	for _, f := range files {
		name := filepath.ToSlash(strings.TrimPrefix(f, filepath.Join("testdata", "real")+string(filepath.Separator)))
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rep, golden := sanitizeCorpusMessage(t, msg)
			if rep.Unparseable {
				t.Errorf("withheld: %s", rep.ParseError)
			}
			checkText(t, filepath.Join("testdata", "real-golden", strings.ReplaceAll(name, "/", "__")+".txt"), golden)
		})
	}
}
