package queue

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want []string // substrings of the joined error; none means valid
	}{
		{"defaults", func(c *Config) {}, nil},
		{"no dir", func(c *Config) { c.Dir = "" }, []string{"dir: missing"}},
		{"tiny segment", func(c *Config) { c.SegmentSize = 1000 }, []string{"segment_size: must be between 64KiB and 4GiB, got 1000"}},
		{"inline over half", func(c *Config) { c.SegmentSize = 1 << 20; c.InlineMax = 1 << 20 }, []string{"inline_max: must be at most half of segment_size"}},
		{"inline tiny", func(c *Config) { c.InlineMax = 10 }, []string{"inline_max: must be between"}},
		{"max bytes", func(c *Config) { c.MaxBytes = 1 << 20 }, []string{"max_bytes: must be at least two segments (128MiB), got 1MiB"}},
		{"several", func(c *Config) { c.MaxMessages = 0; c.CompactAfter = -time.Second },
			[]string{"max_messages: must be at least 1, got 0", "compact_after: must be positive"}},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestConfigResolve(t *testing.T) {
	c := Config{Dir: "spool"}
	c.Resolve("/etc/sekisho")
	if c.Dir != "/etc/sekisho/spool" {
		t.Errorf("relative dir resolved to %q", c.Dir)
	}
	c = Config{Dir: "/var/spool/sekisho"}
	c.Resolve("/etc/sekisho")
	if c.Dir != "/var/spool/sekisho" {
		t.Errorf("absolute dir changed to %q", c.Dir)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"1048576": 1 << 20, "64MiB": 64 << 20, "64mib": 64 << 20, "4GiB": 4 << 30, "4G": 4 << 30,
		"512k": 512 << 10, "1.5G": 3 << 29, " 2 MB ": 2 << 20, "0": 0, "7b": 7, "1TiB": 1 << 40,
	} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%q = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5.5G", "ten", "99999999999T", "NaN"} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %d", in, s)
		}
	}
	for s, want := range map[ByteSize]string{64 << 20: "64MiB", 4 << 30: "4GiB", 1000: "1000", 0: "0", 3 << 10: "3KiB"} {
		if s.String() != want {
			t.Errorf("%d prints %q, want %q", int64(s), s.String(), want)
		}
	}
}
