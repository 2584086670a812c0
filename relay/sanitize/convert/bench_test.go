package convert

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

// BenchmarkImagePDF is conversions per minute through a pool of two
// (two cores): a two-page docx (LibreOffice, then poppler) and a
// ten-page PDF (poppler alone), four conversions asked at once so the
// pool is never idle.
func BenchmarkImagePDF(b *testing.B) {
	d := converttest.Documents(b)
	for _, tc := range []struct{ name, path, ext string }{{"docx-2-pages", d.Report, "docx"}, {"pdf-10-pages", d.Pages, "pdf"}} {
		b.Run(tc.name, func(b *testing.B) {
			c := testConverter(b)
			jobs := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range jobs {
						if _, err := c.ImagePDF(context.Background(), tc.path, tc.ext, io.Discard); err != nil {
							b.Error(err)
						}
					}
				})
			}
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				jobs <- struct{}{}
			}
			close(jobs)
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(t0).Minutes(), "conversions/min")
		})
	}
}
