package rewrite

import (
	"fmt"
	"strings"
	"testing"
)

// traceLine renders a step for tests and golden files.
func traceLine(st Step) string {
	pos := st.Position
	switch {
	case st.Field >= 0 && st.Index >= 0:
		pos = fmt.Sprintf("%s[field %d, address %d]", st.Position, st.Field, st.Index)
	case st.Field >= 0:
		pos = fmt.Sprintf("%s[field %d]", st.Position, st.Field)
	case st.Position == PosEnvTo:
		pos = fmt.Sprintf("%s[%d]", st.Position, st.Index)
	}
	s := pos + " " + st.Class.String()
	if st.Rule != "" {
		s += " rule=" + st.Rule
	}
	switch {
	case st.After != "":
		s += " " + st.Before + " -> " + st.After
	case st.Before != "":
		s += " " + st.Before
	}
	if st.Note != "" {
		s += " (" + st.Note + ")"
	}
	return s
}

func TestRewriteEnvelope(t *testing.T) {
	w := mustNew(t, testConfig())
	tests := []struct {
		name     string
		set      string
		in       Input
		from, to string // expected envelope ("," between recipients)
		trace    []string
		err      string
	}{
		{
			name: "inner: regional to LG",
			in:   Input{From: "user@city.toyokawa.aichi.jp", To: []string{"kikaku@pref.aichi.jp", "friend@example.com"}, Source: SourceInner},
			from: "user@city.toyokawa.lg.jp", to: "kikaku@pref.aichi.lg.jp,friend@example.com",
			trace: []string{
				"env-from envelope_sender rule=regional-to-lg user@city.toyokawa.aichi.jp -> user@city.toyokawa.lg.jp",
				"env-to[0] envelope_recipient rule=regional-to-lg kikaku@pref.aichi.jp -> kikaku@pref.aichi.lg.jp",
			},
		},
		{
			name: "internet: no rule applies",
			in:   Input{From: "user@city.toyokawa.aichi.jp", To: []string{"kikaku@pref.aichi.jp"}, Source: SourceInternet},
			from: "user@city.toyokawa.aichi.jp", to: "kikaku@pref.aichi.jp",
		},
		{
			name: "authenticated: only the table",
			in:   Input{From: "taro@mail.city.toyokawa.aichi.jp", To: []string{"soumu@pref.aichi.jp"}, Source: SourceAuthenticated},
			from: "taro@mail.city.toyokawa.aichi.jp", to: "soumu@pref.aichi.lg.jp",
			trace: []string{"env-to[0] envelope_recipient rule=regional-to-lg soumu@pref.aichi.jp -> soumu@pref.aichi.lg.jp"},
		},
		{
			name: "null sender untouched, exception kept, address rule, regexp, subdomains, case",
			in: Input{From: "", Source: SourceInner, To: []string{
				"soumu@pref.aichi.jp", "Kikaku-Old@PREF.aichi.jp", "taro@mail.city.toyokawa.aichi.jp",
				"x@soumu.pref.aichi.jp", "Hanako@City.Nagoya.JP.", "postmaster", "bad@@x",
			}},
			from: "", to: "soumu@pref.aichi.jp,kikaku@pref.aichi.lg.jp,taro@city.toyokawa.lg.jp,x@soumu.pref.aichi.lg.jp,Hanako@city.nagoya.lg.jp,postmaster,bad@@x",
			trace: []string{
				"env-to[0] envelope_recipient rule=keep-soumu soumu@pref.aichi.jp -> soumu@pref.aichi.jp (kept: an exception, no later rule applies)",
				"env-to[1] envelope_recipient rule=kikaku-old Kikaku-Old@PREF.aichi.jp -> kikaku@pref.aichi.lg.jp",
				"env-to[2] envelope_recipient rule=old-mail-host taro@mail.city.toyokawa.aichi.jp -> taro@city.toyokawa.lg.jp",
				"env-to[4] envelope_recipient rule=regional-to-lg Hanako@City.Nagoya.JP. -> Hanako@city.nagoya.lg.jp",
				"env-to[3] envelope_recipient rule=aichi-subdomains x@soumu.pref.aichi.jp -> x@soumu.pref.aichi.lg.jp",
			},
		},
		{
			name: "way back through a set",
			set:  "to-inner",
			in:   Input{From: "kikaku@pref.aichi.lg.jp", To: []string{"user@city.toyokawa.lg.jp"}, Source: SourceInternet},
			from: "kikaku@pref.aichi.jp", to: "user@city.toyokawa.aichi.jp",
			trace: []string{
				"env-from envelope_sender rule=lg-to-regional kikaku@pref.aichi.lg.jp -> kikaku@pref.aichi.jp",
				"env-to[0] envelope_recipient rule=lg-to-regional user@city.toyokawa.lg.jp -> user@city.toyokawa.aichi.jp",
			},
		},
		{
			name: "source not set",
			in:   Input{From: "a@pref.aichi.jp"},
			from: "a@pref.aichi.jp",
			err:  "rewrite: message source not set (source(0))",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := w.Default()
			if tt.set != "" {
				rs, _ = w.Set(tt.set)
			}
			out, err := rs.Rewrite(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			checkEnvelope(t, out, tt.in, tt.from, tt.to)
			var got []string
			for _, st := range out.Trace {
				got = append(got, traceLine(st))
			}
			if strings.Join(got, "\n") != strings.Join(tt.trace, "\n") {
				t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.trace, "\n"))
			}
			if out.Changed != (out.From != tt.in.From || strings.Join(out.To, ",") != strings.Join(tt.in.To, ",")) {
				t.Errorf("Changed = %v", out.Changed)
			}
		})
	}
}

