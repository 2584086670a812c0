package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"ok", "s3cret\n", 0o600, "s3cret", ""},
		{"crlf", "s3cret\r\n", 0o640, "s3cret", ""},
		{"no line end", "s3cret", 0o600, "s3cret", ""},
		{"world-readable", "s3cret\n", 0o644, "", "readable by every user"},
		{"two lines", "a\nb\n", 0o600, "", "on one line"},
		{"empty", "\n", 0o600, "", "on one line"},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode)
		got, err := Password(p)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %q %v, want %q %q", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := Password(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file gave no error")
	}
}

func TestCATLS(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, []byte("not a certificate"), 0o644)
	if _, err := CATLS(p); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("err = %v", err)
	}
}
