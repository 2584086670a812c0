package milter

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sekisho/sekisho/relay/smtpd"
)

var sprintf = fmt.Sprintf

func TestApplyEdits(t *testing.T) {
	h := "Received: a\r\nFrom: x@example.com\r\nX-Spam: old\r\n one\r\nX-Spam: second\r\nSubject: s\r\n"
	tests := []struct {
		name  string
		edits []HeaderEdit
		want  string
	}{
		{"none", nil, h},
		{"add", []HeaderEdit{{Op: AddHeader, Name: "X-New", Value: "v"}}, h + "X-New: v\r\n"},
		{"insert top", []HeaderEdit{{Op: InsertHeader, Name: "X-Top", Value: "t", Index: 0}}, "X-Top: t\r\n" + h},
		{"insert past end", []HeaderEdit{{Op: InsertHeader, Name: "X-End", Value: "e", Index: 99}}, h + "X-End: e\r\n"},
		{"change second", []HeaderEdit{{Op: ChangeHeader, Name: "x-spam", Value: "yes", Index: 2}},
			"Received: a\r\nFrom: x@example.com\r\nX-Spam: old\r\n one\r\nx-spam: yes\r\nSubject: s\r\n"},
		{"delete folded", []HeaderEdit{{Op: ChangeHeader, Name: "X-Spam", Index: 1}},
			"Received: a\r\nFrom: x@example.com\r\nX-Spam: second\r\nSubject: s\r\n"},
		{"change missing adds", []HeaderEdit{{Op: ChangeHeader, Name: "X-Virus", Value: "clean", Index: 1}}, h + "X-Virus: clean\r\n"},
		{"delete missing", []HeaderEdit{{Op: ChangeHeader, Name: "X-Virus", Index: 1}}, h},
		{"folded LF value", []HeaderEdit{{Op: AddHeader, Name: "X-Spamd-Result", Value: "default: False\n\tSYM(1.0)"}}, h + "X-Spamd-Result: default: False\r\n\tSYM(1.0)\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ApplyEdits([]byte(h), tc.edits)); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			// With the empty line that ends a header block, it stays last.
			if got := string(ApplyEdits([]byte(h+"\r\n"), tc.edits)); got != tc.want+"\r\n" {
				t.Errorf("with the empty line: got\n%q\nwant\n%q", got, tc.want+"\r\n")
			}
		})
	}
}

func TestReplyCode(t *testing.T) {
	tests := []struct {
		code int
		text string
		want smtpd.Reply
		act  Action
		err  bool
	}{
		{554, "5.7.1 Virus", smtpd.R(554, "5.7.1", "Virus"), Reject, false},
		{451, "4.7.1 Try later", smtpd.R(451, "4.7.1", "Try later"), TempFail, false},
		{550, "4.7.1 wrong class", smtpd.R(550, "5.7.1", "4.7.1 wrong class"), Reject, false},
		{550, "5.7.1 one\r\n550 5.7.1 two", smtpd.R(550, "5.7.1", "one 5.7.1 two"), Reject, false},
		{250, "ok", smtpd.Reply{}, Accept, true},
		{550, "5.7.1 bad\x00\tbyte", smtpd.R(550, "5.7.1", "bad  byte"), Reject, false},
	}
	for _, tc := range tests {
		r, err := replyCode(tc.code, tc.text)
		if (err != nil) != tc.err || r.Reply != tc.want || r.Action != tc.act {
			t.Errorf("replyCode(%d, %q) = %+v, %v", tc.code, tc.text, r, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Name: "a", Address: "inet:127.0.0.1:11332"}, ""},
		{Config{Name: "a", Address: "127.0.0.1:11332", OnFailure: "accept"}, ""},
		{Config{Name: "a", Address: "unix:/run/clamav/milter.sock"}, ""},
		{Config{Name: "a", Address: "unix:rel.sock"}, `address: "unix:rel.sock": a unix socket needs an absolute path`},
		{Config{Address: "inet:127.0.0.1"}, "name: empty\naddress: \"127.0.0.1\": address 127.0.0.1: missing port in address"},
		{Config{Name: "a", Address: "inet:h:1", OnFailure: "drop", Timeout: -1, Sources: []string{"inner", "lgwan"}}, "timeout: negative\nsources[1]: \"lgwan\" is not a source (inner, authenticated, internet)\non_failure: \"drop\" is neither tempfail nor accept"},
	}
	for _, tc := range tests {
		err := tc.c.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func FuzzApplyEdits(f *testing.F) {
	f.Add([]byte("A: b\r\n c\r\nD: e\r\n"), "A", "x", 1)
	f.Fuzz(func(t *testing.T, h []byte, name, value string, idx int) {
		for op := AddHeader; op <= InsertHeader; op++ {
			ApplyEdits(h, []HeaderEdit{{Op: op, Name: name, Value: value, Index: idx}})
		}
	})
}

func FuzzReplyCode(f *testing.F) {
	f.Add(550, "5.7.1 no")
	f.Fuzz(func(t *testing.T, code int, text string) {
		r, err := replyCode(code, text)
		if err == nil && (r.Reply.Code/100 != 4 && r.Reply.Code/100 != 5) {
			t.Fatalf("accepted code %d", code)
		}
	})
}

func TestFormatFieldFolds(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"plain", "X: plain\r\n"},
		{"a\r\n\tb", "X: a\r\n\tb\r\n"},
		{"a\n b", "X: a\r\n b\r\n"},
		{"a\nb", "X: a\r\n\tb\r\n"},
		{"a\n\nb", "X: a\r\n\tb\r\n"},
		{"a\r\n \r\nb", "X: a\r\n\tb\r\n"},
		{"a\rb", "X: a b\r\n"},
		{"a\n", "X: a\r\n"},
		{" lead", "X: lead\r\n"},
	} {
		if got := string(formatField("X", tc.value)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.value, got, tc.want)
		}
	}
}

func FuzzFormatField(f *testing.F) {
	f.Add("X-Spam", "a\n\nb\rc")
	f.Fuzz(func(t *testing.T, name, value string) {
		if checkEdit(name, value) != nil {
			return
		}
		out := formatField(name, value)
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n"))
		for i, l := range lines {
			if bytes.IndexByte(l, '\r') >= 0 || bytes.IndexByte(l, '\n') >= 0 {
				t.Fatalf("bare line ending in %q", out)
			}
			if i > 0 && (len(l) == 0 || (l[0] != ' ' && l[0] != '\t')) {
				t.Fatalf("line %d of %q is not folded", i, out)
			}
		}
	})
}

func TestCheckEdit(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"X-Spam", "yes", true},
		{"", "v", false},
		{"X Spam", "v", false},
		{"X:Spam", "v", false},
		{"X-Spam\n", "v", false},
		{"X-日本", "v", false},
		{"X-Spam", "a\x00b", false},
	} {
		if err := checkEdit(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("checkEdit(%q, %q) = %v", tc.name, tc.value, err)
		}
	}
}
