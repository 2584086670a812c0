package sanitize

import (
	"bytes"
	"encoding/base64"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// message100K is a typical newsletter of about 100 KiB: Shift_JIS text and
// HTML alternatives and a PDF attachment.
func message100K() []byte {
	para := "いつもお世話になっております。市役所からのお知らせです。説明会は4月10日に本庁舎3階で開催します。\n"
	text := strings.Repeat(para, 120)
	html := "<html><body>" + strings.Repeat("<p>"+para+"</p><table><tr><td>項目</td><td>日時</td></tr><tr><td>説明会</td><td>4月10日</td></tr></table>", 60) + "</body></html>"
	att := pdf + strings.Repeat("0123456789abcdef", 3000)
	msg := "From: a@example.com\nTo: b@city.example.lg.jp\nSubject: " + bword("shift_jis", sjis("お知らせ")) + "\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"m\"\n\n--m\nContent-Type: multipart/alternative; boundary=\"a\"\n\n" +
		"--a\nContent-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: base64\n\n" + b64(sjis(text)) + "\n" +
		"--a\nContent-Type: text/html; charset=shift_jis\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(sjis(html)) + "\n--a--\n" +
		"--m\nContent-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n" + b64(att) + "\n--m--\n"
	return []byte(crlfs(msg))
}

func benchMessage(b *testing.B, o Options) {
	msg := message100K()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Message(bytes.NewReader(msg), io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
	// The machine is shared: wall-clock rates drift with other load, so
	// the rate per second of CPU this process used (GC included) is
	// reported too — the "per core" figure.
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "msg/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run with -cpu 1: messages per second on one core.
func BenchmarkMessage100KiB(b *testing.B)     { benchMessage(b, Options{}) }
func BenchmarkMessage100KiBHTML(b *testing.B) { benchMessage(b, Options{Prefer: "html"}) }
func BenchmarkMessage100KiBISO(b *testing.B) {
	benchMessage(b, Options{Prefer: "html", Charset: CharsetISO2022J})
}

// bigMessage streams a message of about size bytes, mostly one base64
// attachment, without ever holding it: a generator, not a buffer.
func bigMessage(size int) io.Reader {
	head := crlfs("From: a@example.com\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n\n--m\nContent-Type: text/plain; charset=utf-8\n\n大きな添付ファイルです。\n--m\nContent-Type: application/pdf; name=\"big.pdf\"\nContent-Transfer-Encoding: base64\n\n")
	line := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("%PDF-1.4 data "), 5)[:57]) + "\r\n"
	n := size / len(line)
	return io.MultiReader(strings.NewReader(head), &repeatReader{line: line, n: n}, strings.NewReader("\r\n--m--\r\n"))
}

type repeatReader struct {
	line string
	n    int
	buf  []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.n == 0 {
			return 0, io.EOF
		}
		k := min(r.n, 512)
		r.buf = []byte(strings.Repeat(r.line, k))
		r.n -= k
	}
	c := copy(p, r.buf)
	r.buf = r.buf[c:]
	return c, nil
}

// peakHeap runs f while sampling the live heap, and returns the largest
// sample above the heap before f.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
					peak.Store(ms.HeapAlloc - base)
				}
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// TestMemoryBounded25MiB: a 25 MiB message must not be held in memory.
// The bound is loose (the collector decides when garbage goes) but far
// below the message, so buffering it whole fails.
func TestMemoryBounded25MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("25 MiB through the walker")
	}
	peak := peakHeap(func() {
		rep, err := Message(bigMessage(25<<20), io.Discard, Options{TempDir: t.TempDir()})
		if err != nil || len(rep.Removed) != 1 || rep.Removed[0].Size < 18<<20 {
			t.Errorf("%+v, %v", rep, err)
		}
	})
	t.Logf("peak heap above baseline: %.1f MiB", float64(peak)/(1<<20))
	if peak > 16<<20 {
		t.Errorf("peak heap %d MiB for a 25 MiB message: it is being buffered", peak>>20)
	}
}

func BenchmarkMessage25MiB(b *testing.B) {
	var peak uint64
	for b.Loop() {
		p := peakHeap(func() {
			if _, err := Message(bigMessage(25<<20), io.Discard, Options{AllowTypes: []string{"application/pdf"}, AllowExtensions: []string{"pdf"}, TempDir: b.TempDir()}); err != nil {
				b.Fatal(err)
			}
		})
		peak = max(peak, p)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}
