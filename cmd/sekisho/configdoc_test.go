package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The reference page docs/configuration.md must list every configuration
// key, and only real ones, with the default the code really has. These
// tests walk the Config struct by its koanf tags, so a key added, renamed
// or re-defaulted in any package fails here until the page says so.

const configDocPath = "../../docs/configuration.md"

// configKey is one key path of the configuration. Keys inside a list of
// objects are written with "[]": relay.listeners[].address.
type configKey struct {
	path string
	// inList: the key belongs to an entry of a list, so it has no default
	// of its own in DefaultConfig.
	inList bool
	// value is the default (zero Value for keys in lists).
	value reflect.Value
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	stringerType = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()
)

// defaultConfig is the configuration before any file is read: every
// package's DefaultConfig, as parseConfig starts from.

// configKeys lists every key path under v (a struct), following koanf tags
// the way the loader does: "-" is skipped, ",squash" merges the embedded
// struct's keys into its parent, a list of structs gives the list key and
// its entries' keys.
func configKeys(prefix string, v reflect.Value, inList bool) []configKey {
	t := v.Type()
	var out []configKey
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("koanf"), ",")
		if !f.IsExported() || tag[0] == "-" {
			continue
		}
		fv := v.Field(i)
		if len(tag) > 1 && tag[1] == "squash" {
			out = append(out, configKeys(prefix, fv, inList)...)
			continue
		}
		name := tag[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch {
		case isLeaf(f.Type):
			out = append(out, configKey{path: path, inList: inList, value: fv})
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, configKey{path: path, inList: inList, value: fv})
			out = append(out, configKeys(path+"[]", reflect.New(f.Type.Elem()).Elem(), true)...)
		case f.Type.Kind() == reflect.Struct:
			out = append(out, configKeys(path, fv, inList)...)
		default:
			panic(fmt.Sprintf("configKeys: %s: unexpected type %s", path, f.Type))
		}
	}
	return out
}

// isLeaf reports whether a type is set as one value: scalars, durations,
// sizes, lists of scalars.
func isLeaf(t reflect.Type) bool {
	if t == durationType || t.Implements(stringerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Pointer: // a value that may be unset: attachment: false is not no condition
		return isLeaf(t.Elem())
	case reflect.Slice:
		return isLeaf(t.Elem()) && t.Elem().Kind() != reflect.Slice
	}
	return false
}

// formatDefault writes a default the way the reference page shows it, in
// the syntax a configuration file accepts: 5m, 4GiB, "", [postmaster, abuse].
func formatDefault(v reflect.Value) string {
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	if v.Type().Implements(stringerType) {
		return v.Interface().(fmt.Stringer).String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "unset"
		}
		return formatDefault(v.Elem())
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = formatDefault(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration uses the largest unit that divides d exactly, as an
// administrator writes it (2m, not 2m0s).
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.unit)
		}
	}
	return d.String()
}

// docRow is one row of a key table on the reference page.
type docRow struct {
	line         int
	key, dflt    string
	dfltHasValue bool
}

var (
	docRowRE = regexp.MustCompile("^\\|\\s*`([a-z0-9_.\\[\\]]+)`\\s*\\|([^|]*)\\|")
	codeSpan = regexp.MustCompile("`([^`]*)`")
)

// readConfigDoc returns the key rows of the reference page: table rows
// whose first cell is a key path in backquotes. The second cell is the
// default; its first code span is the value.
func readConfigDoc(t *testing.T) map[string]docRow {
	t.Helper()
	data, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docRow{}
	for i, line := range strings.Split(string(data), "\n") {
		m := docRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := docRow{line: i + 1, key: m[1], dflt: strings.TrimSpace(m[2])}
		if c := codeSpan.FindStringSubmatch(r.dflt); c != nil {
			r.dflt, r.dfltHasValue = c[1], true
		}
		if prev, dup := rows[r.key]; dup {
			t.Errorf("%s:%d: %s is already documented at line %d", configDocPath, r.line, r.key, prev.line)
		}
		rows[r.key] = r
	}
	return rows
}

