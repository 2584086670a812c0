package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden files are rewritten with -update-golden (the flag this package's
// command tests share, defined in accounts_cmd_test.go).

const rwDir = "testdata/rewrite/"

// runCmd runs the command in process and renders exit status, stdout and
// stderr, with the working directory replaced by "." so that golden files
// do not depend on where the tree is.
func runRewriteCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := dispatch(&cmdEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, args)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	clean := func(s string) string { return strings.ReplaceAll(s, wd+string(filepath.Separator), "./") }
	return code, clean(stdout.String()), clean(stderr.String())
}

func TestRewriteTestGolden(t *testing.T) {
	msg := rwDir + "toyokawa.eml"
	cfg := rwDir + "config.yaml"
	env := []string{"--from", "user@city.toyokawa.aichi.jp", "--rcpt", "kikaku@pref.aichi.jp", "--rcpt", "yamada-h@pref.aichi.jp", "--rcpt", "info@example.com"}
	tests := []struct {
		golden string
		args   []string
		code   int
	}{
		{"message.txt", append([]string{"rewrite", "test", "-c", cfg, "--message", msg}, env...), exitOK},
		{"message.json", append([]string{"rewrite", "test", "-c", cfg, "--message", msg, "--json"}, env...), exitOK},
		{"message-envelope-from-header.txt", []string{"rewrite", "test", "-c", cfg, "--message", msg}, exitOK},
		{"message-broken.txt", []string{"rewrite", "test", "-c", cfg, "--message", rwDir + "broken.eml", "--from", "user@city.toyokawa.aichi.jp"}, exitOK},
		{"message-internet.txt", append([]string{"rewrite", "test", "-c", cfg, "--message", msg, "--source", "internet"}, env...), exitOK},
		{"message-set-to-inner.txt", append([]string{"rewrite", "test", "-c", cfg, "--message", msg, "--set", "to-inner"}, env...), exitOK},
		{"message-no-dns.txt", append([]string{"rewrite", "test", "-c", cfg, "--message", msg, "--no-dns"}, env...), exitOK},
		// The shipped example and message README.ja shows.
		{"municipal-mixed.txt", []string{"rewrite", "test", "-c", "../../configs/municipal-gateway.yaml",
			"--message", "../../configs/mixed-recipients.eml", "--no-dns", "--from", "tanaka@city.toyokawa.aichi.jp",
			"--rcpt", "kikaku@city.nagoya.jp", "--rcpt", "partner@example.com", "--rcpt", "bucho@city.toyokawa.aichi.jp"}, exitOK},
		{"addresses.txt", []string{"rewrite", "test", "-c", cfg, "--from", "user@city.toyokawa.aichi.jp",
			"--rcpt", "kikaku@pref.aichi.jp", "--rcpt", "soumu@pref.aichi.jp", "--rcpt", "friend@example.com"}, exitOK},
		{"addresses.json", []string{"rewrite", "test", "--json", "-c", cfg, "--from", "user@city.toyokawa.aichi.jp", "--rcpt", "Kikaku@Pref.Aichi.JP"}, exitOK},
		{"addresses-null-sender.txt", []string{"rewrite", "test", "-c", cfg, "--from", "<>", "--rcpt", "kikaku@pref.aichi.jp"}, exitOK},
		{"set-to-inner.txt", []string{"rewrite", "test", "-c", cfg, "--set", "to-inner", "--source", "internet",
			"--from", "kikaku@pref.aichi.lg.jp", "--rcpt", "user@city.toyokawa.lg.jp"}, exitOK},
		{"error-bad-address.txt", []string{"rewrite", "test", "-c", cfg, "--rcpt", "nodomain"}, exitFinding},
		{"error-unknown-set.txt", []string{"rewrite", "test", "-c", cfg, "--set", "nope", "--rcpt", "a@pref.aichi.jp"}, exitFinding},
		{"error-bad-config.txt", []string{"rewrite", "test", "-c", rwDir + "bad-config.yaml", "--rcpt", "a@pref.aichi.jp"}, exitFinding},
		{"error-no-message.txt", []string{"rewrite", "test", "-c", cfg, "--message", rwDir + "missing.eml"}, exitFinding},
		{"usage-no-config.txt", []string{"rewrite", "test", "--rcpt", "a@pref.aichi.jp"}, exitUsage},
		{"usage-no-input.txt", []string{"rewrite", "test", "-c", cfg}, exitUsage},
		{"usage-bad-source.txt", []string{"rewrite", "test", "-c", cfg, "--source", "lgwan", "--rcpt", "a@pref.aichi.jp"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := runRewriteCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			got := fmt.Sprintf("$ sekisho %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(tt.args, " "), code, stdout, stderr)
			path := filepath.Join(rwDir, "golden", tt.golden)
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-golden to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update-golden after checking):\n%s", path, got)
			}
		})
	}
}

