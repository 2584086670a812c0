package rewrite

import (
	"strings"
	"testing"
)

func outsideOf(a string) bool { return !strings.HasSuffix(strings.ToLower(a), "@city.lg.jp") }

func TestMoveToBcc(t *testing.T) {
	for _, c := range []struct {
		name   string
		in     string
		limit  int
		want   string // "" when unchanged
		moved  string
		broken int
	}{
		{"under the limit", "From: a@city.lg.jp\r\nTo: x@a.example, y@b.example\r\nSubject: s\r\n\r\n", 2, "", "", 0},
		{"over: outside out, undisclosed in",
			"From: a@city.lg.jp\r\nTo: =?UTF-8?B?5bGx55Sw?= <x@a.example>, \"Sato, J\" <y@b.example>\r\nCc: z@c.example\r\nSubject: s\r\n\r\n", 2,
			"From: a@city.lg.jp\r\nTo: undisclosed-recipients:;\r\nSubject: s\r\n\r\n", "x@a.example,y@b.example,z@c.example", 0},
		{"inside addresses keep their place and bytes (a comment before one goes)",
			"To: 部長 <bucho@city.lg.jp>, x@a.example,\r\n y@b.example\r\nCc: (comment) kakari@City.lg.jp, z@c.example\r\nX: 1\r\n\r\n", 1,
			"To: 部長 <bucho@city.lg.jp>, undisclosed-recipients:;\r\nCc: kakari@City.lg.jp\r\nX: 1\r\n\r\n", "x@a.example,y@b.example,z@c.example", 0},
		{"only Cc: To takes its place",
			"From: a@city.lg.jp\nCc: x@a.example, y@b.example\nSubject: s\n\n", 1,
			"From: a@city.lg.jp\nTo: undisclosed-recipients:;\nSubject: s\n\n", "x@a.example,y@b.example", 0},
		{"groups are read through",
			"To: Partners: x@a.example, y@b.example;, bucho@city.lg.jp\r\n\r\n", 1,
			"To: bucho@city.lg.jp, undisclosed-recipients:;\r\n\r\n", "x@a.example,y@b.example", 0},
		{"an unreadable field goes whole",
			"To: x@a.example, y@b.example\r\nCc: <broken@a.example\r\nBcc: hidden@d.example\r\n\r\n", 1,
			"To: undisclosed-recipients:;\r\nBcc: hidden@d.example\r\n\r\n", "x@a.example,y@b.example", 1},
		{"two To fields become one",
			"To: x@a.example\r\nSubject: s\r\nTo: y@b.example, bucho@city.lg.jp\r\n\r\nbody", 1,
			"To: bucho@city.lg.jp, undisclosed-recipients:;\r\nSubject: s\r\n\r\nbody", "x@a.example,y@b.example", 0},
		{"Resent-To is not ours", "Resent-To: x@a.example, y@b.example\r\nTo: z@c.example\r\n\r\n", 1, "", "", 0},
	} {
		res := MoveToBcc([]byte(c.in), outsideOf, c.limit)
		if string(res.Header) != c.want || strings.Join(res.Moved, ",") != c.moved || res.Unreadable != c.broken {
			t.Errorf("%s:\n got %q moved %v unreadable %d\nwant %q moved %s unreadable %d", c.name, res.Header, res.Moved, res.Unreadable,
				c.want, c.moved, c.broken)
		}
	}
}

func TestMoveToBccFolds(t *testing.T) {
	var in strings.Builder
	in.WriteString("To: ")
	for i := range 12 {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("職員" + strings.Repeat("x", i) + " <staff" + strings.Repeat("x", i) + "@city.lg.jp>")
	}
	in.WriteString(", out1@a.example, out2@b.example\r\n\r\n")
	res := MoveToBcc([]byte(in.String()), outsideOf, 1)
	if res.Header == nil {
		t.Fatal("not changed")
	}
	for _, l := range strings.Split(string(res.Header), "\r\n") {
		if len(l) > 998 || strings.Contains(l, "out1@") {
			t.Errorf("line %q", l)
		}
	}
	if n := strings.Count(string(res.Header), "\r\n "); n < 3 {
		t.Errorf("not folded (%d continuation lines):\n%s", n, res.Header)
	}
	if got := ScanHeader(res.Header); len(got) != 12 {
		t.Errorf("%d addresses read back, want the 12 inside ones", len(got))
	}
}

// FuzzMoveToBcc: whatever the header, no outside address is left in To
// or Cc once the limit is passed, every inside one stays, and the rest
// of the header is byte for byte as it was.
func FuzzMoveToBcc(f *testing.F) {
	f.Add("To: x@a.example, y@b.example\r\nCc: bucho@city.lg.jp\r\n\r\n", 0)
	f.Add("To: G: x@a.example;, \"q\\\"uoted\" <y@b.example>\r\n\r\n", 1)
	f.Add("Cc: (c) <z@c.example>\n\n", 0)
	f.Fuzz(func(t *testing.T, h string, limit int) {
		if limit < 0 || limit > 3 {
			return
		}
		res := MoveToBcc([]byte(h), outsideOf, limit)
		if res.Header == nil {
			return
		}
		inside := 0
		for _, a := range ScanHeader([]byte(h)) {
			if (a.Field == "To" || a.Field == "Cc") && a.Address != "" && !outsideOf(a.Address) {
				inside++
			}
		}
		after := 0
		for _, a := range ScanHeader(res.Header) {
			f := strings.ToLower(a.Field)
			if f != "to" && f != "cc" {
				continue
			}
			if a.Address != "" && outsideOf(a.Address) {
				t.Fatalf("outside %s left in %q", a.Address, res.Header)
			}
			if a.Address != "" {
				after++
			}
		}
		if after < inside {
			t.Fatalf("%d inside addresses before, %d after:\n%q\n%q", inside, after, h, res.Header)
		}
		strip := func(b string) string {
			var out []string
			for _, fl := range splitFields(b, nil) {
				n := strings.ToLower(fl.name(b))
				if n != "to" && n != "cc" {
					out = append(out, b[fl.start:fl.end])
				}
			}
			return strings.Join(out, "")
		}
		if strip(h) != strip(string(res.Header)) {
			t.Fatalf("other fields changed:\n%q\n%q", h, res.Header)
		}
	})
}
