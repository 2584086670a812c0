package sanitize

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus and testdata/golden")

func TestMain(m *testing.M) {
	newBoundary = func() string { return "sekisho-test-boundary" }
	os.Exit(m.Run())
}

func testOptions(o Options) Options {
	o.ReleaseID = "20260406-0123456789"
	o.KeepUntil = time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)
	return o
}

// render shows a sanitized message for the golden files: its header as
// written, and each part decoded to UTF-8 by an independent MIME reader,
// which also proves the output is well-formed.
func render(t *testing.T, out []byte) string {
	t.Helper()
	var b strings.Builder
	i := bytes.Index(out, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no header end in output")
	}
	for _, p := range wireProblems(out) {
		t.Errorf("output not RFC 5322/2045-clean: %s", p)
	}
	b.WriteString(strings.ReplaceAll(string(out[:i+2]), "\r\n", "\n"))
	m, err := message.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	n := 0
	err = m.Walk(func(path []int, e *message.Entity, err error) error {
		if err != nil {
			return err
		}
		mt, _, _ := e.Header.ContentType()
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		n++
		body, err := io.ReadAll(e.Body)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "== part %d: %s ==\n", n, mt)
		if mt == "text/plain" {
			// Our text must decode to UTF-8; a kept text file is as it
			// came, in the charset it declared, if any.
			if e.Header.Get("Content-Disposition") == "" {
				if !utf8.Valid(body) {
					t.Errorf("part %d does not decode to valid UTF-8", n)
				}
				if nl := bytes.Count(body, []byte("\n")); nl != bytes.Count(body, []byte("\r")) || nl != bytes.Count(body, []byte("\r\n")) {
					t.Errorf("part %d has line breaks other than CRLF", n)
				}
			}
			b.WriteString(strings.ReplaceAll(strings.ToValidUTF8(string(body), "\uFFFD"), "\r\n", "\n"))
		} else {
			fmt.Fprintf(&b, "(%d bytes)\n", len(body))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the output: %v", err)
	}
	return b.String()
}

// goldenText is what a golden file holds: the report, and the output
// rendered (which checks it is RFC 5322/2045-clean).
func goldenText(t *testing.T, rep *Report, out []byte) string {
	t.Helper()
	js, _ := json.MarshalIndent(rep, "", "  ")
	return "== report ==\n" + string(js) + "\n== message ==\n" + render(t, out)
}

// checkGolden compares the report and the rendered output with a golden
// file, or writes it with -update.
func checkGolden(t *testing.T, golden string, rep *Report, out []byte) {
	t.Helper()
	checkText(t, golden, goldenText(t, rep, out))
}

// checkText compares a golden rendering with its file, or writes it with
// -update.
func checkText(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(golden), 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

func TestCorpusGolden(t *testing.T) {
	for _, c := range corpus() {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join("testdata", "corpus", c.name+".eml")
			golden := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(in), 0o755)
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(in, []byte(c.msg), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			rep, err := Message(strings.NewReader(c.msg), &out, testOptions(c.opts))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, golden, rep, out.Bytes())
			if file, err := os.ReadFile(in); err != nil || string(file) != c.msg {
				t.Errorf("%s is not the message the test builds (go test -update)", in)
			}
		})
	}
}

