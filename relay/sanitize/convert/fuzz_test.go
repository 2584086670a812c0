package convert

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

// FuzzReencode: any bytes said to be an image are re-encoded or refused,
// never a panic, and never past the pixel bound (the GIF frame count
// read by gifFrames included).
func FuzzReencode(f *testing.F) {
	var g bytes.Buffer
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	gif.EncodeAll(&g, &gif.GIF{Image: []*image.Paletted{pal, pal}, Delay: []int{1, 1}})
	f.Add(g.Bytes(), "image/gif")
	f.Add(converttest.PhotoWithExif(), "image/jpeg")
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00"), "image/gif")
	c := New(DefaultConfig(), nil)
	c.cfg.MaxPixels = 1 << 20
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, typ string) {
		in := filepath.Join(dir, "in")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		gifFrames(bytes.NewReader(data))
		c.Reencode(context.Background(), in, typ, io.Discard)
	})
}
