package export

import (
	"bytes"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
)

// export100k is a 100,000-account TSV export like a city's: Japanese
// header and names, a few flags, CR LF.
func export100k() []byte {
	var b bytes.Buffer
	b.WriteString("アカウント\tドメイン\t氏名\tフラグ\r\n")
	flags := []string{"", "", "", "", "", "", "", "", "外部送信禁止", "無効"}
	for i := range 100_000 {
		fmt.Fprintf(&b, "user%06d\tcity%d.lg.jp\t職員 %d号\t%s\r\n", i, i%7, i, flags[i%len(flags)])
	}
	return b.Bytes()
}

func benchRead(b *testing.B, data []byte, opt Options) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Read(bytes.NewReader(data), "bench.tsv", opt)
		if err != nil || len(res.Records) != 100_000 {
			b.Fatalf("%v, %d records", err, len(res.Records))
		}
	}
}

func BenchmarkRead100kTSV(b *testing.B) { benchRead(b, export100k(), Options{}) }

func BenchmarkRead100kTSVShiftJIS(b *testing.B) {
	benchRead(b, []byte(sjis(b, string(export100k()))), Options{})
}

func BenchmarkRead100kCSV(b *testing.B) {
	data := bytes.ReplaceAll(export100k(), []byte("\t"), []byte(","))
	benchRead(b, data, Options{})
}

// BenchmarkSync100k is one `accounts sync` of a 100,000-line export: read
// it, plan against the current 100,000-account directory (500 accounts
// added and 500 removed, the flags column kept), and write the new
// directory file (temp, fsync, rename).
func BenchmarkSync100k(b *testing.B) {
	data := export100k()
	cfg := accounts.DefaultConfig()
	for d := range 7 {
		cfg.Domains = append(cfg.Domains, accounts.DomainConfig{Name: fmt.Sprintf("city%d.lg.jp", d)})
	}
	res, err := Read(bytes.NewReader(data), "bench.tsv", Options{})
	if err != nil {
		b.Fatal(err)
	}
	current := make([]accounts.Record, len(res.Records))
	copy(current, res.Records)
	for i := 0; i < 500; i++ { // 500 accounts the export no longer has, 500 it adds
		current[i].Local = fmt.Sprintf("gone%06d", i)
	}
	path := filepath.Join(b.TempDir(), "accounts.tsv")
	if err := accounts.WriteFile(path, current); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	cpu := cpuTime()
	for b.Loop() {
		cur, err := accounts.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Read(bytes.NewReader(data), "bench.tsv", Options{})
		if err != nil {
			b.Fatal(err)
		}
		plan, err := accounts.PlanSync(cfg, cur, res.Records, accounts.SyncOptions{})
		if err != nil || len(plan.Diff.Added) != 500 || len(plan.Diff.Removed) != 500 || len(plan.Refusals) != 0 {
			b.Fatalf("%v: %d added, %d removed, refusals %v", err, len(plan.Diff.Added), len(plan.Diff.Removed), plan.Refusals)
		}
		if err := accounts.WriteFile(path+".new", plan.Records); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine the wall clock includes other processes' turns;
	// the CPU time this process spent (all threads, GC included) does not.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
