package quarantine

import (
	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

const original = "From: a@example.com\r\nTo: b@city.example.lg.jp\r\nSubject: x\r\n\r\nbody\r\n"

func testStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "q"), 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 6, 10, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	return s, &now
}

func TestPutGetListOpen(t *testing.T) {
	s, _ := testStore(t)
	env := queue.Envelope{From: "a@example.com", Rcpts: []queue.Recipient{{Addr: "b@city.example.lg.jp"}}, Source: rewrite.SourceInternet}
	id := s.NewID()
	if !ValidID(id) || !strings.HasPrefix(id, "20260406-") {
		t.Fatalf("NewID = %q", id)
	}
	e, err := s.Put(id, env, Entry{Subject: "x", Route: "inner"}, strings.NewReader(original))
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != int64(len(original)) || !e.Expires.Equal(e.Stored.Add(14*24*time.Hour)) {
		t.Errorf("entry %+v", e)
	}
	if _, err := s.Put(id, env, Entry{}, strings.NewReader(original)); err == nil {
		t.Error("a second Put under the same ID succeeded")
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Envelope.From != "a@example.com" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != original {
		t.Errorf("Open returned %q", got)
	}
	for _, bad := range []string{"../../etc/passwd", "20260406-XYZ", ""} {
		if _, err := s.Get(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", bad, err)
		}
	}
}

func TestReleaseMarkBindsContent(t *testing.T) {
	s, _ := testStore(t)
	env := queue.Envelope{From: "a@example.com", Rcpts: []queue.Recipient{{Addr: "b@city.example.lg.jp"}}, Source: rewrite.SourceInternet}
	id := s.NewID()
	if _, err := s.Put(id, env, Entry{}, strings.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	rel, err := s.Release(id, []string{"admin@city.example.lg.jp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Envelope.Rcpts) != 1 || rel.Envelope.Rcpts[0].Addr != "admin@city.example.lg.jp" || rel.Envelope.From != env.From {
		t.Errorf("released envelope %+v", rel.Envelope)
	}
	if !bytes.HasSuffix(rel.Data, []byte(original)) || !bytes.HasPrefix(rel.Data, []byte(HeaderReleased+": "+id+"; ")) {
		t.Errorf("released data %q", rel.Data)
	}
	ok, err := s.IsRelease(bytes.NewReader(rel.Data))
	if err != nil || !ok {
		t.Fatalf("IsRelease of a genuine release = %v, %v", ok, err)
	}
	// The mark moved onto other content, or a guessed mark, is refused.
	line := rel.Data[:bytes.IndexByte(rel.Data, '\n')+1]
	for name, data := range map[string][]byte{
		"other content": append(append([]byte{}, line...), "Subject: evil\r\n\r\nmalware\r\n"...),
		"forged mark":   []byte(HeaderReleased + ": " + id + "; 00ff\r\n" + original),
		"no mark":       []byte(original),
	} {
		if ok, err := s.IsRelease(bytes.NewReader(data)); ok || err != nil {
			t.Errorf("%s: IsRelease = %v, %v; want false", name, ok, err)
		}
	}
	if err := s.Recorded(id, Release{At: time.Now(), To: []string{"admin@city.example.lg.jp"}, QueueID: "q1"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get(id); len(e.Releases) != 1 || e.Releases[0].QueueID != "q1" {
		t.Errorf("release not recorded: %+v", e)
	}
}

func TestPurge(t *testing.T) {
	s, now := testStore(t)
	old := s.NewID()
	if _, err := s.Put(old, queue.Envelope{}, Entry{}, strings.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(10 * 24 * time.Hour)
	fresh := s.NewID()
	if _, err := s.Put(fresh, queue.Envelope{}, Entry{}, strings.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	// An original whose entry was never written (a crash inside Put).
	stray := filepath.Join(s.dir, "20260401-0000000000.eml")
	os.WriteFile(stray, []byte(original), 0o600)
	os.Chtimes(stray, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	held := filepath.Join(s.dir, "sekisho-att-123")
	os.WriteFile(held, []byte("x"), 0o600)
	os.Chtimes(held, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	*now = now.Add(5 * 24 * time.Hour)
	removed, err := s.Purge()
	if err != nil || len(removed) != 1 || removed[0] != old {
		t.Fatalf("Purge = %v, %v; want [%s]", removed, err, old)
	}
	if _, err := s.Get(old); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired entry still there: %v", err)
	}
	if _, err := s.Get(fresh); err != nil {
		t.Errorf("fresh entry purged: %v", err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray original kept: %v", err)
	}
	if _, err := os.Stat(held); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray held attachment kept: %v", err)
	}
}

// A failed write leaves nothing listed and reports the error.
func TestPutWriteFailure(t *testing.T) {
	s, _ := testStore(t)
	id := s.NewID()
	_, err := s.Put(id, queue.Envelope{}, Entry{}, io.MultiReader(strings.NewReader("From: x\r\n"), errReader{}))
	if err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("Put = %v, want the read error", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("a failed Put is listed: %+v", list)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("EIO") }

// Files written by root (an administrator's command) go to the folder's
// owner, so the gateway's own user can read the key and the entries.
func TestRootWritesAreGivenToTheFolderOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(t.TempDir(), "q")
	os.Mkdir(dir, 0o700)
	if err := os.Chown(dir, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id := s.NewID()
	if _, err := s.Put(id, queue.Envelope{}, Entry{}, strings.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"key", id + ".json"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 12345 {
			t.Errorf("%s owned by %d, want 12345", name, st.Uid)
		}
	}
}