func checkEnvelope(t *testing.T, out Output, in Input, from, to string) {
	t.Helper()
	if out.From != from || strings.Join(out.To, ",") != to {
		t.Errorf("envelope from=%q to=%q\nwant     from=%q to=%q", out.From, strings.Join(out.To, ","), from, to)
	}
	if out.OrigFrom != in.From || strings.Join(out.OrigTo, ",") != strings.Join(in.To, ",") {
		t.Errorf("original envelope changed: %q %q", out.OrigFrom, out.OrigTo)
	}
}

func TestRewriteConditions(t *testing.T) {
	lgwanOnly := []string{"*.lg.jp"}
	w := mustNew(t, Config{Rules: []RuleConfig{
		{Name: "recipients", Table: testTable, Source: inner, Classes: []string{"envelope_recipient", "header_recipient"}},
		// The sender becomes LG only when every recipient goes over LGWAN.
		{Name: "sender", Table: testTable, Source: inner, Classes: []string{"envelope_sender", "header_sender"}, RecipientDomain: lgwanOnly},
		{Name: "nagoya-only", Domain: "example.jp", Replace: "example.lg.jp", Source: inner, SenderDomain: []string{"city.nagoya.jp"}},
	}})
	tests := []struct {
		name     string
		in       Input
		from, to string
	}{
		{"all recipients LGWAN after the first rule",
			Input{From: "u@city.toyokawa.aichi.jp", To: []string{"a@pref.aichi.jp", "b@city.okazaki.lg.jp"}, Source: SourceInner},
			"u@city.toyokawa.lg.jp", "a@pref.aichi.lg.jp,b@city.okazaki.lg.jp"},
		{"one internet recipient keeps the regional sender",
			Input{From: "u@city.toyokawa.aichi.jp", To: []string{"a@pref.aichi.jp", "friend@gmail.com"}, Source: SourceInner},
			"u@city.toyokawa.aichi.jp", "a@pref.aichi.lg.jp,friend@gmail.com"},
		{"no recipients: a recipient condition does not hold",
			Input{From: "u@city.toyokawa.aichi.jp", Source: SourceInner},
			"u@city.toyokawa.aichi.jp", ""},
		{"sender domain condition holds",
			Input{From: "u@city.nagoya.jp", To: []string{"x@example.jp"}, Source: SourceInner},
			"u@city.nagoya.jp", "x@example.lg.jp"},
		{"sender domain condition fails",
			Input{From: "u@city.okazaki.aichi.jp", To: []string{"x@example.jp"}, Source: SourceInner},
			"u@city.okazaki.aichi.jp", "x@example.jp"},
		{"null sender fails a sender condition",
			Input{From: "", To: []string{"x@example.jp"}, Source: SourceInner},
			"", "x@example.jp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := w.Default().Rewrite(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			checkEnvelope(t, out, tt.in, tt.from, tt.to)
		})
	}
	// The sender condition sees recipients after earlier rules, for headers too.
	hdr := "From: =?ISO-2022-JP?B?GyRCS0xAbhsoQg==?= <u@city.toyokawa.aichi.jp>\r\nTo: a@pref.aichi.jp\r\n\r\n"
	out, err := w.Default().Rewrite(Input{From: "u@city.toyokawa.aichi.jp", To: []string{"a@pref.aichi.jp"}, Header: []byte(hdr), Source: SourceInner})
	if err != nil {
		t.Fatal(err)
	}
	want := "From: =?ISO-2022-JP?B?GyRCS0xAbhsoQg==?= <u@city.toyokawa.lg.jp>\r\nTo: a@pref.aichi.lg.jp\r\n\r\n"
	if string(out.Header) != want {
		t.Errorf("header:\n%q\nwant\n%q", out.Header, want)
	}
}

func TestRewriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []RuleConfig
		in    Input
		err   string
	}{
		{"regexp result not an address", []RuleConfig{
			{Name: "strip", Regexp: `([^@]+)@strip\.jp`, Replace: "$1", Source: inner},
		}, Input{From: "a@strip.jp", Source: SourceInner},
			`rules[0] at env-from (a@strip.jp): rule "strip" turned a@strip.jp into "a", which is not a valid address: "a" is not of the form local@domain`},
		{"regexp brings an address back", []RuleConfig{
			{Name: "ab", Domain: "a.jp", Replace: "b.jp", Source: inner},
			{Name: "back", Regexp: `(.*)@b\.jp`, Replace: "$1@a.jp", Source: inner},
		}, Input{To: []string{"x@a.jp"}, Source: SourceInner},
			"rules[1] at env-to #1 (x@b.jp): x@a.jp is back to an earlier value: the rules loop"},
		{"result too long", []RuleConfig{
			{Name: "long", Domain: "a.jp", Replace: strings.Repeat(strings.Repeat("d", 60)+".", 4) + "jp", Source: inner},
		}, Input{To: []string{strings.Repeat("l", 64) + "@a.jp"}, Source: SourceInner},
			"is longer than 254 octets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustNew(t, Config{Rules: tt.rules})
			out, err := w.Default().Rewrite(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if len(out.Trace) == 0 {
				t.Error("no trace for the failing step")
			}
		})
	}
}

