package conformance

// Dialogues kept as data: conformance/testdata/dialogues/*.txt, one
// scenario a file. A file starts with its configuration, then "---", then
// the dialogue in the format of dialogue_test.go, then optional log
// assertions:
//
//	config C                 the seeds' configuration C (configs_test.go);
//	limits:                  YAML lines up to "---" go into its relay
//	  error_limit: 3         section (configC's relayExtra)
//	---
//	connect mx from internet
//	...
//	log has "kind=reject" "stage=connect"    a line of the gateway's log
//	                                         holds every one of the strings
//
// "config" alone takes the whole configuration (with the template
// functions of world.render) from the lines up to "---". Before the
// config line, records for the fake DNS, in zone file syntax:
//
//	dns example.org. IN TXT "v=spf1 ip4:127.0.0.66 -all"
//	dns nullmx.example. IN MX 0 .
//
// "log has 1 line "a" "b"" asks for exactly that many such lines.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestDialogueFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "dialogues", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialogue files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			df, err := parseDialogueFile(string(data))
			if err != nil {
				t.Fatalf("%s:%v", file, err)
			}
			w := newWorld(t)
			w.dns.Add(df.dns...)
			w.start(df.config)
			if err := w.runDialogue(t, file, df.script); err != nil {
				t.Fatal(err)
			}
			for _, l := range df.logs {
				switch n := w.gw.countLog(l.parts...); {
				case l.n < 0 && n == 0:
					t.Errorf("%s:%d: no log line holds all of %q", file, l.line, l.parts)
				case l.n >= 0 && n != l.n:
					t.Errorf("%s:%d: %d log lines hold all of %q, want %d", file, l.line, n, l.parts, l.n)
				}
			}
		})
	}
}

type dialogueFile struct {
	dns    []string // records for the fake DNS
	config string
	script string // line numbers kept: the config lines are blank here
	logs   []logAssertion
}

type logAssertion struct {
	line  int
	n     int // how many lines; -1: at least one
	parts []string
}

// parseDialogueFile splits a file; errors start with the line number.
func parseDialogueFile(text string) (dialogueFile, error) {
	var df dialogueFile
	lines := strings.Split(text, "\n")
	sep := -1
	for i, l := range lines {
		if strings.TrimRight(l, "\r") == "---" {
			sep = i
			break
		}
	}
	if sep < 0 {
		return df, fmt.Errorf("1: no \"---\" line after the configuration")
	}
	kind, body := "", []string{}
	for i, l := range lines[:sep] {
		t := strings.TrimSpace(l)
		switch {
		case kind == "" && (t == "" || strings.HasPrefix(t, "#")):
		case kind == "" && (t == "config C" || t == "config"):
			kind = t
		case kind == "" && strings.HasPrefix(t, "dns "):
			rec := strings.TrimSpace(strings.TrimPrefix(t, "dns "))
			rr, err := dns.NewRR(rec)
			if err == nil && rr == nil {
				err = fmt.Errorf("no record in %q", rec)
			}
			if err != nil {
				return df, fmt.Errorf("%d: dns: want a record in zone file syntax (example.org. IN TXT \"v=spf1 -all\"): %v", i+1, err)
			}
			df.dns = append(df.dns, rec)
		case kind == "":
			return df, fmt.Errorf("%d: want \"config C\" or \"config\" (after any dns lines) before the configuration", i+1)
		default:
			body = append(body, l)
		}
	}
	switch kind {
	case "config C":
		df.config = configC(strings.Join(body, "\n"))
	case "config":
		df.config = strings.Join(body, "\n") + "\n"
	default:
		return df, fmt.Errorf("%d: no configuration", sep+1)
	}
	script := make([]string, len(lines))
	for i := sep + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if rest, ok := strings.CutPrefix(l, "log has "); ok {
			la := logAssertion{line: i + 1, n: -1}
			// log has N line(s) "a" "b"
			if f := strings.Fields(rest); len(f) >= 2 && (f[1] == "line" || f[1] == "lines") {
				n, err := strconv.Atoi(f[0])
				if err != nil || n < 0 {
					return df, fmt.Errorf("%d: want: log has [N line(s)] \"TEXT\"...", i+1)
				}
				la.n = n
				rest = strings.TrimSpace(rest)
				rest = strings.TrimSpace(rest[len(f[0]):])
				rest = rest[len(f[1]):]
			}
			parts, err := quotedList(rest)
			if err != nil {
				return df, fmt.Errorf("%d: %v", i+1, err)
			}
			la.parts = parts
			df.logs = append(df.logs, la)
			continue
		}
		script[i] = lines[i]
	}
	df.script = strings.Join(script, "\n")
	return df, nil
}

// quotedList reads one or more Go string literals separated by spaces.
func quotedList(s string) ([]string, error) {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("want quoted strings: %q", s)
		}
		v, _ := strconv.Unquote(q)
		out = append(out, v)
		s = s[len(q):]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("log has: no strings")
	}
	return out, nil
}
