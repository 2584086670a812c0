package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts/addr"
)

// fuzzOptions derives Options from one byte so the fuzzer explores them too.
func fuzzOptions(mode uint8) Options {
	opt := Options{
		Format:   []string{"auto", "tsv", "csv", "list"}[mode&3],
		Encoding: []string{"auto", "utf-8", "shift_jis", "auto"}[mode>>2&3],
	}
	if mode&16 != 0 {
		opt.Domain = "example.jp"
		opt.Restrict = mode&32 != 0
	}
	switch {
	case mode&64 != 0:
		opt.Columns = []string{"mail,name,flags"}
	case mode&128 != 0:
		opt.Columns = []string{"account,domain,alias,target"}
	}
	return opt
}

// FuzzRead: no panic, every line is either a record or an error, and what
// is accepted is canonical (it re-parses to itself).
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, name := range files {
		if strings.HasSuffix(name, ".golden") {
			continue
		}
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, uint8(0))
			f.Add(b, uint8(16))
		}
	}
	f.Add([]byte("a@b\n"), uint8(3))
	f.Add([]byte("mail,name\n\"x@y\",\"a\nb\"\n"), uint8(2))
	f.Add([]byte("\xef\xbb\xbfalias\ttarget\n*\t*@z\n"), uint8(16))
	f.Add([]byte("\xff\xfea\x00@\x00b\x00\n\x00"), uint8(0))
	f.Add([]byte("x@example.jp\tn\t無効\n"), uint8(64|16|32))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		opt := fuzzOptions(mode)
		opt.SkipInvalid = mode&8 != 0
		res, err := Read(bytes.NewReader(data), "f", opt)
		if err != nil && !errors.Is(err, ErrInvalidLines) {
			return
		}
		if (err != nil) != (len(res.Errors) > 0 && !opt.SkipInvalid) {
			t.Fatalf("error %v with %d line errors, SkipInvalid=%v", err, len(res.Errors), opt.SkipInvalid)
		}
		used := map[int]bool{}
		last := 0
		for _, r := range res.Records {
			if r.Line <= last || r.Line > res.Lines {
				t.Fatalf("record line %d after %d, file has %d lines", r.Line, last, res.Lines)
			}
			last = r.Line
			used[r.Line] = true
			if r.IsAlias() {
				p, dom, err := normalizePattern(r.Alias)
				if err != nil || p != r.Alias {
					t.Fatalf("alias %q re-normalizes to %q, %v", r.Alias, p, err)
				}
				if opt.Restrict && dom != "example.jp" {
					t.Fatalf("alias %q outside the restricted domain", r.Alias)
				}
				if tg, err := normalizeTarget(r.Target); err != nil || tg != r.Target {
					t.Fatalf("target %q re-normalizes to %q, %v", r.Target, tg, err)
				}
				continue
			}
			l, d, err := addr.Parse(r.Local + "@" + r.Domain)
			if err != nil || l != r.Local || d != r.Domain {
				t.Fatalf("account %q@%q re-parses to %q@%q, %v", r.Local, r.Domain, l, d, err)
			}
			if opt.Restrict && d != "example.jp" {
				t.Fatalf("account %s@%s outside the restricted domain", l, d)
			}
			if checkText(r.Name) != nil || checkText(r.Secret) != nil {
				t.Fatalf("control character accepted in %q / secret", r.Name)
			}
			if _, err := parseFlags(r.Flags.String()); err != nil {
				t.Fatalf("flags %v do not re-parse: %v", r.Flags, err)
			}
		}
		for _, e := range res.Errors {
			if e.Line < 1 || e.Line > res.Lines || used[e.Line] {
				t.Fatalf("error on line %d (file has %d lines, record there: %v): %v", e.Line, res.Lines, used[e.Line], e)
			}
			used[e.Line] = true
		}
	})
}
