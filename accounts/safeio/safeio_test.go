package safeio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"one", "two, longer", ""} {
		if err := WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content = %q, want %q", got, content)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o640 {
			t.Errorf("mode = %v", st.Mode())
		}
	}
	assertNoTemp(t, dir)
}

func TestWriteFileFuncErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFileFunc(p, 0o600, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Errorf("old content lost: %q", got)
	}
	assertNoTemp(t, dir)
}

func TestWriteFileMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), nil, 0o600); err == nil {
		t.Fatal("expected an error for a missing directory")
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a"), filepath.Join(dir, "a.bak")
	if err := Backup(src, dst, 0o600); err != nil {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup of nothing created a file")
	}
	os.WriteFile(src, []byte("data"), 0o600)
	if err := Backup(src, dst, 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != "data" {
		t.Errorf("backup = %q", got)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if filepath.Ext(e.Name()) != "" && e.Name()[0] == '.' {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// A directory fsync that fails after the rename leaves the new content in
// place: the error must say so (ErrNotDurable), not pretend the old file
// is untouched.
func TestDirSyncFailureAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	syncDir = func(string) error { return syscall.EIO }
	t.Cleanup(func() { syncDir = SyncDir })
	err := WriteFile(path, []byte("new"), 0o600)
	if !errors.Is(err, ErrNotDurable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("WriteFile with a failing directory fsync: %v, want ErrNotDurable wrapping EIO", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("content %q, want the new content in place", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".f.tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
