package rewrite

import (
	"strings"
	"testing"
)

// describeMailboxes renders what the parser found: "spec|domain" for a
// rewritable address, "-spec" for one without a domain, "!problem".
func describeMailboxes(s string, mbs []mailbox) string {
	var parts []string
	for _, mb := range mbs {
		switch {
		case mb.problem != "":
			parts = append(parts, "!"+mb.problem)
		case mb.noDomain:
			parts = append(parts, "-"+s[mb.start:mb.end])
		default:
			parts = append(parts, s[mb.start:mb.end]+"|"+s[mb.domStart:mb.domEnd])
		}
	}
	return strings.Join(parts, " ; ")
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"bare", "a@b.jp", "a@b.jp|b.jp", ""},
		{"list", " a@b.jp, c@d.jp ", "a@b.jp|b.jp ; c@d.jp|d.jp", ""},
		{"angle with phrase", "Taro Yamada <taro@x.jp>", "taro@x.jp|x.jp", ""},
		{"encoded word name", "=?ISO-2022-JP?B?GyRCS0xAbhsoQg==?= <u@city.toyokawa.aichi.jp>", "u@city.toyokawa.aichi.jp|city.toyokawa.aichi.jp", ""},
		{"sloppy encoded word with specials", `=?UTF-8?Q?a@b,"c?= <u@x.jp>`, "u@x.jp|x.jp", ""},
		{"quoted encoded word", `"=?ISO-2022-JP?B?GyRCNEQ2LRsoQg==?=" <q@x.jp>`, "q@x.jp|x.jp", ""},
		{"phrase with at sign", "taro@home <taro@x.jp>", "taro@x.jp|x.jp", ""},
		{"folded list", "a@b.jp,\r\n c@d.jp,\n\td@e.jp", "a@b.jp|b.jp ; c@d.jp|d.jp ; d@e.jp|e.jp", ""},
		{"comments", "(x@y.jp) a@b.jp (c@d.jp (nested)), <e@f.jp> (g)", "a@b.jp|b.jp ; e@f.jp|f.jp", ""},
		{"quoted local with at", `"odd@local"@x.jp`, `"odd@local"@x.jp|x.jp`, ""},
		{"quoted local with escape", `"a\"b"@x.jp, c@d.jp`, `"a\"b"@x.jp|x.jp ; c@d.jp|d.jp`, ""},
		{"carrier double dot", "taro..yamada@docomo.ne.jp", "taro..yamada@docomo.ne.jp|docomo.ne.jp", ""},
		{"carrier trailing dot", "taro.@ezweb.ne.jp", "taro.@ezweb.ne.jp|ezweb.ne.jp", ""},
		{"carrier leading dot in angle", "<.taro@docomo.ne.jp>", ".taro@docomo.ne.jp|docomo.ne.jp", ""},
		{"empty group", "undisclosed-recipients:;", "", ""},
		{"group", `Team: a@b.jp, "B" <c@d.jp>;, e@f.jp`, "a@b.jp|b.jp ; c@d.jp|d.jp ; e@f.jp|f.jp", ""},
		{"group without semicolon", "Team: a@b.jp", "a@b.jp|b.jp", ""},
		{"source route", "<@r1.jp,@r2.jp:u@x.jp>", "u@x.jp|x.jp", ""},
		{"domain literal", "u@[192.0.2.1]", "u@[192.0.2.1]|[192.0.2.1]", ""},
		{"null", "<>", "-<>", ""},
		{"no domain", "postmaster", "-postmaster", ""},
		{"two ats", "a@@b.jp, c@d.jp", "!more than one '@' ; c@d.jp|d.jp", ""},
		{"obsolete domain", "u @ pref . aichi . jp", "!white space or comments inside the domain (obsolete syntax)", ""},
		{"words without angle", "Taro Yamada taro@x.jp", "!words before an address that has no <...>", ""},
		{"two angles", "<a@b.jp> <c@d.jp>", "!more than one <...> in one address", ""},
		{"text after angle", "<a@b.jp> c@d.jp", "!text after <...>", ""},
		{"nothing after at", "a@", "!nothing after '@'", ""},
		{"nothing before at", "@x.jp", "!nothing before '@'", ""},
		{"raw utf-8 name", "豊川 太郎 <u@x.jp>", "u@x.jp|x.jp", ""},
		{"raw iso-2022-jp name with quote bytes", "\x1b$B\"(0u\x1b(B <k@x.jp>", "k@x.jp|x.jp", ""},
		{"redundant iso-2022-jp shift", "abc\x1b(B def <d@x.jp>", "d@x.jp|x.jp", ""},
		{"raw iso-2022-jp in quotes", "\"\x1b$B\")4k2h\x1b(B\" <y@x.jp>", "y@x.jp|x.jp", ""},
		{"raw shift_jis with backslash trail", "\"\x83\\\x83t\x83g\x95\\\x8e\xa6\" <s@x.jp>, \x95\\ <h@y.jp>", "s@x.jp|x.jp ; h@y.jp|y.jp", ""},

		{"unclosed quote", `"unclosed <a@b.jp>`, "", "unclosed quoted string"},
		{"unclosed comment", "(unclosed a@b.jp", "", "unclosed comment"},
		{"stray paren", "a@b.jp)", "", "')' without '('"},
		{"unclosed angle", "<a@b.jp", "", "'<' without '>'"},
		{"stray angle", "a@b.jp>", "", "'>' without '<'"},
		{"comma in angle", "<a@b.jp, c@d.jp>", "", "'<' without '>'"},
		{"nested group", "A: B: c@d.jp;;", "", "a group inside a group"},
		{"semicolon outside group", "a@b.jp;", "", "';' outside a group"},
		{"text after group", "A: b@c.jp; d@e.jp", "", "text after the end of a group"},
		{"bare cr", "a@b.jp\r c@d.jp", "", "bare CR"},
		{"unfolded lf", "a@b.jp\nc@d.jp", "", "line break not followed by white space"},
		{"unclosed literal", "a@[1.2.3.4", "", "unclosed domain literal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbs, err := parseAddressList(tt.in, 0, len(tt.in), nil)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got := describeMailboxes(tt.in, mbs); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestUnquoteLocal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"taro", "taro"},
		{"taro..yamada", "taro..yamada"},
		{`"odd@local"`, "odd@local"},
		{`"a\"b"`, `a"b`},
		{`"taro yamada"`, "taro yamada"},
		{`"a".b`, "a.b"},
		{"taro (comment) ", "taro"},
	}
	for _, tt := range tests {
		if got := unquoteLocal(tt.in); got != tt.want {
			t.Errorf("unquoteLocal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzTokenize: no panic; the spans are inside the value, in order, and a
// rewritable address has its '@' between local part and domain.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"a@b.jp", `"x@y" <a@b.jp>, (c) d@e.jp`, "A: b@c.jp;, <@r:d@e.jp>", "=?ISO-2022-JP?B?GyRCS0xAbhsoQg==?= <u@x.jp>",
		"\x1b$B\"(0u\x1b(B <k@x.jp>", "\"\x83\\\" <s@x.jp>", "taro..yamada@docomo.ne.jp,\r\n taro.@ezweb.ne.jp", "<>", "u @ a . b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mbs, err := parseAddressList(s, 0, len(s), nil)
		if err != nil {
			return
		}
		prev := 0
		for _, mb := range mbs {
			if mb.start < prev || mb.end < mb.start || mb.end > len(s) {
				t.Fatalf("bad span %+v in %q", mb, s)
			}
			prev = mb.start
			if mb.problem != "" || mb.noDomain {
				continue
			}
			if !(mb.start < mb.localEnd && mb.localEnd < mb.domStart && mb.domStart < mb.domEnd && mb.domEnd == mb.end) {
				t.Fatalf("bad address span %+v in %q", mb, s)
			}
			if !strings.Contains(s[mb.localEnd:mb.domStart], "@") {
				t.Fatalf("no @ between local part and domain: %+v in %q", mb, s)
			}
		}
	})
}