func TestConfigDocListsEveryKey(t *testing.T) {
	keys := configKeys("", reflect.ValueOf(*defaultConfig()), false)
	if len(keys) < 100 {
		t.Fatalf("only %d keys found: the walk is broken", len(keys))
	}
	rows := readConfigDoc(t)
	known := map[string]bool{}
	for _, k := range keys {
		known[k.path] = true
		r, ok := rows[k.path]
		if !ok {
			t.Errorf("%s: key %s (default %s) is not documented", configDocPath, k.path, formatDefault(k.value))
			continue
		}
		if k.inList {
			continue // entries of a list have no default of their own
		}
		want := formatDefault(k.value)
		switch {
		case !r.dfltHasValue:
			t.Errorf("%s:%d: %s: the default column should be `%s`, found %q", configDocPath, r.line, k.path, want, r.dflt)
		case r.dflt != want:
			t.Errorf("%s:%d: %s: documented default `%s`, the code's default is `%s`", configDocPath, r.line, k.path, r.dflt, want)
		}
	}
	var extra []string
	for key, r := range rows {
		if !known[key] {
			extra = append(extra, fmt.Sprintf("%s:%d: %s is documented but is not a configuration key", configDocPath, r.line, key))
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		t.Error(e)
	}
}

// The walk itself must agree with the loader: every key it finds, written
// in a file with its default as the reference page shows it, is accepted by
// the strict decoder and reads back as the same default; a key the walk
// does not know is refused.
func TestConfigKeysAreWhatTheLoaderAccepts(t *testing.T) {
	keys := configKeys("", reflect.ValueOf(*defaultConfig()), false)
	doc := map[string]any{}
	for _, k := range keys {
		if k.inList || (k.value.Kind() == reflect.Slice && k.value.Type().Elem().Kind() == reflect.Struct) {
			continue // lists of objects are exercised by the example configurations
		}
		m := doc
		parts := strings.Split(k.path, ".")
		for _, p := range parts[:len(parts)-1] {
			if m[p] == nil {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		var v any = k.value.Interface()
		if k.value.Type() == durationType || k.value.Type().Implements(stringerType) {
			v = formatDefault(k.value) // written as the page shows it: 5m, 4GiB
		}
		m[parts[len(parts)-1]] = v
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig(data, "walk")
	if err != nil {
		t.Fatalf("the keys found by the walk, with their defaults, do not load:\n%v\n%s", err, data)
	}
	for _, k := range configKeys("", reflect.ValueOf(*cfg), false) {
		if k.inList || k.path == "" {
			continue
		}
		for _, d := range keys {
			if d.path == k.path && !d.inList && formatDefault(d.value) != formatDefault(k.value) {
				t.Errorf("%s: written as %s, read back as %s", k.path, formatDefault(d.value), formatDefault(k.value))
			}
		}
	}
	if _, err := parseConfig([]byte("relay:\n  limits:\n    not_a_key: 1\n"), "walk"); err == nil ||
		!strings.Contains(err.Error(), "relay.limits.not_a_key: unknown key") {
		t.Fatalf("an unknown key was not refused: %v", err)
	}
}

func TestFormatDefault(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{120 * time.Second, "2m"},
		{24 * time.Hour, "24h"},
		{90 * time.Second, "90s"},
		{time.Duration(0), "0"},
		{"", `""`},
		{"text", "text"},
		{[]string{"postmaster", "abuse"}, "[postmaster, abuse]"},
		{[]string(nil), "[]"},
		{int64(25 << 20), "26214400"},
		{1.5, "1.5"},
		{true, "true"},
	} {
		if got := formatDefault(reflect.ValueOf(c.v)); got != c.want {
			t.Errorf("formatDefault(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// Every example configuration in configs/ must load, and must pass what
// `sekisho config check` checks (the files it refers to load too).
func TestExampleConfigsPassConfigCheck(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %v: expected the quickstart and the examples", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := loadConfig(f); err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			out, errOut, code := runSekisho(t, "", "config", "check", "-c", f)
			if code != exitOK {
				t.Fatalf("config check: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}
