package rewrite

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// corpusEnvelope is the envelope every corpus message is tested with: the
// inner server sending from Toyokawa to the prefecture.
var corpusEnvelope = Input{From: "user@city.toyokawa.aichi.jp", To: []string{"kikaku@pref.aichi.jp"}, Source: SourceInner}

// TestCorpus rewrites every message of testdata/corpus and compares the
// rewritten header, envelope and trace with the golden file beside it. It
// also checks the invariants on each.
func TestCorpus(t *testing.T) {
	rs := mustNew(t, testConfig()).Default()
	files, err := filepath.Glob("testdata/corpus/*.eml")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus: %v files, %v", len(files), err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReaderSize(bytes.NewReader(raw), 16)
			hdr, err := ReadHeader(br, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(br)
			if !bytes.Equal(append(append([]byte(nil), hdr...), body...), raw) {
				t.Fatal("header and body do not add up to the message")
			}
			in := corpusEnvelope
			in.Header = hdr
			out, err := rs.Rewrite(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(path, ".eml")+".golden", renderOutput(out))
			checkInvariants(t, rs, in, out)
		})
	}
}

func renderOutput(out Output) []byte {
	var b bytes.Buffer
	b.Write(out.Header)
	fmt.Fprintf(&b, "==== envelope\nfrom %s\nto %s\n==== trace\n", out.From, strings.Join(out.To, ", "))
	for _, st := range out.Trace {
		b.WriteString(traceLine(st))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\n%s", path,
			DiffHeader(want, got, "want", "got"))
	}
}

// checkInvariants asserts what must hold for every rewrite:
//   - the header has the same fields in the same order, and a field no rule
//     changed is byte-identical, as is everything after the fields;
//   - in a changed field only addr-specs differ (and line breaks added by
//     refolding): names, comments, groups and separators are identical;
//   - every field that tokenized before tokenizes after, with as many
//     addresses;
//   - rewriting the result again changes nothing (idempotence).
func checkInvariants(t *testing.T, rs *RuleSet, in Input, out Output) {
	t.Helper()
	a, b := string(in.Header), string(out.Header)
	fa, fb := splitFields(a, nil), splitFields(b, nil)
	if len(fa) != len(fb) {
		t.Fatalf("%d fields became %d", len(fa), len(fb))
	}
	changed := map[int]bool{}
	for _, st := range out.Trace {
		if st.Field >= 0 && st.Rule != "" && st.Before != st.After {
			changed[st.Field] = true
		}
	}
	for i := range fa {
		fieldA, fieldB := a[fa[i].start:fa[i].end], b[fb[i].start:fb[i].end]
		if !changed[i] {
			if fieldA != fieldB {
				t.Errorf("field %d changed though no rule fired:\n%q\n%q", i, fieldA, fieldB)
			}
			continue
		}
		if fa[i].name(a) != fb[i].name(b) {
			t.Errorf("field %d renamed %q -> %q", i, fa[i].name(a), fb[i].name(b))
		}
		ma, errA := parseAddressList(a, fa[i].valStart, fa[i].valEnd, nil)
		mb, errB := parseAddressList(b, fb[i].valStart, fb[i].valEnd, nil)
		if errA != nil || errB != nil || len(ma) != len(mb) {
			t.Errorf("field %d: %d addresses (%v) became %d (%v)", i, len(ma), errA, len(mb), errB)
			continue
		}
		if sa, sb := unfold(outsideSpecs(a, fa[i], ma)), unfold(outsideSpecs(b, fb[i], mb)); sa != sb {
			t.Errorf("field %d: bytes outside the addresses changed:\n%q\n%q", i, sa, sb)
		}
	}
	var endA, endB int
	if len(fa) > 0 {
		endA, endB = fa[len(fa)-1].end, fb[len(fb)-1].end
	}
	if a[endA:] != b[endB:] {
		t.Errorf("bytes after the fields changed: %q -> %q", a[endA:], b[endB:])
	}
	for i := range fa {
		if fieldClass(fa[i].name(a)) == 0 {
			continue
		}
		ma, errA := parseAddressList(a, fa[i].valStart, fa[i].valEnd, nil)
		mb, errB := parseAddressList(b, fb[i].valStart, fb[i].valEnd, nil)
		if errA == nil && (errB != nil || len(ma) != len(mb)) {
			t.Errorf("field %d no longer tokenizes the same: %v", i, errB)
		}
	}
	again, err := rs.Rewrite(Input{From: out.From, To: out.To, Header: out.Header, Source: in.Source})
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if again.Changed || !bytes.Equal(again.Header, out.Header) || again.From != out.From || strings.Join(again.To, "\n") != strings.Join(out.To, "\n") {
		t.Errorf("a second pass changed the result:\n%s", renderOutput(again))
	}
}

// outsideSpecs returns the field with every addr-spec cut out.
func outsideSpecs(s string, f field, mbs []mailbox) string {
	var b strings.Builder
	pos := f.start
	for _, mb := range mbs {
		if mb.problem != "" || mb.noDomain {
			continue
		}
		b.WriteString(s[pos:mb.start])
		b.WriteString("\x00")
		pos = mb.end
	}
	b.WriteString(s[pos:f.end])
	return b.String()
}

