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
			parseMailParams(params, 1000, ^extension(0))
			parseRcptParams(params, ^extension(0))
			if !strings.ContainsAny(path, `"\ <>@:`) {
				again, _, err := parsePathArg(kw+"<"+path+"@x> A=1", kw)
				if err != nil || again != path+"@x" {
					t.Fatalf("%q: round trip gave %q, %v", path, again, err)
				}
			}
		}
	})
}

// A parameter is accepted only when its extension was advertised, and
// once (RFC 5321 §4.1.1.11, RFC 3461 §4).
func TestParamsNeedTheirExtension(t *testing.T) {
	all := ^extension(0)
	for _, tc := range []struct {
		name    string
		params  string
		rcpt    bool
		offered extension
		want    int // 0: accepted
	}{
		{"size offered", "SIZE=10", false, extSize, 0},
		{"size after HELO", "SIZE=10", false, 0, 555},
		{"smtputf8 not offered", "SMTPUTF8", false, extSize | ext8BitMIME, 555},
		{"smtputf8 offered", "SMTPUTF8", false, extSMTPUTF8, 0},
		{"ret without DSN", "RET=HDRS", false, extSize | ext8BitMIME | extSMTPUTF8, 555},
		{"envid without DSN", "ENVID=x", false, extSize, 555},
		{"auth not offered", "AUTH=<>", false, extSize, 555},
		{"dsn offered", "RET=FULL ENVID=a+2Bb", false, extDSN, 0},
		{"repeated size", "SIZE=10 SIZE=20", false, all, 501},
		{"repeated body, any case", "BODY=7BIT body=8BITMIME", false, all, 501},
		{"unknown", "FOO=1", false, all, 555},
		{"notify without DSN", "NOTIFY=NEVER", true, extSize, 555},
		{"orcpt without DSN", "ORCPT=rfc822;a+40b", true, extSize | ext8BitMIME, 555},
		{"rcpt dsn offered", "NOTIFY=SUCCESS ORCPT=rfc822;a+40b", true, extDSN, 0},
		{"repeated notify", "NOTIFY=SUCCESS NOTIFY=DELAY", true, all, 501},
		{"repeated orcpt", "ORCPT=rfc822;a ORCPT=rfc822;b", true, all, 501},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bad *Reply
			if tc.rcpt {
				_, bad = parseRcptParams(strings.Fields(tc.params), tc.offered)
			} else {
				_, bad = parseMailParams(strings.Fields(tc.params), 1000, tc.offered)
			}
			got := 0
			if bad != nil {
				got = bad.Code
			}
			if got != tc.want {
				t.Errorf("%q: reply %v, want code %d", tc.params, bad, tc.want)
			}
		})
	}
}
