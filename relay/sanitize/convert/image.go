package convert

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Image formats Reencode knows, by the media type the sanitize stage
// detected.
var imageFormats = map[string]string{
	"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp", "image/tiff": "tiff",
}

// Reencode decodes the image in (of media type typ) and encodes it again
// in the same format to out: only the pixels survive (no EXIF, no
// comments, no ICC or XMP, nothing appended after the image), and a file
// that does not decode as what it claims is refused. Decoding runs in
// this process, not a sandbox: Go's decoders are memory-safe, and the
// pixel count is checked from the header before anything is decoded, so
// an image cannot make us allocate more than MaxPixels. It takes a slot
// of the pool like any conversion. A multi-page TIFF keeps its first
// page; an animated GIF keeps its frames.
func (c *Converter) Reencode(ctx context.Context, in, typ string, out io.Writer) error {
	format, ok := imageFormats[typ]
	if !ok {
		return failed(CodeFailed, "%s is not an image type that can be re-encoded", typ)
	}
	ctx, done, err := c.slot(ctx)
	if err != nil {
		return err
	}
	defer done()
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, got, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return failed(CodeFailed, "the image cannot be read: %v", err)
	}
	if got != format {
		return failed(CodeFailed, "the image is %s, not %s", got, format)
	}
	frames := 1
	if format == "gif" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		frames = gifFrames(f)
	}
	if px := int64(cfg.Width) * int64(cfg.Height) * int64(frames); cfg.Width <= 0 || cfg.Height <= 0 || px > int64(c.cfg.MaxPixels) {
		return failed(CodeTooLarge, "%d×%d pixels (%d frames), more than the limit of %d", cfg.Width, cfg.Height, frames, c.cfg.MaxPixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	bw := bufio.NewWriter(out)
	switch format {
	case "gif":
		g, err := gif.DecodeAll(r)
		if err != nil {
			return failed(CodeFailed, "the image cannot be decoded: %v", err)
		}
		g.Config.ColorModel = nil // written again from the frames' palettes
		err = gif.EncodeAll(bw, g)
		if err != nil {
			return err
		}
	default:
		img, _, err := image.Decode(r)
		if err != nil {
			return failed(CodeFailed, "the image cannot be decoded: %v", err)
		}
		switch format {
		case "jpeg":
			err = jpeg.Encode(bw, img, &jpeg.Options{Quality: c.cfg.Quality})
		case "png":
			err = png.Encode(bw, img)
		case "bmp":
			err = bmp.Encode(bw, img)
		case "tiff":
			err = tiff.Encode(bw, img, &tiff.Options{Compression: tiff.Deflate})
		}
		if err != nil {
			return fmt.Errorf("encoding the image: %w", err)
		}
	}
	return bw.Flush()
}

// gifFrames counts a GIF's image descriptors without decoding any pixel,
// so that an animation's pixel count is bounded before it is decoded.
func gifFrames(r io.Reader) int {
	br := bufio.NewReader(r)
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return 1
	}
	if hdr[10]&0x80 != 0 {
		br.Discard(3 << ((hdr[10] & 7) + 1))
	}
	n := 0
	for {
		b, err := br.ReadByte()
		if err != nil {
			return max(n, 1)
		}
		switch b {
		case 0x21: // extension: label, then sub-blocks
			br.ReadByte()
			if skipBlocks(br) != nil {
				return max(n, 1)
			}
		case 0x2c: // image descriptor
			n++
			d := make([]byte, 9)
			if _, err := io.ReadFull(br, d); err != nil {
				return max(n, 1)
			}
			if d[8]&0x80 != 0 {
				br.Discard(3 << ((d[8] & 7) + 1))
			}
			br.ReadByte() // LZW minimum code size
			if skipBlocks(br) != nil {
				return max(n, 1)
			}
		default: // the trailer, or not a GIF past here
			return max(n, 1)
		}
	}
}

func skipBlocks(br *bufio.Reader) error {
	for {
		size, err := br.ReadByte()
		if err != nil {
			return err
		}
		if size == 0 {
			return nil
		}
		if _, err := br.Discard(int(size)); err != nil {
			return err
		}
	}
}
