package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The interpreter itself: a scenario is only as good as its checks.

func TestDialogueFormat_ReplySpecs(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		reply reply
		ok    bool
	}{
		{"250", reply{code: "250"}, true},
		{"250", reply{code: "251"}, false},
		{"2xx", reply{code: "251"}, true},
		{"5xx", reply{code: "452"}, false},
		{"550 5.1.1", reply{code: "550", enhanced: "5.1.1"}, true},
		{"550 5.1.1", reply{code: "550", enhanced: "5.1.10"}, false},
		{"550 5.1", reply{code: "550", enhanced: "5.1.10"}, true},
		{"550 5.7.1", reply{code: "550", enhanced: ""}, false},
		{"250 ~ AUTH PLAIN", reply{code: "250", lines: []string{"250-x", "250-AUTH PLAIN LOGIN", "250 SIZE"}}, true},
		{"250 ~ auth plain !~ CRAM", reply{code: "250", lines: []string{"250 AUTH PLAIN CRAM-MD5"}}, false},
		{"250 !~ AUTH", reply{code: "250", lines: []string{"250-x", "250 SIZE 1"}}, true},
	} {
		spec, err := parseReplySpec(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if err := spec.check(tc.reply); (err == nil) != tc.ok {
			t.Errorf("%q against %+v: %v, want ok=%v", tc.spec, tc.reply, err, tc.ok)
		}
	}
}

func TestDialogueFormat_Steps(t *testing.T) {
	steps, err := parseDialogue("t.txt", `
# comment
connect mx from inner
S: 220
C: MAIL FROM:<a@b>
D: -- 
R: "a\r.\n"
S: 550 5.6.0 || 250 2.0.0
S: closed
starttls
auth cram-md5 u@test.jp secret
sleep 10ms
sink inner has 2 messages from <> for a@b
sink lgwan has nothing
no sink has anything
`)
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, s := range steps {
		verbs = append(verbs, s.verb)
	}
	want := "connect expect send send send expect closed starttls auth sleep sink sink nosink"
	if got := strings.Join(verbs, " "); got != want {
		t.Fatalf("verbs %q, want %q", got, want)
	}
	if steps[0].args[1] != "inner" || steps[0].line != 3 {
		t.Errorf("connect: %+v", steps[0])
	}
	if steps[3].text != "-- \r\n" {
		t.Errorf("D: lost its trailing space: %q", steps[3].text)
	}
	if steps[4].text != "a\r.\n" {
		t.Errorf("R: %q", steps[4].text)
	}
	if len(steps[5].exp) != 2 {
		t.Errorf("alternatives: %+v", steps[5].exp)
	}
	if s := steps[10]; s.n != 2 || s.args[1] != "from:" || s.args[2] != "a@b" {
		t.Errorf("sink step: %+v", s)
	}

	for _, bad := range []string{
		"S: 25",
		"S: 250 5.x.1",
		"S: 250 ~",
		"X: hello",
		"R: unquoted",
		"connect mx from mars",
		"auth digest-md5 u p",
		"sink inner has some messages",
		"sink inner has 1 message to a@b",
		"no sink has much",
		`sink inner has 1 message containing "open`,
		`sink inner has 1 message containing bare`,
		`sink inner has 1 message containing ""`,
		`sink inner has 1 message containing "a"b`,
		"sink inner has -1 messages",
		"dance",
		"connect",
		"connect mx from",
	} {
		// The error names the file and the line, as a compiler does.
		_, err := parseDialogue("x.txt", "# first\n"+bad)
		if err == nil {
			t.Errorf("%q parsed; want an error", bad)
		} else if !strings.HasPrefix(err.Error(), "x.txt:2: ") {
			t.Errorf("%q: error %q does not start with x.txt:2:", bad, err)
		}
	}
}

