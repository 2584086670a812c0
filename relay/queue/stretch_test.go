package queue

import (
	"bytes"
	"io"
	"testing"
)

// vouched is message data whose writer vouches it is clean text.
type vouched struct{ *bytes.Reader }

func (vouched) CleanText() bool { return true }

// Open's readers say where the bytes not read yet are, in a segment or in
// a large message's own file, and whether their writer vouched for them:
// only data that said so, and only until a restart.
func TestStretch(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	type stored struct {
		id    ID
		data  []byte
		clean bool
	}
	var all []stored
	for i, c := range []struct {
		size  int
		clean bool
	}{{900, true}, {900, false}, {9000, true}, {9000, false}} { // 9000: over InlineMax
		data := msgData(i, c.size)
		var r io.Reader = bytes.NewReader(data)
		if c.clean {
			r = vouched{bytes.NewReader(data)}
		}
		id, err := q.Enqueue(testEnvelope("a@city.example.lg.jp"), r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, stored{id, data, c.clean})
	}
	check := func(q *Spool, restarted bool) {
		t.Helper()
		for _, s := range all {
			rc, err := q.Open(s.id)
			if err != nil {
				t.Fatal(err)
			}
			// The rest after a seek, as the runner skips a stored header.
			if _, err := rc.(io.Seeker).Seek(100, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			f, off, n, clean := rc.(Stretch).Rest()
			got := make([]byte, n)
			if _, err := f.ReadAt(got, off); err != nil {
				t.Fatalf("%s: reading the stretch: %v", s.id, err)
			}
			if !bytes.Equal(got, s.data[100:]) {
				t.Errorf("%s (%d bytes): the stretch is not the data after its first 100 bytes", s.id, len(s.data))
			}
			if want := s.clean && !restarted; clean != want {
				t.Errorf("%s: clean %v, want %v (restarted: %v)", s.id, clean, want, restarted)
			}
			rc.Close()
		}
	}
	check(q, false)
	q.Close()
	check(openTest(t, cfg), true)
}
