package smtpd

import (
	"fmt"
	"strings"
	"testing"
)

func TestParsePathArg(t *testing.T) {
	for _, tc := range []struct {
		arg, kw, path string
		params        []string
		err           bool
	}{
		{"FROM:<a@b>", "FROM:", "a@b", nil, false},
		{"from: <a@b> SIZE=10 BODY=8BITMIME", "FROM:", "a@b", []string{"SIZE=10", "BODY=8BITMIME"}, false},
		{"FROM:<>", "FROM:", "", nil, false},
		{"TO:<postmaster>", "TO:", "postmaster", nil, false},
		{`TO:<"a>b"@c>`, "TO:", `"a>b"@c`, nil, false},
		{"TO:<@relay.example:user@d>", "TO:", "user@d", nil, false},
		{"TO:user@d", "TO:", "user@d", nil, false},
		{"TO:<a@b>x", "TO:", "", nil, true},
		{"TO:<a@b", "TO:", "", nil, true},
		{"FROM<a@b>", "FROM:", "", nil, true},
		{"TO:", "TO:", "", nil, true},
	} {
		path, params, err := parsePathArg(tc.arg, tc.kw)
		if (err != nil) != tc.err || path != tc.path || fmt.Sprint(params) != fmt.Sprint(tc.params) {
			t.Errorf("parsePathArg(%q) = %q %q %v", tc.arg, path, params, err)
		}
	}
}

func TestDecodeXtext(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "a+2Bb": "a+b", "+40": "@"} {
		if got, err := decodeXtext(in); err != nil || got != want {
			t.Errorf("decodeXtext(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"+", "+4", "+zz", "+4a"} {
		if _, err := decodeXtext(bad); err == nil {
			t.Errorf("decodeXtext(%q) accepted", bad)
		}
	}
}

// FuzzCommand feeds any command line to the parsers: no panic, and an
// address written plainly in brackets comes back as it was.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"MAIL FROM:<a@b> SIZE=10", "RCPT TO:<postmaster> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40b",
		`RCPT TO:<"x y"@z>`, "MAIL FROM:<> ENVID=+41", "EHLO", "BDAT 10 LAST"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd := parseCommand(line)
		if cmd.verb != strings.ToUpper(cmd.verb) {
			t.Fatalf("verb %q not upper case", cmd.verb)
		}
		for _, kw := range []string{"FROM:", "TO:"} {
			path, params, err := parsePathArg(cmd.arg, kw)
			if err != nil {
				continue
			}
			parseMailParams(params, 1000)
			parseRcptParams(params)
			if !strings.ContainsAny(path, `"\ <>@:`) {
				again, _, err := parsePathArg(kw+"<"+path+"@x> A=1", kw)
				if err != nil || again != path+"@x" {
					t.Fatalf("%q: round trip gave %q, %v", path, again, err)
				}
			}
		}
	})
}
