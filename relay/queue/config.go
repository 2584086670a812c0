package queue

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the `relay.queue` section.
type Config struct {
	// Dir is the spool directory. It should sit on a local file system
	// that honours fsync (ext4, xfs), not on tmpfs or NFS.
	Dir string `koanf:"dir"`
	// MaxBytes bounds the spool's disk use (segments and large-message
	// files). Past it new messages are refused with a temporary error.
	MaxBytes ByteSize `koanf:"max_bytes"`
	// MaxMessages bounds the number of queued messages.
	MaxMessages int `koanf:"max_messages"`
	// SegmentSize is the size at which an append-only segment file is
	// closed and a new one started.
	SegmentSize ByteSize `koanf:"segment_size"`
	// InlineMax is the largest message kept inside a segment; larger ones
	// get a file of their own, so a segment never holds a huge record.
	InlineMax ByteSize `koanf:"inline_max"`
	// CompactAfter is how long an old segment may stay pinned by a few
	// waiting messages before they are copied forward so it can go.
	CompactAfter time.Duration `koanf:"compact_after"`
	// Reserve is the free space on the spool's file system kept for
	// delivery results and bounces: below it new mail gets 452 4.3.1, so a
	// result can always be written. 0 (the default) is the larger of 64 MiB
	// and 2 % of the file system, at most a quarter of it.
	Reserve ByteSize `koanf:"reserve"`
}

// DefaultConfig returns the section's defaults.
func DefaultConfig() Config {
	return Config{
		Dir:          "/var/spool/sekisho",
		MaxBytes:     4 << 30,
		MaxMessages:  200000,
		SegmentSize:  64 << 20,
		InlineMax:    1 << 20,
		CompactAfter: 5 * time.Minute,
	}
}

// Resolve makes relative paths relative to base (the config file's folder).
func (c *Config) Resolve(base string) {
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		c.Dir = filepath.Join(base, c.Dir)
	}
}

// Limits on the knobs: below them the spool would spend its time rolling
// segments; above them a single record would be unreasonably large.
const (
	minSegmentSize = 64 << 10
	maxSegmentSize = 4 << 30
	minInlineMax   = 1 << 10
	maxInlineMax   = 64 << 20
)

// Validate reports every problem in the section; each error starts with the
// key path relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Dir == "" {
		bad("dir", "missing: the spool directory is required")
	}
	if c.SegmentSize < minSegmentSize || c.SegmentSize > maxSegmentSize {
		bad("segment_size", "must be between %v and %v, got %v", ByteSize(minSegmentSize), ByteSize(maxSegmentSize), c.SegmentSize)
	}
	if c.InlineMax < minInlineMax || c.InlineMax > maxInlineMax {
		bad("inline_max", "must be between %v and %v, got %v", ByteSize(minInlineMax), ByteSize(maxInlineMax), c.InlineMax)
	} else if c.InlineMax > c.SegmentSize/2 {
		bad("inline_max", "must be at most half of segment_size (%v), got %v", c.SegmentSize, c.InlineMax)
	}
	if c.MaxBytes < 2*c.SegmentSize {
		bad("max_bytes", "must be at least two segments (%v), got %v", 2*c.SegmentSize, c.MaxBytes)
	}
	if c.MaxMessages < 1 {
		bad("max_messages", "must be at least 1, got %d", c.MaxMessages)
	}
	if c.Reserve < 0 {
		bad("reserve", "must not be negative, got %d", int64(c.Reserve))
	}
	if c.CompactAfter <= 0 {
		bad("compact_after", "must be positive, got %v", c.CompactAfter)
	}
	return errors.Join(errs...)
}

// ByteSize is a size in bytes that configuration files may write as a plain
// number or with a unit: "64MiB", "4GiB", "512k" (k, M, G, T are binary
// multiples, as disk sizes are usually meant).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1 << 40}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10},
	{"b", 1},
}

// UnmarshalText parses "1048576", "1MiB", "1.5G".
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	num, mult := strings.ToLower(text), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/mult {
			return fmt.Errorf("size %q out of range", text)
		}
		*s = ByteSize(n * mult)
		return nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return fmt.Errorf("%q is not a size (use bytes or a unit: 64MiB, 4GiB)", text)
	}
	*s = ByteSize(f * float64(mult))
	return nil
}

// String prints the size with the largest exact binary unit.
func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
