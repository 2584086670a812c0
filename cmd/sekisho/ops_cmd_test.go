package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestOptionsBeforeSubcommand: "queue -c FILE list" is "queue list -c FILE".
func TestOptionsBeforeSubcommand(t *testing.T) {
	_, cfg, _, ids := queueWorld(t)
	want, errOut, code := runSekisho(t, "", "queue", "list", "-c", cfg)
	if code != exitOK {
		t.Fatalf("queue list -c: %d %s", code, errOut)
	}
	got, errOut, code := runSekisho(t, "", "queue", "-c", cfg, "list")
	if code != exitOK || got != want || !strings.Contains(got, ids[1].String()) {
		t.Errorf("queue -c FILE list: %d %q\n%s\nwant\n%s", code, errOut, got, want)
	}
	if _, _, code := runSekisho(t, "", "queue", "-c", cfg, "frobnicate"); code != exitUsage {
		t.Errorf("an unknown sub-subcommand after options: exit %d", code)
	}
	for in, want := range map[string]string{
		"queue -c F list":        "queue list -c F",
		"queue -c F show ID":     "queue show -c F ID",
		"accounts -c F check a":  "accounts check -c F a",
		"queue list -c F":        "queue list -c F",
		"serve -c F":             "serve -c F",
		"queue -c F -- list":     "queue -c F -- list",
		"rewrite -c list test x": "rewrite test -c list x", // the first word that completes a command wins
	} {
		if got := strings.Join(subcommandFirst(strings.Fields(in)), " "); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, errOut, code := runSekisho(t, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "sekisho ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: %d %q %q", code, out, errOut)
	}
	out, _, code = runSekisho(t, "", "version", "--json")
	var v buildVersion
	if code != exitOK || json.Unmarshal([]byte(out), &v) != nil || v.Go != runtime.Version() || v.Module != "github.com/sekisho/sekisho" {
		t.Errorf("version --json: %d %q", code, out)
	}
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "sekisho v1.2.3 go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-29T04:58:36Z"}, {Key: "vcs.modified", Value: "true"}}},
			"sekisho (devel) commit abc123 (modified) 2026-11-29T04:58:36Z go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0"}, "sekisho (devel) go1.26.0"},
	} {
		if got := readVersion(&c.bi).String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// TestServeRefusesBeforeCreatingFolders: a configuration serve cannot run
// (invalid, a port in use, a bad --listen) creates no queue folder.
func TestServeRefusesBeforeCreatingFolders(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	write := func(name, listen string, extra string) string {
		p := filepath.Join(dir, name)
		writeConfig(t, p, `
accounts:
  domains: [{name: example.lg.jp}]
relay:
  hostname: gw.example.lg.jp
  listeners: [{address: "`+listen+`", mode: mx}]
  queue: {dir: spool-`+name+`}
`+extra)
		return p
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"invalid", []string{"-c", write("invalid.yaml", "127.0.0.1:0", "  limits: {max_recipients: 0}\n")}, "relay.limits.max_recipients: must be positive or unlimited"},
		{"port in use", []string{"-c", write("busy.yaml", busy.Addr().String(), "")}, "relay.listeners[0].address:"},
		{"bad --listen", []string{"-c", write("listen.yaml", "127.0.0.1:0", ""), "--listen", "nowhere"}, "--listen nowhere:"},
		{"--listen in use", []string{"-c", write("listen2.yaml", "127.0.0.1:0", ""), "--listen", busy.Addr().String()}, "relay.listeners[0].address:"},
		{"metrics port in use", []string{"-c", write("metrics.yaml", "127.0.0.1:0", "  metrics: {address: \""+busy.Addr().String()+"\"}\n")}, "relay.metrics.address:"},
	} {
		_, errOut, code := runSekisho(t, "", append([]string{"serve"}, c.args...)...)
		if code != exitFinding || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.name, code, errOut, c.want)
		}
	}
	spools, _ := filepath.Glob(filepath.Join(dir, "spool-*"))
	if len(spools) > 0 {
		t.Errorf("refused configurations created %v", spools)
	}
}

