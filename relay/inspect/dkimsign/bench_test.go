package dkimsign

import (
	"strings"
	"testing"
)

// BenchmarkSign is the signing cost per 4 KB message at delivery.
func BenchmarkSign(b *testing.B) {
	msg := strings.Replace(rewritten, "The minutes of the meeting.\r\n", strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 64), 1)
	for _, kind := range []string{"rsa", "ed25519"} {
		b.Run(kind, func(b *testing.B) {
			file, _ := writeKey(b, b.TempDir(), "k.pem", kind)
			sg, err := New(Config{Keys: []KeyConfig{{Domain: "city.example.jp", Selector: "s", KeyFile: file}}, Headers: DefaultHeaders})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if f, err := sg.Sign(strings.NewReader(msg)); err != nil || f == "" {
					b.Fatal(f, err)
				}
			}
		})
	}
}