// Texts in sink assertions are Go string literals, spaces and all, and
// may repeat; a message must hold every "containing" and no "lacking".
func TestDialogueFormat_SinkTexts(t *testing.T) {
	st, err := parseStep(`sink inner has 1 message from <> containing "Action: failed" containing "5.1.10"  lacking "Action: delayed"`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(st.has, "|") != "Action: failed|5.1.10" || strings.Join(st.lacks, "|") != "Action: delayed" || st.args[1] != "from:" {
		t.Fatalf("parsed %+v", st)
	}
	for data, want := range map[string]bool{
		"Action: failed\r\nStatus: 5.1.10\r\n":                    true,
		"Action: failed\r\nStatus: 5.1.1\r\n":                     false,
		"Action: failed\r\nStatus: 5.1.10\r\nAction: delayed\r\n": false,
		"Action:  failed\r\nStatus: 5.1.10\r\n":                   false,
	} {
		if got := holdsAll([]byte(data), st.has) && !holdsAny([]byte(data), st.lacks); got != want {
			t.Errorf("%q matches: %v, want %v", data, got, want)
		}
	}
}

// A file's errors name its line: the configuration part (numbers alone,
// the runner prefixes the file) and the dialogue part.
func TestDialogueFormat_FileErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"config C\nlimits: {}\n", `1: no "---" line`},
		{"# what\n\nconfig D\n---\n", "3: want \"config C\""},
		{"# only a comment\n---\nconnect mx\n", "2: no configuration"},
		{"config C\n---\nconnect mx\nlog has kind=receive\n", "4: want quoted strings"},
		{"config C\n---\nconnect mx\n\nlog has \"kind=x\" \"open\n", "5: want quoted strings"},
		{"config C\n---\nlog has many lines \"x\"\n", "3: want: log has [N line(s)]"},
		{"# x\ndns example.org. IN TXT \"v=spf1 -all\"\ndns example.org. IN MXX 0 .\nconfig C\n---\n", "3: dns: want a record"},
	} {
		_, err := parseDialogueFile(tc.text)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one starting %q", tc.text, err, tc.want)
		}
	}
	df, err := parseDialogueFile("dns example.org. IN TXT \"v=spf1 ip4:127.0.0.66 -all\"\nconfig C\n---\n" +
		"log has \"a b\"\nlog has 1 line \"kind=x\" \"y\"\nlog has 0 lines \"panic\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(df.dns) != 1 || !strings.HasPrefix(df.dns[0], "example.org. IN TXT") {
		t.Errorf("dns records %q", df.dns)
	}
	if len(df.logs) != 3 || df.logs[0].n != -1 || df.logs[0].parts[0] != "a b" || df.logs[1].n != 1 ||
		strings.Join(df.logs[1].parts, "|") != "kind=x|y" || df.logs[2].n != 0 || df.logs[2].line != 6 {
		t.Errorf("log assertions %+v", df.logs)
	}
	// The dialogue keeps the file's line numbers: the configuration
	// lines are blank in the script.
	df, err = parseDialogueFile("# x\nconfig C\nlimits:\n  error_limit: 3\n---\nconnect mx\nS: 22\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseDialogue("f.txt", df.script); err == nil || !strings.HasPrefix(err.Error(), "f.txt:7: ") {
		t.Errorf("error %v, want f.txt:7:", err)
	}
}

// A step file's template may not change its line count, or FILE:LINE
// would point elsewhere; template errors name the file and line too.
func TestDialogueFormat_StepTemplates(t *testing.T) {
	text := "connect mx from {{.Source}}\nR: {{quote .Body}}\nS: {{.Want}}\n"
	got, err := expandSteps("s.txt", text, map[string]any{"Source": "inner", "Body": "a\r\n.\r\n", "Want": "250"})
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseDialogue("s.txt", got)
	if err != nil || len(steps) != 3 || steps[1].text != "a\r\n.\r\n" || steps[0].args[1] != "inner" {
		t.Fatalf("expanded %q: %+v, %v", got, steps, err)
	}
	if _, err := expandSteps("s.txt", text, map[string]any{"Source": "inner", "Body": "", "Want": "250\nS: 354"}); err == nil ||
		!strings.Contains(err.Error(), "spans lines") {
		t.Errorf("a parameter with a newline: %v, want an error", err)
	}
	if _, err := expandSteps("s.txt", "C: x\nS: {{.Want}}\n", map[string]any{}); err == nil || !strings.Contains(err.Error(), "s.txt:2:") {
		t.Errorf("a missing parameter: %v, want an error naming s.txt:2", err)
	}
}

// Every step file is loaded by some scenario: an orphan would look like a
// test and prove nothing.
func TestDialogueFormat_StepFilesUsed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(stepsDir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no step files: %v", err)
	}
	sources, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, f := range sources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code.Write(b)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		if !strings.Contains(code.String(), `"`+name+`"`) {
			t.Errorf("%s: no scenario loads it (dialogueFile or runFile with %q)", f, name)
		}
	}
}

// The parsers take text a person writes: whatever it is, they answer
// with steps or an error naming a line of it, and never panic.
func FuzzParseDialogueFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "dialogues", "*.txt"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("config C\n---\nconnect\nsink x has 1 message from\nS: 2xx ~\n")
	lineRE := regexp.MustCompile(`^(\d+): `)
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Count(text, "\n") + 1
		df, err := parseDialogueFile(text)
		if err != nil {
			m := lineRE.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error without a line number: %v", err)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
				t.Fatalf("error names line %d of %d: %v", n, lines, err)
			}
			return
		}
		if got := strings.Count(df.script, "\n") + 1; got != lines {
			t.Fatalf("the script has %d lines, the file %d: line numbers would lie", got, lines)
		}
		for _, l := range df.logs {
			if l.line < 1 || l.line > lines || len(l.parts) == 0 {
				t.Fatalf("log assertion %+v", l)
			}
		}
		steps, err := parseDialogue("f.txt", df.script)
		if err != nil {
			if !regexp.MustCompile(`^f\.txt:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error without FILE:LINE: %v", err)
			}
			return
		}
		for _, st := range steps {
			if st.line < 1 || st.line > lines {
				t.Fatalf("step %+v outside the file's %d lines", st, lines)
			}
		}
	})
}

func TestDialogueFormat_BareLineEnding(t *testing.T) {
	for in, want := range map[string]int{"a\r\nb\r\n": -1, "a\nb": 1, "a\r\n\rb": 3, "\n": 0, "a\r": 1} {
		if got := bareLineEnding([]byte(in)); got != want {
			t.Errorf("bareLineEnding(%q) = %d, want %d", in, got, want)
		}
	}
}
