package convert

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/sekisho/sekisho/relay/sanitize/convert/converttest"
)

func TestReencode(t *testing.T) {
	img := image.NewPaletted(image.Rect(0, 0, 20, 10), color.Palette{color.Black, color.White})
	img.Set(3, 3, color.White)
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// A trailer after the image (a polyglot's payload) must not survive.
	payload := []byte("PK\x03\x04 hidden archive")
	for _, tc := range []struct {
		typ  string
		data []byte
		drop string
	}{
		{"image/jpeg", converttest.PhotoWithExif(), converttest.ExifMarker},
		{"image/png", append(enc(func(b *bytes.Buffer) error { return png.Encode(b, img) }), payload...), "hidden archive"},
		{"image/gif", append(enc(func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) }), payload...), "hidden archive"},
		{"image/bmp", append(enc(func(b *bytes.Buffer) error { return bmp.Encode(b, img) }), payload...), "hidden archive"},
		{"image/tiff", enc(func(b *bytes.Buffer) error { return tiff.Encode(b, img, nil) }), ""},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "in")
			os.WriteFile(in, tc.data, 0o600)
			var out bytes.Buffer
			if err := testConverter(t).Reencode(context.Background(), in, tc.typ, &out); err != nil {
				t.Fatal(err)
			}
			if tc.drop != "" && bytes.Contains(out.Bytes(), []byte(tc.drop)) {
				t.Errorf("%q survived the re-encoding", tc.drop)
			}
			if _, format, err := image.Decode(bytes.NewReader(out.Bytes())); err != nil || "image/"+format != tc.typ {
				t.Errorf("output decodes as %q, %v", format, err)
			}
		})
	}
}

func TestReencodeRefuses(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 2000, 1000)))
	os.WriteFile(big, b.Bytes(), 0o600)
	c := testConverter(t)
	c.cfg.MaxPixels = 1_000_000
	var e *Error
	if err := c.Reencode(context.Background(), big, "image/png", &bytes.Buffer{}); !errors.As(err, &e) || e.Code != CodeTooLarge {
		t.Errorf("a 2-megapixel image under a 1-megapixel limit: %v", err)
	}
	if err := c.Reencode(context.Background(), big, "image/jpeg", &bytes.Buffer{}); !errors.As(err, &e) || e.Code != CodeFailed {
		t.Errorf("a PNG said to be a JPEG: %v", err)
	}
}

func TestUnzip(t *testing.T) {
	for _, method := range []string{"ZipCrypto", "AES256"} {
		t.Run(method, func(t *testing.T) {
			dir := t.TempDir()
			zp := filepath.Join(dir, "ppap.zip")
			converttest.Zip(t, zp, method, map[string][]byte{"見積書.txt": []byte("hello"), "sub/b.txt": []byte("second")})
			c := testConverter(t)
			var e *Error
			if _, err := c.Unzip(context.Background(), zp, "wrong", t.TempDir()); !errors.As(err, &e) || e.Code != CodePassword {
				t.Fatalf("a wrong password: %v", err)
			}
			files, err := c.Unzip(context.Background(), zp, converttest.Password, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range files {
				b, _ := os.ReadFile(f.Path)
				got[f.Name] = string(b)
			}
			if got["見積書.txt"] != "hello" || got["sub/b.txt"] != "second" || len(got) != 2 {
				t.Errorf("files: %v", got)
			}
		})
	}
}
