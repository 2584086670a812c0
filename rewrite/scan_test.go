package rewrite

import (
	"fmt"
	"strings"
	"testing"
)

// fromString renders HeaderFrom's result compactly: fields separated by
// " | ", each "index: address address" or "index! problem"; an address
// with a problem is "spec(problem)".
func fromString(ff []FromField) string {
	var fields []string
	for _, f := range ff {
		if f.Problem != "" {
			fields = append(fields, fmt.Sprintf("%d! %s", f.FieldIndex, f.Problem))
			continue
		}
		s := fmt.Sprintf("%d:", f.FieldIndex)
		for _, a := range f.Mailboxes {
			if a.Problem != "" {
				s += fmt.Sprintf(" %s(%s)", a.AddrSpec, a.Problem)
			} else {
				s += " " + a.Address
			}
		}
		fields = append(fields, s)
	}
	return strings.Join(fields, " | ")
}

func TestHeaderFrom(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"plain", "From: taro@city.example.jp\r\n", "0: taro@city.example.jp"},
		{"encoded-word name", "From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@City.Example.JP>\r\n", "0: taro@City.Example.JP"},
		{"encoded word with specials", "From: =?UTF-8?Q?a@b,\"c?= <real@example.jp>\r\n", "0: real@example.jp"},
		{"raw iso-2022-jp name holding '@'", "From: \x1b$B$@$l\x1b(B <dare@example.jp>\r\n", "0: dare@example.jp"},
		{"raw shift_jis name with '\\' and '@' trail bytes", "From: \x95\\\x81\x40\x83\\ <hyo@example.jp>\r\n", "0: hyo@example.jp"},
		{"raw utf-8 name", "From: 山田 太郎 <yamada@example.jp>\r\n", "0: yamada@example.jp"},
		{"quoted local part with '@'", "From: \"a@b\"@example.jp\r\n", "0: a@b@example.jp"},
		{"folded", "Subject: x\r\nFrom: Taro\r\n <taro@example.jp>\r\n", "1: taro@example.jp"},
		{"field name in capitals", "FROM: a@example.jp\n", "0: a@example.jp"},
		{"several addresses", "From: a@b.example, c@d.example\r\n", "0: a@b.example c@d.example"},
		{"a group", "From: team: a@b.jp, c@d.jp;\r\n", "0: a@b.jp c@d.jp"},
		{"several fields", "From: a@b.example\r\nTo: x@y.jp\r\nFrom: c@d.example\r\n", "0: a@b.example | 2: c@d.example"},
		{"none", "Subject: x\r\nResent-From: r@example.jp\r\n", ""},
		{"empty field", "From: \r\n", "0:"},
		{"no domain", "From: postmaster\r\n", "0: postmaster(no domain)"},
		{"two '@'", "From: a@@b.jp\r\n", "0: a@@b.jp(more than one '@')"},
		{"unreadable", "From: \"unclosed <a@b.jp>\r\n", "0! field cannot be read: unclosed quoted string"},
		{"the body is not read", "Subject: x\r\n\r\nFrom: a@b.jp\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromString(HeaderFrom([]byte(tc.header))); got != tc.want {
				t.Errorf("HeaderFrom(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

// FuzzHeaderFrom: no panic, and HeaderFrom says what ScanHeader says of
// the From fields.
func FuzzHeaderFrom(f *testing.F) {
	for _, s := range []string{
		"From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@city.example.jp>\r\n",
		"From: a@b.example, c@d.example\r\nFrom: \"x\r\n",
		"From: \x95\\\x81\x40 <hyo@example.jp>\r\n",
		"From: g: a@b, <c@d>;\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		var scanned []HeaderAddress
		for _, a := range ScanHeader(h) {
			if strings.EqualFold(a.Field, "From") {
				scanned = append(scanned, a)
			}
		}
		var from []HeaderAddress
		for _, ff := range HeaderFrom(h) {
			if ff.Problem != "" {
				if ff.Mailboxes != nil {
					t.Fatalf("field %d has a problem and addresses", ff.FieldIndex)
				}
				from = append(from, HeaderAddress{Class: HeaderSender, Field: "", FieldIndex: ff.FieldIndex, Index: -1, Problem: ff.Problem})
				continue
			}
			for _, a := range ff.Mailboxes {
				if a.FieldIndex != ff.FieldIndex || a.Address != "" && !strings.Contains(a.Address, "@") {
					t.Fatalf("address %+v of field %d", a, ff.FieldIndex)
				}
				from = append(from, a)
			}
		}
		if len(from) != len(scanned) {
			t.Fatalf("HeaderFrom has %d addresses, ScanHeader %d", len(from), len(scanned))
		}
		for i := range from {
			from[i].Field = scanned[i].Field
			if from[i] != scanned[i] {
				t.Fatalf("HeaderFrom %+v, ScanHeader %+v", from[i], scanned[i])
			}
		}
	})
}