func TestRewriteHeaderSplices(t *testing.T) {
	w := mustNew(t, Config{Rules: []RuleConfig{
		{Name: "person", Address: "taro yamada@pref.aichi.jp", Replace: "t.yamada@pref.aichi.lg.jp", Source: inner},
		{Name: "plain", Address: "ichiro@pref.aichi.jp", Replace: "ichiro suzuki@pref.aichi.lg.jp", Source: inner},
		{Name: "tab", Table: testTable, Source: inner, Classes: []string{"header_recipient"}},
	}})
	hdr := "From: x@example.com\r\n" +
		"To: \"Yamada, Taro\" <\"taro yamada\"@pref.aichi.jp>, Ichiro <ichiro@Pref.Aichi.JP>,\r\n" +
		"\t(c) k@city.nagoya.jp (n)\r\n" +
		"Subject: To: a@pref.aichi.jp\r\n\r\n"
	out, err := w.Default().Rewrite(Input{From: "x@example.com", Header: []byte(hdr), Source: SourceInner})
	if err != nil {
		t.Fatal(err)
	}
	want := "From: x@example.com\r\n" +
		"To: \"Yamada, Taro\" <t.yamada@pref.aichi.lg.jp>, Ichiro <\"ichiro suzuki\"@pref.aichi.lg.jp>,\r\n" +
		"\t(c) k@city.nagoya.lg.jp (n)\r\n" +
		"Subject: To: a@pref.aichi.jp\r\n\r\n"
	if string(out.Header) != want {
		t.Errorf("header:\n%s\nwant\n%s", out.Header, want)
	}
	// Nothing to do: the same memory comes back, and no header means none.
	same := []byte("To: friend@example.com\r\n\r\n")
	out, _ = w.Default().Rewrite(Input{Header: same, Source: SourceInner})
	if &out.Header[0] != &same[0] || out.Changed {
		t.Error("an unchanged header must be returned as is")
	}
	out, _ = w.Default().Rewrite(Input{To: []string{"a@pref.aichi.jp"}, Source: SourceInner})
	if out.Header != nil {
		t.Error("no header in, no header out")
	}
}

func TestRewriteRefold(t *testing.T) {
	w := mustNew(t, Config{Rules: []RuleConfig{{Name: "tab", Table: testTable, Source: inner}}})
	var items []string
	for i := range 52 {
		items = append(items, fmt.Sprintf("u%02d@pref.aichi.jp", i))
	}
	line := "To: " + strings.Join(items, ", ")
	short := "Cc: a@pref.aichi.jp, b@pref.aichi.jp"
	hdr := line + "\n" + short + "\n\n"
	if len(line) > maxLine {
		t.Fatalf("test line already %d octets", len(line))
	}
	out, err := w.Default().Rewrite(Input{Header: []byte(hdr), Source: SourceInner})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out.Header)
	fields := splitFields(got, nil)
	if len(fields) != 2 {
		t.Fatalf("%d fields", len(fields))
	}
	to := got[fields[0].start:fields[0].end]
	if n := longestLine(to); n > foldLine {
		t.Errorf("refolded To has a line of %d octets:\n%s", n, to)
	}
	if strings.Contains(to, "\r") || !strings.Contains(to, ",\n ") {
		t.Errorf("refold must use the field's own LF and fold after commas:\n%q", to)
	}
	unfolded := strings.ReplaceAll(to, "\n ", " ")
	if want := strings.ReplaceAll(line, ".aichi.jp", ".aichi.lg.jp") + "\n"; unfolded != want {
		t.Errorf("refolding changed more than line breaks:\n%q\nwant\n%q", unfolded, want)
	}
	if c := got[fields[1].start:fields[1].end]; c != "Cc: a@pref.aichi.lg.jp, b@pref.aichi.lg.jp\n" {
		t.Errorf("short field folded: %q", c)
	}
}

func TestRefoldUnbreakable(t *testing.T) {
	f := "To: " + strings.Repeat("x", 1200) + "@a.jp\r\n"
	got, ok := refold(f, "\r\n")
	if ok || got != f {
		t.Errorf("an unbreakable line must come back as it is with ok=false")
	}
	f = "To: \"" + strings.Repeat("a ", 600) + "\" <u@a.jp>\r\n"
	got, ok = refold(f, "\r\n")
	if !ok || longestLine(got) > maxLine || strings.ReplaceAll(got, "\r\n ", " ") != f {
		t.Errorf("a long quoted phrase must fold inside the quotes: ok=%v", ok)
	}
}