// TestUnlimited: E-Post's "unlimited" is accepted for the limits it
// allowed, warned about, shown as written; a number 0 stays an error.
func TestUnlimited(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeConfig(t, cfg, `
accounts:
  domains: [{name: example.lg.jp}]
relay:
  hostname: gw.example.lg.jp
  limits: {max_message_bytes: unlimited, max_recipients: UNLIMITED}
`)
	out, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg, "--show")
	if code != exitOK || !strings.Contains(errOut, "warning: relay.limits.max_message_bytes: unlimited") ||
		!strings.Contains(errOut, "warning: relay.limits.max_recipients: unlimited") ||
		!strings.Contains(out, "max_message_bytes: unlimited") || !strings.Contains(out, "max_recipients: unlimited") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	loaded, err := loadConfig(cfg)
	if err != nil || loaded.Relay.Limits.MaxMessageBytes != 0 || loaded.Relay.Limits.MaxRecipients != 0 {
		t.Errorf("loaded %+v, %v", loaded.Relay.Limits, err)
	}
	for text, want := range map[string]string{
		"relay:\n  limits: {max_line_length: unlimited}\n": "relay.limits.max_line_length: unlimited is allowed only for max_message_bytes, max_recipients",
		"relay:\n  limits: {max_connections: 0}\n":         "relay.limits.max_connections: must be positive or unlimited, got 0",
	} {
		writeConfig(t, cfg, text)
		_, errOut, code = runSekisho(t, "", "config", "check", "-c", cfg)
		if code != exitFinding || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stderr %s", text, code, errOut)
		}
	}
}

