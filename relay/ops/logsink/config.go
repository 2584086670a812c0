// Package logsink owns where log records go: it routes each record by its
// `kind` attribute to the main stream or to per-kind files, written as slog
// text, JSON or the `epost` layout E-Post administrators read.
package logsink

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Kinds are the record kinds the gateway writes; an output lists the ones
// it takes. Records of other kinds (start, stop, records without a kind)
// always go to the main stream.
var Kinds = []string{"accept", "receive", "reject", "send", "fail", "auth", "reload", "sanitize", "audit", "store"}

// Output sends the records of some kinds to a file instead of the main
// stream.
type Output struct {
	// Kinds this output takes, from Kinds. A kind may go to several outputs.
	Kinds []string `koanf:"kinds"`
	// File is the path, reopened on SIGUSR1; relative to the configuration
	// file's folder.
	File string `koanf:"file"`
	// Format: text, json or epost; empty means epost.
	Format string `koanf:"format"`
	// Level is the least level written; empty means the main log.level.
	Level string `koanf:"level"`
}

// ResolveOutputs makes relative output paths relative to base.
func ResolveOutputs(outs []Output, base string) {
	for i := range outs {
		if p := outs[i].File; p != "" && !filepath.IsAbs(p) {
			outs[i].File = filepath.Join(base, p)
		}
	}
}

// ValidateOutputs reports every problem in the outputs, keyed
// `outputs[i].key`.
func ValidateOutputs(outs []Output) error {
	var errs []error
	bad := func(i int, key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("outputs[%d].%s: %s", i, key, fmt.Sprintf(format, a...)))
	}
	known := map[string]bool{}
	for _, k := range Kinds {
		known[k] = true
	}
	formats := map[string]string{}
	for i, o := range outs {
		if o.File == "" {
			bad(i, "file", "required")
		}
		if len(o.Kinds) == 0 {
			bad(i, "kinds", "lists no kind (one or more of %v)", Kinds)
		}
		for j, k := range o.Kinds {
			if !known[k] {
				bad(i, fmt.Sprintf("kinds[%d]", j), "%q is not a log kind (%v)", k, Kinds)
			}
		}
		f := o.Format
		if f == "" {
			f = "epost"
		}
		if _, err := parseFormat(f); err != nil {
			bad(i, "format", "%v", err)
		}
		if o.Level != "" {
			if _, err := ParseLevel(o.Level); err != nil {
				bad(i, "level", "%v", err)
			}
		}
		// Two outputs writing one file in different layouts would make a
		// file no reader can parse.
		if o.File != "" {
			if prev, ok := formats[o.File]; ok && prev != f {
				bad(i, "format", "%s is also written as %s by another output", o.File, prev)
			}
			formats[o.File] = f
		}
	}
	return errors.Join(errs...)
}

// Config is relay.log: the main stream's format, destination and level,
// and the outputs that take some kinds to files of their own.
type Config struct {
	Format string `koanf:"format"` // text, json or epost
	File   string `koanf:"file"`   // "" = standard error; reopened on SIGUSR1
	Level  string `koanf:"level"`  // debug, info, warn, error
	// Outputs send some kinds to their own files (E-Post's acceptlog,
	// receivelog, senderlog, faillog) instead of the main stream.
	Outputs []Output `koanf:"outputs"`
}

// DefaultConfig is text at level info on standard error.
func DefaultConfig() Config { return Config{Format: "text", Level: "info"} }

// Resolve makes the file paths relative to base.
func (c *Config) Resolve(base string) {
	if c.File != "" && !filepath.IsAbs(c.File) {
		c.File = filepath.Join(base, c.File)
	}
	ResolveOutputs(c.Outputs, base)
}

// Validate reports every problem, keyed relative to relay.log.
func (c Config) Validate() error {
	var errs []error
	switch c.Format {
	case "text", "json", "epost":
	default:
		errs = append(errs, fmt.Errorf("format: %q is not a log format (text, json, epost)", c.Format))
	}
	switch c.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("level: %q is not a level (debug, info, warn, error)", c.Level))
	}
	if err := ValidateOutputs(c.Outputs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