// unfold removes line breaks that precede white space (folding).
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n ", " ")
	s = strings.ReplaceAll(s, "\r\n\t", "\t")
	s = strings.ReplaceAll(s, "\n ", " ")
	return strings.ReplaceAll(s, "\n\t", "\t")
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name, in, header string
		max              int
		err              string
	}{
		{"crlf", "A: b\r\nC: d\r\n\r\nbody\r\n", "A: b\r\nC: d\r\n\r\n", 100, ""},
		{"lf", "A: b\n folded\n\nbody", "A: b\n folded\n\n", 100, ""},
		{"header only", "A: b\r\nC: d", "A: b\r\nC: d", 100, ""},
		{"empty header", "\r\nbody", "\r\n", 100, ""},
		{"long line across buffer", "A: " + strings.Repeat("x", 100) + "\r\n\r\nbody", "A: " + strings.Repeat("x", 100) + "\r\n\r\n", 200, ""},
		{"white space line is not the end", "A: b\r\n \r\nC: d\r\n\r\nbody", "A: b\r\n \r\nC: d\r\n\r\n", 100, ""},
		{"too large", "A: " + strings.Repeat("x", 100) + "\r\n\r\n", "", 50, "header block too large: more than 50 bytes before the empty line"},
		{"exactly max", "A: b\r\n\r\nbody", "A: b\r\n\r\n", 8, ""},
		{"one past max", "A: b\r\n\r\nbody", "", 7, "header block too large: more than 7 bytes before the empty line"},
		{"lf empty header", "\nbody", "\n", 100, ""},
		{"bare cr is no end", "A: b\r\r\nC: d\r\n\r\n", "A: b\r\r\nC: d\r\n\r\n", 100, ""},
		{"empty message", "", "", 100, ""},
	}
	// 16 bytes: the block spans many fills (the line loop); 4096: it is
	// in the first fill (one copy).
	for _, size := range []int{16, 4096} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				br := bufio.NewReaderSize(bytes.NewReader([]byte(tt.in)), size)
				h, err := ReadHeader(br, tt.max)
				if tt.err != "" {
					if err == nil || err.Error() != tt.err {
						t.Fatalf("error %v, want %q", err, tt.err)
					}
					return
				}
				if err != nil || string(h) != tt.header {
					t.Fatalf("got %q, %v; want %q", h, err, tt.header)
				}
				rest, _ := io.ReadAll(br)
				if string(rest) != tt.in[len(tt.header):] {
					t.Errorf("the body starts at %q", rest)
				}
			})
		}
	}
}

// FuzzReadHeader holds the one-copy path (the block within the first
// fill) to the line-by-line one (a buffer smaller than any block): the
// same block, the same error, the same rest.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("A: b\r\nC: d\r\n\r\nbody"), 100)
	f.Add([]byte("A: b\n folded\n\nbody"), 10)
	f.Add([]byte("\r\n"), 2)
	f.Add([]byte("A: b\r\r\n\n"), 7)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 || max > 1<<16 || len(in) > 1<<16 {
			return
		}
		read := func(size int) (string, string, string) {
			br := bufio.NewReaderSize(bytes.NewReader(in), size)
			h, err := ReadHeader(br, max)
			rest, _ := io.ReadAll(br)
			if err != nil {
				return "", err.Error(), ""
			}
			return string(h), "", string(rest)
		}
		h1, e1, r1 := read(16)
		h2, e2, r2 := read(len(in) + 16)
		if h1 != h2 || e1 != e2 || r1 != r2 {
			t.Fatalf("line by line: %q %q %q; one copy: %q %q %q", h1, e1, r1, h2, e2, r2)
		}
		if e1 == "" && h1+r1 != string(in) {
			t.Fatalf("block %q and rest %q are not the input", h1, r1)
		}
	})
}

func TestScanHeader(t *testing.T) {
	hdr := "From: \"Taro\" <\"t y\"@pref.aichi.jp>\r\nSubject: x@y.jp\r\nTo: a@b.jp, postmaster, c@@d\r\nCc: \"unclosed\r\n\r\n"
	var got []string
	for _, a := range ScanHeader([]byte(hdr)) {
		got = append(got, fmt.Sprintf("%s/%d/%d %s %q %q %q", a.Field, a.FieldIndex, a.Index, a.Class, a.AddrSpec, a.Address, a.Problem))
	}
	want := []string{
		`From/0/0 header_sender "\"t y\"@pref.aichi.jp" "t y@pref.aichi.jp" ""`,
		`To/2/0 header_recipient "a@b.jp" "a@b.jp" ""`,
		`To/2/1 header_recipient "postmaster" "" "no domain"`,
		`To/2/2 header_recipient "c@@d" "" "more than one '@'"`,
		`Cc/3/-1 header_recipient "" "" "field cannot be read: unclosed quoted string"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDiffHeader(t *testing.T) {
	a := "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\n\r\n"
	b := strings.Replace(strings.Replace(a, "B: 2", "B: two", 1), "J: 10", "J: ten\r\n more", 1)
	want := "--- a\n+++ b\n@@ -1,5 +1,5 @@\n A: 1\n-B: 2\n+B: two\n C: 3\n D: 4\n E: 5\n" +
		"@@ -7,5 +7,6 @@\n G: 7\n H: 8\n I: 9\n-J: 10\n+J: ten\n+ more\n \n"
	if got := DiffHeader([]byte(a), []byte(b), "a", "b"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := DiffHeader([]byte(a), []byte(a), "a", "b"); got != "" {
		t.Errorf("equal headers gave %q", got)
	}
}
