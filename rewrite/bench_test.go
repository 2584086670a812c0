package rewrite

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchRewriter builds a rule list around a 2,000-row table: the test
// table's rows plus generated municipalities (about the size of all of
// Japan's).
func benchRewriter(b *testing.B) *RuleSet {
	b.Helper()
	rows, err := os.ReadFile(testTable)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Write(rows)
	for i := range 2000 - bytes.Count(rows, []byte("\t")) {
		fmt.Fprintf(&buf, "city.c%04d.pref%02d.jp\tcity.c%04d.lg.jp\n", i, i%47, i)
	}
	path := filepath.Join(b.TempDir(), "big.tsv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	w := mustNew(b, Config{Rules: []RuleConfig{
		{Name: "keep-soumu", Address: "soumu@pref.aichi.jp", Keep: true, Source: inner},
		{Name: "regional-to-lg", Table: path, Source: inner},
	}})
	return w.Default()
}

// BenchmarkRewriteEnvelope: one sender and nine recipients (seven in the
// table, two not) per call; addr/s counts addresses looked at.
func BenchmarkRewriteEnvelope(b *testing.B) {
	rs := benchRewriter(b)
	in := Input{From: "user@city.c0042.pref42.jp", Source: SourceInner, To: []string{
		"a@city.c0001.pref01.jp", "b@city.c1999.pref25.jp", "c@pref.aichi.jp", "d@city.nagoya.jp", "e@gmail.com",
		"f@city.c0500.pref30.jp", "g@City.C0777.Pref25.JP", "h@example.com", "i@city.toyokawa.aichi.jp",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rs.Rewrite(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "addr/s")
}

// BenchmarkRewriteOneAddress is the smallest call: one recipient.
func BenchmarkRewriteOneAddress(b *testing.B) {
	rs := benchRewriter(b)
	in := Input{To: []string{"a@city.c1234.pref12.jp"}, Source: SourceInner}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rs.Rewrite(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addr/s")
}

// BenchmarkRewriteHeader200 rewrites the corpus message with 200 folded
// To/Cc addresses (160 of them in the table) plus its envelope.
func BenchmarkRewriteHeader200(b *testing.B) {
	rs := benchRewriter(b)
	hdr := readCorpusHeader(b, "folded-200.eml")
	in := corpusEnvelope
	in.Header = hdr
	b.SetBytes(int64(len(hdr)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rs.Rewrite(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*203)/b.Elapsed().Seconds(), "addr/s")
}

// BenchmarkBodySize reads the header off a message and rewrites it: the
// body is left in the reader for streaming, so its size does not count.
func BenchmarkBodySize(b *testing.B) {
	rs := benchRewriter(b)
	hdr := readCorpusHeader(b, "iso2022jp.eml")
	for _, size := range []int{1 << 10, 10 << 20} {
		msg := append(append([]byte(nil), hdr...), bytes.Repeat([]byte("body line in ISO-2022-JP\r\n"), size/26)...)
		b.Run(fmt.Sprintf("body=%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				br := bufio.NewReaderSize(bytes.NewReader(msg), 4096)
				h, err := ReadHeader(br, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				in := corpusEnvelope
				in.Header = h
				if _, err := rs.Rewrite(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func readCorpusHeader(b *testing.B, name string) []byte {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata/corpus", name))
	if err != nil {
		b.Fatal(err)
	}
	h, err := ReadHeader(bufio.NewReader(bytes.NewReader(raw)), 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkCopy is one route's copy as the municipal example makes it:
// the receive-time rule (envelope recipients only, nothing to do here),
// the LGWAN set on the sender and the header addresses, and the internet
// route's Received policy on a message with the inner server's trace.
func BenchmarkCopy(b *testing.B) {
	w := mustNew(b, copyConfig())
	inner := func(a netip.Addr) bool { return a.IsPrivate() }
	header := []byte(strings.TrimSuffix(tracedHeader, "\r\n") + copyHeader)
	for _, bc := range []struct {
		name string
		in   CopyInput
	}{
		{"lgwan", CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"kikaku@city.nagoya.lg.jp"}, Set: "to-lgwan", Source: SourceInner,
			Header: header}},
		{"internet-remove-inner", CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"friend@example.com"}, Set: "to-internet",
			Source: SourceInner, Header: header,
			Received: ReceivedPolicy{Remove: true, Inner: inner, Self: "gw.city.toyokawa.lg.jp"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Copy(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadHeader reads a 20-field header block in front of a body,
// as the session and the runner do for every message: one copy of the
// block, no growing.
func BenchmarkReadHeader(b *testing.B) {
	var msg bytes.Buffer
	for i := range 20 {
		fmt.Fprintf(&msg, "X-Field-%02d: value of some ordinary length, about seventy bytes\r\n", i)
	}
	msg.WriteString("\r\n")
	msg.WriteString(strings.Repeat("body line of seventy bytes or so, as in an ordinary message\r\n", 100))
	in := msg.Bytes()
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := ReadHeader(br, 64<<10); err != nil {
			b.Fatal(err)
		}
	}
}
