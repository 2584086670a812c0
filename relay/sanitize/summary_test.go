package sanitize

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name, msg       string
		subject, text   string
		files           int
		names           string
		html, truncated bool
	}{
		{"plain", "Subject: =?UTF-8?B?5LqI566X?=\r\n\r\nこんにちは\r\n", "予算", "こんにちは", 0, "", false, false},
		{"a file and an inline image",
			"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>see <img src=\"cid:i1\"></p>\r\n" +
				"--r\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n" +
				"--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename*=UTF-8''%E8%B3%87%E6%96%99.pdf\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
			"x", "see", 1, "資料.pdf", true, false},
		{"a uuencoded file inside a text", "Subject: u\r\n\r\nhello\r\nbegin 644 a.txt\r\n#86)C\r\n`\r\nend\r\n", "u", "hello", 1, "a.txt", false, false},
	} {
		s, err := Summarize(strings.NewReader(c.msg), 1<<10)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var names []string
		for _, a := range s.Attachments {
			if !a.Inline {
				names = append(names, a.Name)
			}
			if a.Reason != "" || a.Code != "" {
				t.Errorf("%s: a decision in the summary: %+v", c.name, a)
			}
		}
		if s.Subject != c.subject || !strings.Contains(s.Text, c.text) || s.Files() != c.files || strings.Join(names, ",") != c.names ||
			s.HTML != c.html || s.Truncated != c.truncated {
			t.Errorf("%s: %+v", c.name, s)
		}
		// The outbound rules count files without the text: the files are
		// found all the same.
		if one, err := Summarize(strings.NewReader(c.msg), 0); err != nil || one.Files() != c.files || one.Text != "" {
			t.Errorf("%s: with maxText 0, %d files (%v), text %q; want %d files", c.name, one.Files(), err, one.Text, c.files)
		}
	}
	long, _ := Summarize(strings.NewReader("Subject: l\r\n\r\n"+strings.Repeat("あ", 2000)+"\r\n"), 100)
	if !long.Truncated || len(long.Text) > 100 || len(long.Text) < 97 || !utf8.ValidString(long.Text) {
		t.Errorf("text not cut at the limit: %d bytes, truncated %v", len(long.Text), long.Truncated)
	}
	if _, err := Summarize(&failingReader{}, 100); err == nil {
		t.Error("a read error is no error")
	}
}

// BenchmarkSummarize100KiB is what the outbound rules' attachment
// condition costs a message (the newsletter of BenchmarkMessage100KiB):
// compare with BenchmarkMessage100KiB, the whole sanitize stage.
func BenchmarkSummarize100KiB(b *testing.B) {
	msg := message100K()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if s, err := Summarize(bytes.NewReader(msg), 0); err != nil || s.Files() != 1 {
			b.Fatal(s, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "msg/cpu-s")
}
