package export

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"

	"github.com/sekisho/sekisho/accounts"
)

var update = flag.Bool("update", false, "rewrite the golden files and the Shift_JIS fixture")

// sjisFixture makes testdata/sjis_crlf.tsv from its readable UTF-8 source:
// CR LF line ends, then CP932 bytes.
func sjisFixture(t testing.TB) []byte {
	src, err := os.ReadFile("testdata/sjis_crlf.src.tsv")
	if err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(src, []byte("\n"), []byte("\r\n"))
	out, err := japanese.ShiftJIS.NewEncoder().Bytes(crlf)
	if err != nil {
		t.Fatalf("encoding the fixture: %v", err)
	}
	return out
}

// TestShiftJISFixture keeps the committed binary fixture equal to what its
// source encodes to, so the golden test below really reads CP932 + CR LF.
func TestShiftJISFixture(t *testing.T) {
	want := sjisFixture(t)
	if *update {
		if err := os.WriteFile("testdata/sjis_crlf.tsv", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("testdata/sjis_crlf.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/sjis_crlf.tsv differs from the encoded source; run go test -update")
	}
	if !bytes.Contains(got, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(got, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("fixture is not CR LF throughout")
	}
}

var goldenCases = []struct {
	file string
	opt  Options
}{
	{"sjis_crlf.tsv", Options{}},
	{"bom.csv", Options{}},
	{"list.txt", Options{}},
	{"mixed.tsv", Options{Domain: "example.jp"}},
	{"bad.tsv", Options{}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Read(f, tc.file, tc.opt)
			got := dump(res, err)
			golden := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// dump is the readable form of a Read outcome used by the golden files.
func dump(res Result, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format: %s\nencoding: %s bom=%v\nheader: %d\nlines: %d\ncolumns:", res.Format, res.Encoding, res.BOM, res.Header, res.Lines)
	for _, c := range res.Columns {
		role := c.Role
		if role == "" {
			role = "(ignored)"
		}
		fmt.Fprintf(&b, " %q=%s", c.Name, role)
	}
	b.WriteString("\nrecords:\n")
	for _, r := range res.Records {
		fmt.Fprintf(&b, "  %s\n", recordString(r))
	}
	b.WriteString("errors:\n")
	for _, e := range res.Errors {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	switch {
	case errors.Is(err, ErrInvalidLines):
		fmt.Fprintf(&b, "result: %v\n", err)
	case err != nil:
		fmt.Fprintf(&b, "fatal: %v\n", err)
	}
	return b.String()
}

func recordString(r accounts.Record) string {
	if r.IsAlias() {
		return fmt.Sprintf("%d alias %s -> %s", r.Line, r.Alias, r.Target)
	}
	s := fmt.Sprintf("%d account %s@%s name=%q flags=%v", r.Line, r.Local, r.Domain, r.Name, r.Flags)
	if r.Secret != "" {
		s += fmt.Sprintf(" secret=%q", r.Secret)
	}
	return s
}
