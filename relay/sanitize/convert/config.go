package convert

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

// Config is `relay.sanitize.convert`: the converters and the bounds every
// conversion runs under.
type Config struct {
	// Workers is how many conversions run at once; 0 is one a core. It is
	// read at start: a reload keeps the pool the gateway started with.
	Workers int `koanf:"workers"`
	// Timeout is the CPU time one converter process may use
	// (RLIMIT_CPU): a document that keeps a converter busy longer is not
	// converted. CPU time, not the clock, so that on a busy machine a
	// conversion is slower, never refused for the machine's sake.
	Timeout time.Duration `koanf:"timeout"`
	// WallTimeout bounds one conversion by the clock, as a backstop: past
	// it the whole process group is killed and, since the converter did
	// not use up its CPU time, the machine was too busy (or the converter
	// waited on something): the message waits for a retry rather than
	// lose the file.
	WallTimeout time.Duration `koanf:"wall_timeout"`
	// Nice is the converters' CPU priority (nice(1), 0 to 19): above 0
	// they yield to the mail path on a busy machine.
	Nice int `koanf:"nice"`
	// MaxMemory is the address space one converter process may map
	// (RLIMIT_AS).
	MaxMemory queue.ByteSize `koanf:"max_memory"`
	// MaxPages: a document with more pages is not converted.
	MaxPages int `koanf:"max_pages"`
	// MaxOutput bounds one file a converter writes (RLIMIT_FSIZE), and so
	// what a decrypted archive may unpack to, file by file.
	MaxOutput queue.ByteSize `koanf:"max_output"`
	// DPI of the page images; Quality their JPEG quality.
	DPI     int `koanf:"dpi"`
	Quality int `koanf:"quality"`
	// MaxPixels bounds an image to re-encode (width × height).
	MaxPixels int `koanf:"max_pixels"`
	// Network: isolate (each converter in a network namespace of its own,
	// refused when the system cannot make one), auto (isolated when the
	// system can, else run as is, with a warning) or none.
	Network string `koanf:"network"`
	// The programs, by name (looked up in PATH) or path.
	Soffice   string `koanf:"soffice"`
	Pdftoppm  string `koanf:"pdftoppm"`
	Pdftotext string `koanf:"pdftotext"`
	Pdfinfo   string `koanf:"pdfinfo"`
	SevenZip  string `koanf:"seven_zip"`
	Prlimit   string `koanf:"prlimit"`
	// TempDir holds each conversion's folder and profile ("" is the
	// system's).
	TempDir string `koanf:"temp_dir"`
}

// Network modes.
const (
	NetworkIsolate = "isolate"
	NetworkAuto    = "auto"
	NetworkNone    = "none"
)

// DefaultConfig: a worker a core at nice 10, a minute of CPU time (ten
// of the clock) and 2 GiB a converter, 50 pages at 110 DPI, Debian's
// program names.
func DefaultConfig() Config {
	return Config{
		Timeout:     time.Minute,
		WallTimeout: 10 * time.Minute,
		Nice:        10,
		MaxMemory:   2 << 30,
		MaxPages:    50,
		MaxOutput:   256 << 20,
		DPI:         110,
		Quality:     85,
		MaxPixels:   50_000_000,
		Network:     NetworkAuto,
		Soffice:     "soffice",
		Pdftoppm:    "pdftoppm",
		Pdftotext:   "pdftotext",
		Pdfinfo:     "pdfinfo",
		SevenZip:    "7zz",
		Prlimit:     "prlimit",
	}
}

// Resolve makes the temporary folder relative to base.
func (c *Config) Resolve(base string) {
	if c.TempDir != "" && !filepath.IsAbs(c.TempDir) {
		c.TempDir = filepath.Join(base, c.TempDir)
	}
}

// Validate reports every problem, keys relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Workers < 0 || c.Workers > 256 {
		bad("workers", "must be between 0 (one a core) and 256, got %d", c.Workers)
	}
	if c.Timeout < time.Second {
		bad("timeout", "must be at least 1s, got %v", c.Timeout)
	}
	if c.WallTimeout < c.Timeout {
		bad("wall_timeout", "must be at least timeout (%v), got %v: raise wall_timeout (default 10m) or lower timeout", c.Timeout, c.WallTimeout)
	}
	if c.Nice < 0 || c.Nice > 19 {
		bad("nice", "must be between 0 and 19, got %d", c.Nice)
	}
	if c.MaxMemory < 256<<20 {
		bad("max_memory", "must be at least 256MiB (LibreOffice maps that much to start), got %v", c.MaxMemory)
	}
	if c.MaxPages < 1 || c.MaxPages > 10000 {
		bad("max_pages", "must be between 1 and 10000, got %d", c.MaxPages)
	}
	if c.MaxOutput < 1<<20 {
		bad("max_output", "must be at least 1MiB, got %v", c.MaxOutput)
	}
	if c.DPI < 36 || c.DPI > 600 {
		bad("dpi", "must be between 36 and 600, got %d", c.DPI)
	}
	if c.Quality < 10 || c.Quality > 100 {
		bad("quality", "must be between 10 and 100, got %d", c.Quality)
	}
	if c.MaxPixels < 1_000_000 {
		bad("max_pixels", "must be at least 1000000, got %d", c.MaxPixels)
	}
	switch c.Network {
	case NetworkIsolate, NetworkAuto, NetworkNone:
	default:
		bad("network", "%q is not isolate, auto or none", c.Network)
	}
	for _, p := range []struct{ key, v string }{{"soffice", c.Soffice}, {"pdftoppm", c.Pdftoppm},
		{"pdftotext", c.Pdftotext}, {"pdfinfo", c.Pdfinfo}, {"seven_zip", c.SevenZip}, {"prlimit", c.Prlimit}} {
		if p.v == "" {
			bad(p.key, "required (a program name or path)")
		}
	}
	return errors.Join(errs...)
}