// TestCorpusProperties checks what must hold whatever the golden files
// say: no HTML, no clickable URL, no mojibake, the right things removed.
func TestCorpusProperties(t *testing.T) {
	want := map[string]struct {
		contains []string
		removed  int
		kept     int
		broken   bool
	}{
		"outlook_sjis_html_pdf_xlsm":       {contains: []string{"市役所ニュースレター　第12号", "hxxps://www[.]example[.]com/news?id=12", "案内.pdf", "集計.xlsm", "macroEnabled", "20260406-0123456789", "2026-04-20"}, removed: 3},
		"outlook_prefer_html":              {contains: []string{"・説明会のご案内", "  1. 4月30日", "項目   | 日時          | 場所", "説明会 | 4月10日 14:00 | 本庁舎3階", "こちら [hxxps://www[.]example[.]com/news?id=12]", "①②", "[画像: ロゴ]"}, removed: 3},
		"outlook_allow_pdf_iso2022jp":      {contains: []string{"次の添付ファイルは許可された形式のため残しました", "案内.pdf", "①②"}, removed: 1, kept: 2},
		"outlook_links_remove":             {contains: []string{"こちらをご覧ください"}, removed: 3},
		"gmail_utf8_reply":                 {contains: []string{"承知しました。", "> 会議は10日です。", "hxxp://files[.]example[.]net/a.zip"}},
		"thunderbird_iso2022jp_docx":       {contains: []string{"議事録を送付します。", "議事録.docx"}, kept: 0, removed: 1},
		"carrier_sjis_decomail":            {contains: []string{"写真を送ります", "よろしく～", "photo.png", "image/jpeg, 申告 / declared image/png"}, removed: 2},
		"carrier_sjis_pictogram":           {contains: []string{"今日は晴れです\ue63e。ｶﾀｶﾅも半角です。"}},
		"carrier_sjis_pictogram_iso2022jp": {contains: []string{"今日は晴れです〓。カタカナも半角です。", "characters replaced=1"}},
		"eucjp_unlabelled":                 {contains: []string{"古いシステムからのお知らせです。", "東京都千代田区"}},
		"utf8_html_only":                   {contains: []string{"Price list & more", "A              | ¥100", "www[.]example[.]com"}},
		"nested_rfc822":                    {contains: []string{"転送します。", "Subject: 元のメール", "元のメールの本文です。", "invoice.pdf.exe", "application/x-msdownload"}, removed: 1},
		"smime_signed":                     {contains: []string{"署名付きメールです。", "smime.p7s"}, removed: 1},
		"tnef_winmail":                     {contains: []string{"See attached.", "winmail.dat", "application/ms-tnef"}, removed: 1},
		"disguised_and_ppap":               {contains: []string{"content is application/x-msdownload, not what .pdf should hold", "password-protected archive"}, removed: 2, kept: 1},
		"broken_unterminated":              {contains: []string{"truncated here"}},
		"broken_no_boundary":               {contains: []string{"\ntext\n"}},
		"long_lines_utf8":                  {contains: []string{strings.Repeat("あいうえお", 400), "①㈱髙😀"}},
		"long_lines_iso2022jp":             {contains: []string{"①㈱髙〓", "～ ∥ －"}},
	}
	for _, c := range corpus() {
		t.Run(c.name, func(t *testing.T) {
			w, ok := want[c.name]
			if !ok {
				t.Fatalf("no expectations for %s", c.name)
			}
			var out bytes.Buffer
			rep, err := Message(strings.NewReader(c.msg), &out, testOptions(c.opts))
			if err != nil {
				t.Fatal(err)
			}
			for line := range strings.SplitSeq(out.String(), "\r\n") {
				if len(line) > maxLine {
					t.Errorf("a line of %d octets", len(line))
				}
			}
			text := render(t, out.Bytes())
			for _, s := range w.contains {
				if !strings.Contains(text, s) {
					t.Errorf("output lacks %q:\n%s", s, text)
				}
			}
			for _, bad := range []string{"<html", "<td", "<script", "alert(1)", "https://", "http://", "td{color", "\uFFFD"} {
				if strings.Contains(text, bad) {
					t.Errorf("output contains %q", bad)
				}
			}
			if len(rep.Removed) != w.removed || len(rep.Kept) != w.kept || rep.Unparseable != w.broken {
				t.Errorf("removed %d kept %d unparseable %v, want %d %d %v", len(rep.Removed), len(rep.Kept), rep.Unparseable, w.removed, w.kept, w.broken)
			}
			if !strings.Contains(text, HeaderSanitized+": ") {
				t.Errorf("no %s field", HeaderSanitized)
			}
		})
	}
}

func TestForgedSanitizedHeaderDropped(t *testing.T) {
	msg := "From: a@example.com\r\nX-Sekisho-Sanitized: nothing to see\r\nSubject: x\r\n\r\nhello\r\n"
	var out bytes.Buffer
	if _, err := Message(strings.NewReader(msg), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "nothing to see") || strings.Count(out.String(), HeaderSanitized) != 1 {
		t.Errorf("the sender's %s survived:\n%s", HeaderSanitized, out.String())
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		n := copy(p, strings.Repeat("x", min(len(p), f.n)))
		f.n -= n
		return n, nil
	}
	return 0, errors.New("EIO")
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("ENOSPC") }

