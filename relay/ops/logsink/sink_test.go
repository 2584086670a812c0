package logsink

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var jst = time.FixedZone("JST", 9*3600)

// at is a fixed record time: 2026-11-29 14:05:06 JST.
var at = time.Date(2026, 11, 29, 5, 5, 6, 0, time.UTC)

// record builds a record the way a slog.Logger would.
func record(level slog.Level, msg string, args ...any) slog.Record {
	r := slog.NewRecord(at, level, msg, 0)
	r.Add(args...)
	return r
}

// The records below are the shapes the gateway's call sites log
// (relay/session, relay/gateway, relay/runner); session loggers carry session
// and client bound with With.
var goldenCases = []struct {
	kind  string
	bound []any
	recs  []slog.Record
}{
	{kind: "accept", recs: []slog.Record{
		// As relay/session and relay/gateway write them.
		record(slog.LevelInfo, "connection opened", "kind", "accept", "session", "K3J5A", "client", "192.0.2.10", "listener", "mx/0.0.0.0:25", "tls", false),
		record(slog.LevelWarn, "connection refused", "kind", "accept", "client", "192.0.2.11", "listener", "mx/0.0.0.0:25", "reason", "too many connections from your address"),
		record(slog.LevelInfo, "connection closed", "kind", "accept", "session", "K3J5A", "client", "192.0.2.10", "listener", "mx/0.0.0.0:25", "messages", 1),
	}},
	{kind: "receive", bound: []any{"session", "k3j5a", "client", "10.1.2.3"}, recs: []slog.Record{
		record(slog.LevelInfo, "accepted", "kind", "receive", "id", "01JD0000000000000000000001", "helo", "pc01.city.example.lg.jp",
			"auth", "", "from", "tanaka@city.example.lg.jp", "orig_from", "tanaka@city.example.jp",
			"rcpts", "suzuki@city.example.lg.jp,tanaka@city.example.lg.jp", "orig_rcpts", "suzuki@city.example.jp,info@city.example.jp",
			"size", int64(2048), "source", "inner", "tls", false, "verdict", "accept", "rules", "inner-networks", "took_ms", int64(3)),
		record(slog.LevelInfo, "accepted", "kind", "receive", "id", "01JD0000000000000000000002", "helo", "evil\tcolumn\nforged line",
			"auth", "baito", "from", "", "orig_from", "", "rcpts", "a@b", "orig_rcpts", "a@b", "size", int64(10), "tls", true, "rules", ""),
	}},
	{kind: "reject", bound: []any{"session", "k3j5b", "client", "198.51.100.7"}, recs: []slog.Record{
		record(slog.LevelInfo, "refused", "kind", "reject", "stage", "rcpt", "arg", "someone@example.com", "from", "spam@example.net",
			"code", 554, "enhanced", "5.7.1", "rule", "norelay", "reason", "relaying denied"),
		record(slog.LevelWarn, "data failed", "kind", "reject", "stage", "data", "during", "spool", "error", errors.New("no space left on device"), "code", 451),
	}},
	{kind: "send", recs: []slog.Record{
		record(slog.LevelInfo, "delivery", "kind", "send", "id", "01JD0000000000000000000001", "rcpt", "suzuki@city.example.lg.jp",
			"from", "tanaka@city.example.lg.jp", "hop", "inner", "remote", "10.0.0.5:20025", "result", "delivered", "code", 250,
			"reply", "2.0.0 Ok: queued as 4F1", "attempt", 1, "delay_s", 0),
	}},
	{kind: "fail", recs: []slog.Record{
		record(slog.LevelInfo, "delivery", "kind", "fail", "id", "01JD0000000000000000000003", "rcpt", "nobody@example.com",
			"from", "tanaka@city.example.lg.jp", "hop", "mx", "remote", "203.0.113.9:25", "result", "failed", "code", 550,
			"reply", "5.1.1 user unknown", "attempt", 2, "delay_s", 121),
		record(slog.LevelInfo, "dsn queued", "kind", "fail", "action", "failed", "id", "01JD0000000000000000000003",
			"dsn", "01JD0000000000000000000004", "to", "tanaka@city.example.lg.jp", "recipients", 1),
	}},
	{kind: "auth", bound: []any{"session", "k3j5c", "client", "10.1.2.4"}, recs: []slog.Record{
		record(slog.LevelInfo, "auth", "kind", "auth", "user", "tanaka@city.example.lg.jp", "mechanism", "PLAIN"),
		record(slog.LevelWarn, "auth failed", "kind", "auth", "user", "tanaka", "reason", "bad credentials"),
	}},
	{kind: "reload", recs: []slog.Record{
		record(slog.LevelInfo, "configuration reloaded", "kind", "reload", "accounts", 1234),
		record(slog.LevelError, "reload refused; the running configuration stays", "kind", "reload",
			"error", errors.New("sekisho.yaml: relay.hostname: \"\" is not a host name")),
	}},
}

