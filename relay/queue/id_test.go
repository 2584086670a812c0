package queue

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestIDText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []ID{1, 31, 32, 1 << 40, ^ID(0)}
	for range 200 {
		ids = append(ids, ID(rng.Uint64()|1))
	}
	for _, id := range ids {
		s := id.String()
		if len(s) != idLen {
			t.Fatalf("%d prints as %q", uint64(id), s)
		}
		for _, in := range []string{s, strings.ToLower(s)} {
			if got, err := ParseID(in); err != nil || got != id {
				t.Fatalf("ParseID(%q) = %d, %v; want %d", in, got, err, id)
			}
		}
	}
	// Text order is numeric order, so sorted file names and log lines
	// follow arrival.
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = id.String()
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	sort.Strings(strs)
	for i := range ids {
		if ids[i].String() != strs[i] {
			t.Fatalf("order differs at %d: %s vs %s", i, ids[i], strs[i])
		}
	}
	// Crockford look-alikes read as digits.
	if a, b := mustParse(t, "0000000000O1L"), mustParse(t, "0000000000011"); a != b {
		t.Errorf("look-alikes: %s != %s", a, b)
	}
}

func mustParse(t *testing.T, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{"", "0000000000000", "G000000000000", "000000000000U", "00000000000000", "0000000000_01", "../etc/passw"} {
		if id, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) = %s", s, id)
		}
	}
}

func TestNextID(t *testing.T) {
	now := time.UnixMilli(1743499800000)
	a := nextID(0, now)
	b := nextID(a, now)
	c := nextID(b, now.Add(-time.Hour)) // the clock went back
	d := nextID(c, now.Add(time.Millisecond))
	if !(a < b && b < c && c < d) {
		t.Fatalf("IDs not increasing: %s %s %s %s", a, b, c, d)
	}
	if !a.Time().Equal(now) || !d.Time().Equal(now.Add(time.Millisecond)) {
		t.Errorf("ID times %v %v", a.Time(), d.Time())
	}
}

func FuzzParseID(f *testing.F) {
	f.Add("0C9N2ZAJ00000")
	f.Add("zzzzzzzzzzzzz")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		again, err := ParseID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q -> %s -> %d, %v", s, id, again, err)
		}
	})
}

func TestCanonicalID(t *testing.T) {
	id := ID(0x1234567)
	for in, want := range map[string]string{
		id.String():                  id.String(),
		strings.ToLower(id.String()): id.String(),
		"20261129-0123456789":        "20261129-0123456789", // a release ID stays as it is
		"":                           "",
	} {
		if got := CanonicalID(in); got != want {
			t.Errorf("CanonicalID(%q) = %q, want %q", in, got, want)
		}
	}
}
