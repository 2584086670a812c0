package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/safeio"
)

// fileHeader opens every directory file; the version lets a later format
// be told apart instead of misread.
const fileHeader = "#sekisho-directory v1"

// The directory file (FORMAT.md has the reference):
//
//	#sekisho-directory v1
//	account<TAB>local@domain<TAB>flags<TAB>secret<TAB>display name
//	alias<TAB>pattern<TAB>target
//
// Empty flags and secret are written "-". Lines starting with '#' after the
// header are comments. The display name is last so it may hold spaces.

// ReadFile parses a directory file. A missing file is an error: a gateway
// pointed at the wrong path must not start with nobody in it.
func ReadFile(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: directory file does not exist (create it with 'sekisho accounts sync')", path)
		}
		return nil, err
	}
	return ParseFile(path, data)
}

// ParseFile parses directory file content; name is used in errors.
func ParseFile(name string, data []byte) ([]Record, error) {
	// One string for the whole file: records slice into it, so a large
	// directory costs one allocation for its text instead of one per field.
	text := string(data)
	var errs []error
	records := make([]Record, 0, bytes.Count(data, []byte{'\n'}))
	line := 0
	for len(text) > 0 {
		line++
		var l string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, ""
		}
		l = strings.TrimSuffix(l, "\r")
		if line == 1 {
			if l != fileHeader {
				return nil, fmt.Errorf("%s:1: not a sekisho directory file (want first line %q)", name, fileHeader)
			}
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		if strings.HasPrefix(l, "allow\t") {
			err := attachAllow(records, l)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %v", name, line, err))
			}
			continue
		}
		r, err := parseLine(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %v", name, line, err))
			if len(errs) >= 100 {
				errs = append(errs, fmt.Errorf("%s: too many errors, stopped", name))
				break
			}
			continue
		}
		r.Line = line
		records = append(records, r)
	}
	if line == 0 {
		return nil, fmt.Errorf("%s: empty file (want first line %q)", name, fileHeader)
	}
	return records, errors.Join(errs...)
}

// attachAllow reads "allow<TAB>address<TAB>entry,entry" into the allow list
// of the account on the line just before it.
func attachAllow(records []Record, l string) error {
	_, rest, _ := strings.Cut(l, "\t")
	address, list, ok := strings.Cut(rest, "\t")
	if !ok || list == "" || strings.Contains(list, "\t") {
		return errors.New("allow line needs 3 tab-separated fields: allow, address, entries (comma-separated)")
	}
	if len(records) == 0 || records[len(records)-1].IsAlias() || records[len(records)-1].Address() != address {
		return fmt.Errorf("allow line for %s must follow the account line of %s", address, address)
	}
	prev := &records[len(records)-1]
	if prev.Allow != nil {
		return fmt.Errorf("a second allow line for %s", address)
	}
	for _, e := range strings.Split(list, ",") {
		n, err := NormalizeAllow(e)
		if err != nil {
			return err
		}
		prev.Allow = append(prev.Allow, n)
	}
	return nil
}

func parseLine(l string) (Record, error) {
	kind, rest, _ := strings.Cut(l, "\t")
	switch kind {
	case "account":
		address, rest, ok1 := strings.Cut(rest, "\t")
		flags, rest, ok2 := strings.Cut(rest, "\t")
		secret, name, ok3 := strings.Cut(rest, "\t")
		if !ok1 || !ok2 || !ok3 {
			return Record{}, errors.New("account line needs 5 tab-separated fields: account, address, flags, secret, name")
		}
		local, domain, err := addr.Parse(address)
		if err != nil {
			return Record{}, err
		}
		f, err := ParseFlags(flags)
		if err != nil {
			return Record{}, err
		}
		if secret == "-" {
			secret = ""
		}
		if name == "-" {
			name = ""
		}
		return Record{Local: local, Domain: domain, Name: name, Secret: secret, Flags: f}, nil
	case "alias":
		pattern, target, ok := strings.Cut(rest, "\t")
		if !ok || strings.Contains(target, "\t") {
			return Record{}, errors.New("alias line needs 3 tab-separated fields: alias, pattern, target")
		}
		if _, err := parseAliasPattern(pattern); err != nil {
			return Record{}, err
		}
		if err := checkAliasTarget(pattern, target); err != nil {
			return Record{}, fmt.Errorf("alias %s: target: %v", pattern, err)
		}
		return Record{Alias: pattern, Target: target}, nil
	}
	return Record{}, fmt.Errorf("unknown entry %q (want account or alias)", kind)
}