// TestEpostGolden writes every kind to its own file in the epost layout
// through the whole sink, as serve does, and compares with the golden file.
func TestEpostGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.kind+".log")
			var stderr bytes.Buffer
			s, err := New(Options{Format: "text", Level: "debug", Stderr: &stderr, Location: jst,
				Outputs: []Output{{Kinds: []string{tc.kind}, File: path, Format: "epost"}}})
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(s.Handler()).With(tc.bound...)
			for _, r := range tc.recs {
				if err := log.Handler().Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if stderr.Len() != 0 {
				t.Errorf("a %s record reached the main stream: %s", tc.kind, stderr.String())
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.kind+".golden"), got)
			for i, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
				if !strings.HasPrefix(line, "2026/11/29 14:05:06\t") {
					t.Errorf("line %d does not start with the JST time stamp: %q", i+1, line)
				}
			}
			if n := strings.Count(string(got), "\n"); n != len(tc.recs) {
				t.Errorf("%d lines for %d records", n, len(tc.recs))
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestRouting checks where each record goes: a kind with outputs goes only
// there (to each of them), anything else to the main stream; a kind bound
// with With routes like one on the record; per-output levels hold.
func TestRouting(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	var main bytes.Buffer
	s, err := New(Options{Format: "json", Level: "info", Stderr: &main, Location: jst, Outputs: []Output{
		{Kinds: []string{"receive", "reject"}, File: p("receivelog"), Format: "epost"},
		{Kinds: []string{"reject"}, File: p("reject.json"), Format: "json"},
		{Kinds: []string{"accept"}, File: p("acceptlog"), Level: "debug"},
		{Kinds: []string{"send"}, File: p("senderlog"), Format: "text", Level: "warn"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(s.Handler())
	log.Info("accepted", "kind", "receive", "id", "A")
	log.Info("refused", "kind", "reject", "stage", "rcpt")
	log.Debug("connect", "kind", "accept", "client", "192.0.2.1")
	log.Debug("hidden", "kind", "auth")
	log.Info("delivery", "kind", "send", "id", "B")
	log.Info("listening", "kind", "start")
	log.With("kind", "accept").Info("bound kind", "client", "192.0.2.2")
	log.WithGroup("g").Info("grouped kind is not the record's", "kind", "receive")
	s.Close()

	read := func(n string) string {
		b, err := os.ReadFile(p(n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, got  string
		want, nots []string
	}{
		{"main", main.String(), []string{`"kind":"start"`, `"g":{"kind":"receive"}`}, []string{"accepted", "refused", "connect", "hidden", "delivery", "bound kind"}},
		{"receivelog", read("receivelog"), []string{"\tA\t", "\trcpt\t"}, []string{"connect"}},
		{"reject.json", read("reject.json"), []string{`"stage":"rcpt"`}, []string{"accepted"}},
		{"acceptlog", read("acceptlog"), []string{"192.0.2.1\t-\tconnect", "192.0.2.2\t-\tbound kind"}, nil},
		{"senderlog", read("senderlog"), nil, []string{"delivery"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.got, w) {
				t.Errorf("%s lacks %q:\n%s", c.name, w, c.got)
			}
		}
		for _, n := range c.nots {
			if strings.Contains(c.got, n) {
				t.Errorf("%s has %q:\n%s", c.name, n, c.got)
			}
		}
	}
}

// TestReopen follows logrotate: the file is renamed, Reopen creates a new
// one, and records after it land in the new file only.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sekisho.log")
	s, err := New(Options{File: path, Format: "text", Level: "info", Outputs: []Output{
		{Kinds: []string{"send"}, File: filepath.Join(dir, "senderlog")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := slog.New(s.Handler())
	log.Info("before", "kind", "start")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	log.Info("between", "kind", "start")
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("after", "kind", "start")
	s.Close() // a record may wait for a millisecond: Close writes it
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "before") || !strings.Contains(string(old), "between") || strings.Contains(string(old), "after") {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), "after") || strings.Contains(string(cur), "between") {
		t.Errorf("new file: %q", cur)
	}
}

// TestWriteFailure: a log file that cannot be written is reported once on
// standard error, and the recovery too.
func TestWriteFailure(t *testing.T) {
	var stderr bytes.Buffer
	f := newFile("/dev/full", &stderr)
	if err := f.Reopen(); err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	// The first record is written at once and fails; the next ones come
	// within busyGap and are written later, reporting nothing new.
	if _, err := f.Write([]byte("x\n")); err == nil {
		t.Fatal("writing /dev/full succeeded")
	}
	for range 2 {
		f.Write([]byte("x\n"))
	}
	f.Close()
	if n := strings.Count(stderr.String(), "records are lost"); n != 1 {
		t.Errorf("reported %d times: %q", n, stderr.String())
	}
}

func TestValidateOutputs(t *testing.T) {
	for _, c := range []struct {
		outs []Output
		want string
	}{
		{[]Output{{Kinds: []string{"send"}, File: "/x"}}, ""},
		{[]Output{{Kinds: []string{"sent"}, File: "/x"}}, `outputs[0].kinds[0]: "sent" is not a log kind`},
		{[]Output{{Kinds: []string{"send"}}}, "outputs[0].file: required"},
		{[]Output{{File: "/x"}}, "outputs[0].kinds: lists no kind"},
		{[]Output{{Kinds: []string{"send"}, File: "/x", Format: "xml"}}, `outputs[0].format: "xml" is not a log format`},
		{[]Output{{Kinds: []string{"send"}, File: "/x", Level: "loud"}}, `outputs[0].level: "loud" is not a level`},
		{[]Output{{Kinds: []string{"send"}, File: "/x"}, {Kinds: []string{"fail"}, File: "/x", Format: "json"}}, "outputs[1].format: /x is also written as epost"},
	} {
		err := ValidateOutputs(c.outs)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.outs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want %q", c.outs, err, c.want)
		}
	}
}

// FuzzEpostLine: whatever a client sends, a record is one line and its
// columns stay in place.
func FuzzEpostLine(f *testing.F) {
	f.Add("pc01", "a@b")
	f.Add("x\ty\nz\r", "\\\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, helo, from string) {
		var buf bytes.Buffer
		h := newEpostHandler(&buf, slog.LevelDebug, jst)
		r := record(slog.LevelInfo, "accepted", "kind", "receive", "helo", helo, "from", from, "extra", helo)
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("not one line: %q", line)
		}
		cols := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if want := 1 + len(layouts["receive"].columns) + 1; len(cols) != want {
			t.Fatalf("%d columns, want %d: %q", len(cols), want, line)
		}
		if strings.ContainsAny(line, "\r\x00\u2028") {
			t.Fatalf("control character in %q", line)
		}
	})
}

// TestConcurrentWritesAndRotation: lines written by many goroutines, some
// of them coalesced into one write behind another's, each land whole and
// exactly once, across a rotation (rename, then Reopen) in the middle.
func TestConcurrentWritesAndRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main.log")
	f := newFile(path, io.Discard)
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if _, err := fmt.Fprintf(f, "writer=%d line=%d %s\n", w, i, strings.Repeat("x", i%300)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range []string{path + ".1", path} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if l == "" && len(data) == 0 {
				continue // rotated before the first line
			}
			var w, i int
			var pad string
			if n, _ := fmt.Sscanf(l, "writer=%d line=%d %s", &w, &i, &pad); n < 2 || len(pad) != i%300 && !(i%300 == 0 && pad == "") {
				t.Fatalf("%s: torn or mixed line %q", name, l)
			}
			key := fmt.Sprint(w, " ", i)
			if seen[key] {
				t.Fatalf("line %s written twice", key)
			}
			seen[key] = true
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d lines in the files, want %d", len(seen), writers*lines)
	}
}

// A record on a quiet file is written before Write returns; records in a
// burst are collected and reach the file within a few milliseconds,
// without Close.
func TestQuietAndBusyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "main.log")
	f := newFile(path, io.Discard)
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("first\n"))
	if b, _ := os.ReadFile(path); string(b) != "first\n" {
		t.Fatalf("a record on a quiet file was not written at once: %q", b)
	}
	for i := range 100 {
		fmt.Fprintf(f, "burst %d\n", i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") == 101 && strings.HasSuffix(string(b), "burst 99\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the burst did not reach the file: %d lines", strings.Count(string(b), "\n"))
		}
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	writes := f.writes
	f.mu.Unlock()
	if writes > 50 {
		t.Errorf("101 records took %d writes: a burst was not collected", writes)
	}
}
