package conformance

// Dialogues of scenarios that do something in Go between them (a reload,
// kill -9 and a restart, a sink taken down, a filter stopped, a check of
// the queue): testdata/dialogues/steps/NAME.txt, the dialogue format of
// dialogue_test.go without a configuration, loaded by name. A file may
// take parameters through text/template ({{.Subject}}; {{quote .Body}}
// writes a Go string literal for R: lines, {{dashed .Subject}} puts dashes
// for the spaces, for a Message-ID). A parameter must not span
// lines, so that a failure's FILE:LINE is the line in the file.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// stepsDir holds the step files.
var stepsDir = filepath.Join("testdata", "dialogues", "steps")

// dialogueFile runs steps/NAME.txt in a new session.
func (w *world) dialogueFile(t *testing.T, name string, params any) {
	t.Helper()
	s := w.newSession()
	defer s.close()
	s.runFile(t, name, params)
}

// runFile runs steps/NAME.txt on the session and fails t at the first step
// that does not hold.
func (s *session) runFile(t *testing.T, name string, params any) {
	t.Helper()
	file, script, err := loadSteps(name, params)
	if err == nil {
		err = s.run(t, file, script)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// loadSteps reads and expands steps/NAME.txt; it returns the file's path
// for FILE:LINE messages.
func loadSteps(name string, params any) (file, script string, err error) {
	file = filepath.Join(stepsDir, name+".txt")
	b, err := os.ReadFile(file)
	if err != nil {
		return file, "", err
	}
	script, err = expandSteps(file, string(b), params)
	return file, script, err
}

// expandSteps applies the template; the result keeps the file's lines.
func expandSteps(file, text string, params any) (string, error) {
	tmpl, err := template.New(file).Option("missingkey=error").
		Funcs(template.FuncMap{
			"quote":  strconv.Quote,
			"dashed": func(s string) string { return strings.ReplaceAll(s, " ", "-") },
		}).Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, params); err != nil {
		return "", err
	}
	if got, want := strings.Count(b.String(), "\n"), strings.Count(text, "\n"); got != want {
		return "", fmt.Errorf("%s: a parameter spans lines (%d lines after the template, %d in the file): the line numbers would not be the file's", file, got+1, want+1)
	}
	return b.String(), nil
}

// dataSent returns the message steps/NAME.txt sends in DATA: its D: lines,
// each ending in CRLF, so that a scenario compares what arrived with what
// the file sent.
func dataSent(t *testing.T, name string, params any) string {
	t.Helper()
	_, script, err := loadSteps(name, params)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimLeft(strings.TrimSuffix(l, "\r"), " \t")
		if rest, ok := strings.CutPrefix(l, "D:"); ok {
			b.WriteString(strings.TrimPrefix(rest, " ") + "\r\n")
		}
	}
	return b.String()
}
