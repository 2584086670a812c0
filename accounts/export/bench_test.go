package export

import (
	"bytes"
	"fmt"
	"testing"
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