// TestRewriteTestDoneWhen is the acceptance check, asserted
// directly rather than only through a golden file: an ISO-2022-JP message
// from the inner server has its Toyokawa sender and its pref.aichi.jp
// recipients rewritten to LG domains in envelope and header of the copy
// that goes to them, every byte but the addr-specs stays as it was, and
// the JSON has the named fields.
func TestRewriteTestDoneWhen(t *testing.T) {
	code, stdout, stderr := runRewriteCmd(t, "rewrite", "test", "-c", rwDir+"config.yaml", "--source", "inner",
		"--message", rwDir+"toyokawa.eml", "--json",
		"--from", "user@city.toyokawa.aichi.jp", "--rcpt", "kikaku@pref.aichi.jp", "--rcpt", "yamada-h@pref.aichi.jp")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	type copyDoc struct {
		Route    string `json:"route"`
		Envelope struct {
			From string   `json:"from"`
			Rcpt []string `json:"rcpt"`
		} `json:"envelope"`
		Headers []struct {
			Field  string `json:"field"`
			Before string `json:"before"`
			After  string `json:"after"`
			Rule   string `json:"rule"`
		} `json:"headers"`
		Trace []json.RawMessage `json:"trace"`
		Diff  string            `json:"diff"`
	}
	var res struct {
		Copies []copyDoc `json:"copies"`
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("not one JSON document: %v", err)
	}
	for _, k := range []string{"queued", "trace", "copies"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Copies) != 1 {
		t.Fatalf("%d copies, want the one to LGWAN:\n%s", len(res.Copies), stdout)
	}
	c := res.Copies[0]
	if c.Route != "lgwan" || c.Envelope.From != "user@city.toyokawa.lg.jp" ||
		strings.Join(c.Envelope.Rcpt, ",") != "kikaku@pref.aichi.lg.jp,yamada-h@pref.aichi.lg.jp" {
		t.Errorf("copy %s, envelope %+v", c.Route, c.Envelope)
	}
	want := map[string]string{
		"user@city.toyokawa.aichi.jp": "user@city.toyokawa.lg.jp",
		"kikaku@pref.aichi.jp":        "kikaku@pref.aichi.lg.jp",
		"yamada-h@pref.aichi.jp":      "yamada-h@pref.aichi.lg.jp",
		"jinji@pref.aichi.jp":         "jinji@pref.aichi.lg.jp",
		"info@example.com":            "info@example.com",
	}
	for _, h := range c.Headers {
		if w, ok := want[h.Before]; ok {
			if h.After != w {
				t.Errorf("%s: %s -> %s, want %s", h.Field, h.Before, h.After, w)
			}
			if w != h.Before && h.Rule != "regional-to-lg" {
				t.Errorf("%s: rule %q", h.Field, h.Rule)
			}
			delete(want, h.Before)
		}
	}
	if len(want) > 0 {
		t.Errorf("header addresses not reported: %v", want)
	}
	if len(c.Trace) < 5 {
		t.Errorf("trace has %d steps", len(c.Trace))
	}
	// Every removed line, with the addresses rewritten, is the added line:
	// display names (ISO-2022-JP encoded words), quotes and comments are
	// byte-identical.
	var minus, plus []string
	for _, l := range strings.Split(c.Diff, "\n") {
		switch {
		case strings.HasPrefix(l, "---"), strings.HasPrefix(l, "+++"):
		case strings.HasPrefix(l, "-"):
			minus = append(minus, l[1:])
		case strings.HasPrefix(l, "+"):
			plus = append(plus, l[1:])
		}
	}
	if len(minus) != 4 || len(minus) != len(plus) {
		t.Fatalf("diff changes %d lines into %d:\n%s", len(minus), len(plus), c.Diff)
	}
	toLG := strings.NewReplacer("city.toyokawa.aichi.jp", "city.toyokawa.lg.jp", "pref.aichi.jp", "pref.aichi.lg.jp")
	for i := range minus {
		if toLG.Replace(minus[i]) != plus[i] {
			t.Errorf("line changed beyond its domains:\n-%s\n+%s", minus[i], plus[i])
		}
		if !strings.Contains(plus[i], "=?ISO-2022-JP?B?") {
			t.Errorf("expected an encoded display name on %q", plus[i])
		}
	}
}

// TestRewriteFormatExample keeps the example of rewrite/FORMAT.md working:
// it loads with the shipped example table and does what the page says.
func TestRewriteFormatExample(t *testing.T) {
	doc, err := os.ReadFile("../../rewrite/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Example: an LGWAN gateway\n\n```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("FORMAT.md lost its example")
	}
	table, err := os.ReadFile("../../configs/lgwan-domains.example.tsv")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lgwan-domains.tsv"), table, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sekisho.yaml")
	if err := os.WriteFile(cfg, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runRewriteCmd(t, "rewrite", "test", "-c", cfg, "--json",
		"--from", "user@city.toyokawa.aichi.jp", "--rcpt", "soumu@pref.aichi.jp", "--rcpt", "kikaku@city.nagoya.jp")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Envelope struct {
			From string   `json:"from"`
			Rcpt []string `json:"rcpt"`
		} `json:"envelope"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// The receive-time rules decide the recipients only; the sender is
	// each copy's set's business.
	if res.Envelope.From != "user@city.toyokawa.aichi.jp" || strings.Join(res.Envelope.Rcpt, ",") != "soumu@pref.aichi.jp,kikaku@city.nagoya.lg.jp" {
		t.Errorf("envelope %+v", res.Envelope)
	}
	code, stdout, stderr = runRewriteCmd(t, "rewrite", "test", "-c", cfg, "--set", "to-lgwan", "--from", "user@city.toyokawa.aichi.jp", "--rcpt", "kikaku@city.nagoya.lg.jp")
	if code != exitOK || !strings.Contains(stdout, "env-from   user@city.toyokawa.aichi.jp -> user@city.toyokawa.lg.jp  [lgwan-addresses]") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runRewriteCmd(t, "rewrite", "test", "-c", cfg, "--set", "to-inner", "--source", "internet", "--rcpt", "user@city.toyokawa.lg.jp")
	if code != exitOK || !strings.Contains(stdout, "env-to     user@city.toyokawa.lg.jp -> user@city.toyokawa.aichi.jp  [lg-to-regional]") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}