// A read or write failure is an error, never a "broken message" verdict:
// the caller must retry, not quarantine a half-read original.
func TestIOErrors(t *testing.T) {
	if _, err := Message(io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"), &failingReader{n: 100}), io.Discard, Options{}); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Errorf("read failure: %v, want an EIO error", err)
	}
	if _, err := Message(strings.NewReader("Subject: x\r\n\r\nhello\r\n"), failingWriter{}, Options{}); err == nil || !strings.Contains(err.Error(), "ENOSPC") {
		t.Errorf("write failure: %v, want an ENOSPC error", err)
	}
}

// An allowed attachment that cannot be held (no space, no folder) is an
// error, not a verdict on the message.
func TestHoldFailure(t *testing.T) {
	var msg string
	for _, c := range corpus() {
		if c.name == "disguised_and_ppap" {
			msg = c.msg
		}
	}
	o := Options{AllowTypes: []string{"application/pdf"}, AllowExtensions: []string{"pdf"}, TempDir: filepath.Join(t.TempDir(), "missing")}
	if _, err := Message(strings.NewReader(msg), io.Discard, o); err == nil || !strings.Contains(err.Error(), "holding an attachment") {
		t.Errorf("Message = %v, want a holding error", err)
	}
}

func TestDefang(t *testing.T) {
	wk := &walker{o: Options{Links: LinksDefang}}
	for in, want := range map[string]string{
		"see https://evil.example.com/a.b?x=1 now": "see hxxps://evil[.]example[.]com/a.b?x=1 now",
		"FTP://files.example.org/x":                "fxp://files[.]example[.]org/x",
		"go to www.example.jp。":                    "go to www[.]example[.]jp。",
		"詳細はhttp://example.jp/です":                  "詳細はhxxp://example[.]jp/です",
	} {
		if got := wk.defang(in); got != want {
			t.Errorf("defang(%q) = %q, want %q", in, got, want)
		}
	}
}

// Raw 8-bit header values (against RFC 5322, but common) are read in
// the encoding their bytes suggest.
func TestDecodeHeaderRaw(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"J\xfcrgen <j@example.de>", "Jürgen <j@example.de>"},
		{"\x8c\xa9\x90\xcf\x8f\x91", "見積書"},
		{"Re: =?ISO-2022-JP?B?GyRCOCtAUT1xGyhC?=", "Re: 見積書"},
	} {
		if got := decodeHeader(c.raw); got != c.want {
			t.Errorf("decodeHeader(%q) = %q, want %q", c.raw, got, c.want)
		}
	}
}

// Mislabelled text still reads: the label is a hint, the bytes decide
// when the label produces replacement characters.
func TestDecodeTextMislabelled(t *testing.T) {
	want := "日本語のテキストです。"
	for _, c := range []struct{ raw, label string }{
		{sjis(want), "iso-2022-jp"},
		{sjis(want), "utf-8"},
		{eucjp(want), "shift_jis"},
		{jis(want), "us-ascii"},
		{want, "x-unknown-charset"},
		{sjis(want), ""},
	} {
		if got := decodeText([]byte(c.raw), c.label); got != want {
			t.Errorf("decodeText(%q labelled %q) = %q", c.raw, c.label, got)
		}
	}
}

