package logsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Options describe the main stream and the per-kind outputs.
type Options struct {
	// File is the main log file; empty writes the main stream to Stderr.
	File   string
	Format string // text or json
	Level  string // debug, info, warn, error
	// Outputs take records of their kinds away from the main stream.
	Outputs []Output
	// Stderr is the main stream without File, and where a failing log
	// file is reported.
	Stderr io.Writer
	// Location is the time zone of epost time stamps (default: local).
	Location *time.Location
}

// Sink owns the open log files; Handler routes records into them.
type Sink struct {
	files   []*file
	handler slog.Handler
}

// ParseLevel reads a level name as the configuration spells it.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a level (debug, info, warn, error)", s)
}

type format int

const (
	formatText format = iota
	formatJSON
	formatEpost
)

func parseFormat(s string) (format, error) {
	switch s {
	case "text":
		return formatText, nil
	case "json":
		return formatJSON, nil
	case "epost":
		return formatEpost, nil
	}
	return 0, fmt.Errorf("%q is not a log format (text, json, epost)", s)
}

// New opens every file (appending, 0640) and builds the handler. On error
// nothing stays open.
func New(o Options) (*Sink, error) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	s := &Sink{}
	byPath := map[string]*file{}
	open := func(path string) (*file, error) {
		if f, ok := byPath[path]; ok {
			return f, nil
		}
		f := newFile(path, o.Stderr)
		if err := f.Reopen(); err != nil {
			return nil, err
		}
		byPath[path] = f
		s.files = append(s.files, f)
		return f, nil
	}
	fail := func(err error) (*Sink, error) {
		s.Close()
		return nil, err
	}
	level, err := ParseLevel(o.Level)
	if err != nil {
		return fail(err)
	}
	var mainW io.Writer = o.Stderr
	if o.File != "" {
		f, err := open(o.File)
		if err != nil {
			return fail(err)
		}
		mainW = f
	}
	mainF, err := parseFormat(o.Format)
	if err != nil {
		return fail(err)
	}
	r := &router{main: build(mainF, mainW, level, o.Location), byKind: map[string][]int{}}
	for i, out := range o.Outputs {
		f, err := open(out.File)
		if err != nil {
			return fail(fmt.Errorf("outputs[%d].file: %w", i, err))
		}
		name := out.Format
		if name == "" {
			name = "epost"
		}
		of, err := parseFormat(name)
		if err != nil {
			return fail(fmt.Errorf("outputs[%d].format: %w", i, err))
		}
		lv := level
		if out.Level != "" {
			if lv, err = ParseLevel(out.Level); err != nil {
				return fail(fmt.Errorf("outputs[%d].level: %w", i, err))
			}
		}
		r.outs = append(r.outs, build(of, f, lv, o.Location))
		for _, k := range out.Kinds {
			r.byKind[k] = append(r.byKind[k], i)
		}
	}
	s.handler = r
	return s, nil
}

func build(f format, w io.Writer, level slog.Level, loc *time.Location) slog.Handler {
	switch f {
	case formatJSON:
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	case formatEpost:
		return newEpostHandler(w, level, loc)
	}
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
}

// Handler is the slog.Handler to log through.
func (s *Sink) Handler() slog.Handler { return s.handler }

// Reopen reopens every file, for SIGUSR1 after logrotate has moved them.
// A file that cannot be reopened keeps its old descriptor.
func (s *Sink) Reopen() error {
	var errs []error
	for _, f := range s.files {
		if err := f.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every file.
func (s *Sink) Close() error {
	var errs []error
	for _, f := range s.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// router sends each record to the outputs that take its kind, or to the
// main stream when none does. Handlers derived with WithAttrs and
// WithGroup carry the same derivation on every destination.
type router struct {
	main    slog.Handler
	outs    []slog.Handler
	byKind  map[string][]int // shared by derived routers, read-only
	kind    string           // bound with WithAttrs
	grouped bool             // a group is open: record attributes are not top-level
}

func (r *router) Enabled(ctx context.Context, l slog.Level) bool {
	if r.main.Enabled(ctx, l) {
		return true
	}
	for _, h := range r.outs {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (r *router) Handle(ctx context.Context, rec slog.Record) error {
	kind := r.kind
	if !r.grouped {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "kind" {
				kind = a.Value.String()
				return false
			}
			return true
		})
	}
	idx := r.byKind[kind]
	if len(idx) == 0 {
		if r.main.Enabled(ctx, rec.Level) {
			return r.main.Handle(ctx, rec)
		}
		return nil
	}
	var errs []error
	for _, i := range idx {
		if h := r.outs[i]; h.Enabled(ctx, rec.Level) {
			if err := h.Handle(ctx, rec); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (r *router) derive(f func(slog.Handler) slog.Handler) *router {
	c := *r
	c.main = f(r.main)
	c.outs = make([]slog.Handler, len(r.outs))
	for i, h := range r.outs {
		c.outs[i] = f(h)
	}
	return &c
}

func (r *router) WithAttrs(as []slog.Attr) slog.Handler {
	c := r.derive(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
	if !r.grouped {
		for _, a := range as {
			if a.Key == "kind" {
				c.kind = a.Value.String()
			}
		}
	}
	return c
}

func (r *router) WithGroup(name string) slog.Handler {
	if name == "" {
		return r
	}
	c := r.derive(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
	c.grouped = true
	return c
}
