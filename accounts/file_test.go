package accounts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFileRoundTrip(t *testing.T) {
	recs := testRecords()
	var buf bytes.Buffer
	if err := WriteRecords(&buf, recs); err != nil {
		t.Fatal(err)
	}
	got, err := ParseFile("dir", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	var again bytes.Buffer
	WriteRecords(&again, got)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Errorf("write(read(write(x))) differs:\n%s\n---\n%s", buf.String(), again.String())
	}
	for _, want := range []string{fileHeader + "\n", "account\tTanaka@city.toyokawa.lg.jp\t-\t-\t田中\n",
		"account\tbaito@city.toyokawa.lg.jp\toutbound_blocked\t-\t-\n",
		"alias\t*@forward.example.jp\t*@partner.example.jp\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("written file lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestParseFileErrors(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"", "empty file"},
		{"account\ta@b.jp\t-\t-\tx\n", "dir:1: not a sekisho directory file"},
		{fileHeader + "\naccount\ta@b.jp\t-\n", "dir:2: account line needs 5"},
		{fileHeader + "\n# comment\n\naccount\tnoat\t-\t-\t-\n", "dir:4: \"noat\" is not of the form"},
		{fileHeader + "\naccount\ta@b.jp\tbogus\t-\t-\n", "dir:2: unknown flag \"bogus\""},
		{fileHeader + "\nuser\ta@b.jp\n", "dir:2: unknown entry \"user\""},
		{fileHeader + "\nalias\ta*b@x.jp\tc@x.jp\n", "dir:2: alias \"a*b@x.jp\""},
		{fileHeader + "\r\nalias\ta@x.jp\tnot an address\r\n", "dir:2: alias a@x.jp: target"},
	}
	for _, c := range cases {
		_, err := ParseFile("dir", []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFile(%q): err = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestOpenMissingFile(t *testing.T) {
	cfg := testConfig()
	cfg.Directory = filepath.Join(t.TempDir(), "accounts.tsv")
	_, err := Open(cfg)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
	if err := WriteFile(cfg.Directory, testRecords()); err != nil {
		t.Fatal(err)
	}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Lookup("info@city.toyokawa.lg.jp"); !r.Exists() {
		t.Errorf("info@ does not exist after Open: %+v", r)
	}
	// A second write keeps the first as a backup.
	if err := WriteFile(cfg.Directory, testRecords()[:2]); err != nil {
		t.Fatal(err)
	}
	bak, err := ReadFile(cfg.Directory + ".bak")
	if err != nil || len(bak) != len(testRecords()) {
		t.Errorf("backup has %d records, %v", len(bak), err)
	}
}

// FuzzParseFile: no panic, and whatever parses writes back to something that
// parses to the same records.
func FuzzParseFile(f *testing.F) {
	var buf bytes.Buffer
	WriteRecords(&buf, testRecords())
	f.Add(buf.Bytes())
	f.Add([]byte(fileHeader + "\naccount\ta@b.jp\toutbound_blocked,disabled\tsecret\tName with spaces\n"))
	f.Add([]byte(fileHeader + "\r\nalias\t*@b.jp\t*@c.jp\r\n"))
	f.Add([]byte(fileHeader + "\naccount\tb@a.jp\toutbound_blocked\t-\t-\nallow\tb@a.jp\t*@p.jp,Sato@*.x.jp\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseFile("fuzz", data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteRecords(&out, recs); err != nil {
			t.Fatal(err)
		}
		again, err := ParseFile("again", out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v\n%q", err, out.String())
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records became %d", len(recs), len(again))
		}
	})
}

func bigDirectory(b testing.TB, n int) (Config, string) {
	b.Helper()
	cfg := DefaultConfig()
	const domains = 20
	for i := 0; i < domains; i++ {
		cfg.Domains = append(cfg.Domains, DomainConfig{Name: fmt.Sprintf("city.town%02d.lg.jp", i)})
	}
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Local: fmt.Sprintf("user%07d", i), Domain: fmt.Sprintf("city.town%02d.lg.jp", i%domains),
			Name: fmt.Sprintf("職員 %d", i)}
		if i%100 == 0 {
			recs[i].Flags = OutboundBlocked
		}
	}
	cfg.Directory = filepath.Join(b.TempDir(), "accounts.tsv")
	if err := WriteFile(cfg.Directory, recs); err != nil {
		b.Fatal(err)
	}
	return cfg, cfg.Directory
}

// BenchmarkOpen1M loads a directory of 1,000,000 accounts and reports the
// heap it keeps.
func BenchmarkOpen1M(b *testing.B) {
	cfg, path := bigDirectory(b, 1_000_000)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ResetTimer()
	var d *Directory
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		var err error
		if d, err = Open(cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// On a shared machine the wall clock includes other processes' turns.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
	runtime.KeepAlive(d)
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkLookup(b *testing.B) {
	cfg, _ := bigDirectory(b, 100_000)
	d, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	addrs := []string{"user0000042@city.town02.lg.jp", "USER0099999@City.Town19.LG.JP", "nobody@city.town03.lg.jp", "x@example.com"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Lookup(addrs[i%len(addrs)]); err != nil {
			b.Fatal(err)
		}
	}
}