// A body read in small pieces across many refills of the read buffer
// comes out whole, in every transfer encoding: the line reader hands out
// slices of a buffer the next read reuses.
func TestLargeBodyIntact(t *testing.T) {
	var want strings.Builder
	for i := 0; want.Len() < 300<<10; i++ {
		fmt.Fprintf(&want, "%d行目：市役所からのお知らせです。説明会は本庁舎3階で開催します。%s\n", i, strings.Repeat("x", i%200))
	}
	body := want.String()
	for _, c := range []struct{ cte, data string }{
		{"8bit", body}, {"quoted-printable", qp(body)}, {"base64", b64(body)},
	} {
		for name, wrap := range map[string]func(io.Reader) io.Reader{"one byte": iotest.OneByteReader, "half": iotest.HalfReader, "whole": func(r io.Reader) io.Reader { return r }} {
			msg := crlfs("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: " + c.cte + "\n\n" + c.data + "\n--b--\n")
			var out bytes.Buffer
			if _, err := Message(wrap(strings.NewReader(msg)), &out, Options{}); err != nil {
				t.Fatal(err)
			}
			m, err := message.Read(&out)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(m.Body)
			if g := strings.ReplaceAll(string(got), "\r\n", "\n"); g != body {
				i := 0
				for i < len(g) && i < len(body) && g[i] == body[i] {
					i++
				}
				t.Errorf("%s, %s: the text differs at byte %d: %q", c.cte, name, i, g[i:min(len(g), i+40)])
			}
		}
	}
}

// Memory is bounded by the walker's limits, not by how many parts a
// message has: past maxParts, parts are counted and skipped without
// reading their headers or keeping anything per part. Allocation is
// counted, not timed; before the limit held in the multipart loop, 200,000
// small parts allocated about 190 MB.
func TestManyPartsMemory(t *testing.T) {
	const n = 200000
	msg := []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		strings.Repeat("--b\r\nContent-Type: text/plain\r\n\r\nxx\r\n", n) + "--b--\r\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := Message(bytes.NewReader(msg), io.Discard, Options{TempDir: t.TempDir()})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unread != n-maxParts+1 {
		t.Errorf("%d parts not read, want %d", rep.Unread, n-maxParts+1)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("%d MB allocated for %d parts", alloc>>20, n)
	}
}

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"a":              "a",
		"a\nb\n":         "a\r\nb\r\n",
		"a\r\nb":         "a\r\nb",
		"a\rb\r":         "a\r\nb\r\n",
		"a\r\r\nb\n\n\r": "a\r\n\r\nb\r\n\r\n\r\n",
	} {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}

// More header fields dropped than the report lists: the list ends with
// how many more, the summary counts them all.
func TestHeaderDroppedCountedOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nSubject: many\r\n")
	for range 26 {
		b.WriteString("Cc: \xff\xfe <\xff>\r\n")
	}
	b.WriteString("\r\nhello\r\n")
	rep, err := Message(strings.NewReader(b.String()), io.Discard, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.HeaderDropped); n != 21 || rep.HeaderDropped[20] != "and 6 more" {
		t.Errorf("%d notes, the last %q; want 20 and \"and 6 more\"", n, rep.HeaderDropped[n-1])
	}
	if s := rep.Summary(""); !strings.Contains(s, "header fields dropped=26") {
		t.Errorf("summary %q", s)
	}
}

// PlanOnly leaves the kept files out of what is written: the text and
// its notice alone (the console's index reads nothing else).
func TestPlanOnlyLeavesTheFilesOut(t *testing.T) {
	msg := "Subject: f\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain\r\n\r\nsee the file\r\n--b\r\nContent-Type: application/pdf; name=a.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("JVBERi0xLjQKJcfs\r\n", 1000) + "--b--\r\n"
	o := Options{AllowTypes: []string{"application/pdf"}, AllowExtensions: []string{"pdf"}, TempDir: t.TempDir()}
	var full, plan bytes.Buffer
	if _, err := Message(strings.NewReader(msg), &full, o); err != nil {
		t.Fatal(err)
	}
	o.PlanOnly = true
	rep, err := Message(strings.NewReader(msg), &plan, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Kept) != 1 || !strings.Contains(full.String(), "a.pdf") || strings.Contains(plan.String(), "JVBERi0") ||
		plan.Len() > full.Len()/4 {
		t.Errorf("kept %+v; the plan is %d bytes against %d:\n%s", rep.Kept, plan.Len(), full.Len(), plan.String())
	}
	text, _, err := Text(strings.NewReader(msg), o, 1<<10)
	if err != nil || !strings.Contains(text, "see the file") {
		t.Errorf("Text: %q %v", text, err)
	}
}