// TestImportEffectDatPastes: the printed block, appended to a
// configuration as it is, passes config check and decides like the file.
func TestImportEffectDatPastes(t *testing.T) {
	dir := t.TempDir()
	dat := filepath.Join(dir, "effect.dat")
	os.WriteFile(dat, []byte("192.168.0.10 true\n192.168.1.0/24\nnorelay\n"), 0o644)
	block, errOut, code := runSekisho(t, "", "import", "effect-dat", dat)
	if code != exitOK {
		t.Fatalf("import: %d %s", code, errOut)
	}
	cfg := filepath.Join(dir, "c.yaml")
	writeConfig(t, cfg, "accounts:\n  domains: [{name: example.lg.jp}]\n"+block)
	if out, errOut, code := runSekisho(t, "", "config", "check", "-c", cfg); code != exitOK {
		t.Fatalf("config check of the pasted block: %d %s %s\n%s", code, out, errOut, block)
	}
	for client, want := range map[string]string{"192.168.0.10": "accept", "192.168.1.7": "accept", "198.18.0.1": "reject"} {
		out, errOut, _ := runSekisho(t, "", "relay", "test", "-c", cfg, "--client", client, "--from", "a@example.org", "--rcpt", "b@example.com", "--json")
		var res struct {
			Steps []struct{ Stage, Verdict string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%s: %v %s", client, err, errOut)
		}
		for _, s := range res.Steps {
			if s.Stage == "rcpt" && s.Verdict != want {
				t.Errorf("%s: rcpt %s, want %s", client, s.Verdict, want)
			}
		}
	}
}

// TestDryRunsByListenerAndTime: relay test and relay session take a
// listener's name (its rules apply) and relay test a time.
func TestDryRunsByListenerAndTime(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeConfig(t, cfg, `
accounts:
  domains: [{name: example.lg.jp}]
relay:
  hostname: gw.example.lg.jp
  listeners:
    - {name: inside, address: "127.0.0.1:2599", mode: mx}
  guard:
    rules:
      - {name: inside-office-hours, action: allow, listeners: [inside], times: ["Mon-Fri 08:30-17:15"]}
`)
	rcpt := func(args ...string) string {
		t.Helper()
		out, errOut, code := runSekisho(t, "", append([]string{"relay", "test", "-c", cfg, "--client", "198.18.0.1",
			"--from", "a@example.org", "--rcpt", "b@example.com", "--json"}, args...)...)
		// relay test exits 1 when a step refuses; the steps say which.
		if code != exitOK && code != exitFinding {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
		var res struct {
			Steps []struct{ Stage, Verdict, Rule string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Steps {
			if s.Stage == "rcpt" {
				return s.Verdict + " " + s.Rule
			}
		}
		return "no rcpt step"
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listener", "inside", "--at", "2026-11-30 10:00"}, "accept inside-office-hours"},
		{[]string{"--listener", "inside", "--at", "2026-11-30 18:00"}, "reject builtin:relay"},
		{[]string{"--listener", "mx", "--at", "2026-11-30 10:00"}, "reject builtin:relay"},
	} {
		if got := rcpt(c.args...); got != c.want {
			t.Errorf("%v: %s, want %s", c.args, got, c.want)
		}
	}
	// relay session reads the clock; a rule by listener alone decides
	// whatever the time is.
	writeConfig(t, cfg, strings.Replace(readFileString(t, cfg), `, times: ["Mon-Fri 08:30-17:15"]`, "", 1))
	dialogue := "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nQUIT\r\n"
	for listener, want := range map[string]string{"inside": "250 2.1.5 Recipient <b@example.com> OK", "mx": "554 5.7.1 Relay access denied"} {
		out, errOut, code := runSekisho(t, dialogue, "relay", "session", "-q", "-c", cfg, "--client", "198.18.0.1", "--listener", listener)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("relay session --listener %s: %d %s\n%s", listener, code, errOut, out)
		}
	}
	if _, errOut, code := runSekisho(t, "", "relay", "test", "-c", cfg, "--client", "198.18.0.1", "--rcpt", "b@example.com", "--at", "tomorrow"); code != exitUsage || !strings.Contains(errOut, "--at") {
		t.Errorf("bad --at: %d %s", code, errOut)
	}
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// --version is the version command.
func TestVersionFlag(t *testing.T) {
	want, _, _ := runSekisho(t, "", "version")
	for _, flag := range []string{"--version", "-V"} {
		if out, errOut, code := runSekisho(t, "", flag); code != exitOK || out != want {
			t.Errorf("%s: exit %d, %q %q; want %q", flag, code, out, errOut, want)
		}
	}
}

// Every group of commands answers with its commands: named alone, with
// --help or help, and after an unknown command of the group.
func TestCommandGroupHelp(t *testing.T) {
	groups := map[string]bool{}
	for n := range commands {
		if g, _, ok := strings.Cut(n, " "); ok {
			groups[g] = true
		}
	}
	if len(groups) < 8 {
		t.Fatalf("only %d groups", len(groups))
	}
	for g := range groups {
		for _, tc := range []struct {
			args   []string
			code   int
			stdout bool
		}{
			{[]string{g}, exitUsage, true},
			{[]string{g, "--help"}, exitOK, true},
			{[]string{g, "-h"}, exitOK, true},
			{[]string{"help", g}, exitOK, true},
			{[]string{g, "bogus"}, exitUsage, false},
			{[]string{g, "-c", "x.yaml"}, exitUsage, false},
		} {
			out, errOut, code := runSekisho(t, "", tc.args...)
			text := errOut
			if tc.stdout {
				text = out
			}
			if code != tc.code || !strings.Contains(text, "usage: sekisho "+g+" COMMAND") {
				t.Errorf("%q: exit %d (want %d)\nstdout %s\nstderr %s", tc.args, code, tc.code, out, errOut)
				continue
			}
			for _, n := range groupCommands(g) {
				if !strings.Contains(text, n+" ") {
					t.Errorf("%q: %s is not listed", tc.args, n)
				}
			}
		}
	}
	// help COMMAND is COMMAND --help.
	if out, _, code := runSekisho(t, "", "help", "queue", "list"); code != exitOK || !strings.Contains(out, "usage: sekisho queue list") {
		t.Errorf("help queue list: exit %d\n%s", code, out)
	}
}

// A configuration file that cannot be read says what to do about it.
func TestMissingConfigSaysWhatToDo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "sekisho.yaml")
	for _, args := range [][]string{{"config", "check", missing}, {"serve", "-c", missing}, {"queue", "list", "-c", missing}} {
		_, errOut, code := runSekisho(t, "", args...)
		if code != exitFinding || !strings.Contains(errOut, "no such file") || !strings.Contains(errOut, "Give the path of your configuration") {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
}