// WriteRecords writes records in directory file format, sorted (accounts by
// domain then local part, then aliases), so files diff well.
func WriteRecords(w io.Writer, records []Record) error {
	order := sortedOrder(records)
	if _, err := io.WriteString(w, fileHeader+"\n"); err != nil {
		return err
	}
	var b []byte
	for _, i := range order {
		r := &records[i]
		b = b[:0]
		if r.IsAlias() {
			b = append(b, "alias\t"...)
			b = append(b, r.Alias...)
			b = append(b, '\t')
			b = append(b, r.Target...)
		} else {
			b = append(b, "account\t"...)
			b = append(b, r.Local...)
			b = append(b, '@')
			b = append(b, r.Domain...)
			b = append(b, '\t')
			b = append(b, r.Flags.String()...)
			b = append(b, '\t')
			b = append(b, orDash(r.Secret)...)
			b = append(b, '\t')
			b = append(b, orDash(r.Name)...)
			if len(r.Allow) > 0 {
				b = append(b, "\nallow\t"...)
				b = append(b, r.Local...)
				b = append(b, '@')
				b = append(b, r.Domain...)
				b = append(b, '\t')
				b = append(b, strings.Join(r.Allow, ",")...)
			}
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SortRecords orders records as WriteRecords writes them.
func SortRecords(rs []Record) {
	order := sortedOrder(rs)
	sorted := make([]Record, len(rs))
	for i, j := range order {
		sorted[i] = rs[j]
	}
	copy(rs, sorted)
}

// sortedOrder returns the indexes of rs in file order, stable. Records are
// large, so their indexes are sorted rather than the records; a list that
// is already in order (a directory read and written back) costs one pass.
func sortedOrder(rs []Record) []int32 {
	order := make([]int32, len(rs))
	for i := range order {
		order[i] = int32(i)
	}
	cmp := func(i, j int32) int { return compareRecords(&rs[i], &rs[j]) }
	if !slices.IsSortedFunc(order, cmp) {
		slices.SortStableFunc(order, cmp)
	}
	return order
}

func compareRecords(a, b *Record) int {
	switch {
	case a.IsAlias() != b.IsAlias():
		if a.IsAlias() {
			return 1
		}
		return -1
	case a.IsAlias():
		return strings.Compare(a.Alias, b.Alias)
	case a.Domain != b.Domain:
		return strings.Compare(a.Domain, b.Domain)
	}
	return strings.Compare(a.Local, b.Local)
}

// WriteFile atomically replaces the directory file at path, keeping the
// previous one as path+".bak".
func WriteFile(path string, records []Record) error {
	if err := safeio.Backup(path, path+".bak", 0o640); err != nil {
		return fmt.Errorf("keeping the previous directory as %s.bak: %w", path, err)
	}
	return safeio.WriteFileFunc(path, 0o640, func(w io.Writer) error {
		return WriteRecords(w, records)
	})
}

// Open builds the Directory from the configuration and its directory file.
func Open(cfg Config) (*Directory, error) {
	var records []Record
	if cfg.Directory != "" {
		var err error
		if records, err = ReadFile(cfg.Directory); err != nil {
			return nil, err
		}
	}
	return Build(cfg, cfg.Directory, records)
}
