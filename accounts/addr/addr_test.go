package addr

import (
	"strings"
	"testing"
)

func TestDomain(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{in: "pref.aichi.lg.jp", want: "pref.aichi.lg.jp"},
		{in: "Pref.Aichi.JP.", want: "pref.aichi.jp"},
		{in: "ＥＸＡＭＰＬＥ．ｊｐ", want: "example.jp"},
		{in: "日本語.jp", want: "xn--wgv71a119e.jp"},
		{in: "_dmarc.example.jp", want: "_dmarc.example.jp"},
		{in: "[192.0.2.1]", want: "[192.0.2.1]"},
		{in: "[IPv6:::1]", want: "[ipv6:::1]"},
		{in: "", bad: true},
		{in: ".", bad: true},
		{in: "a..b.jp", bad: true},
		{in: "-a.jp", bad: true},
		{in: "a-.jp", bad: true},
		{in: "a b.jp", bad: true},
		{in: "[1.2.3.4", bad: true},
		{in: strings.Repeat("a", 64) + ".jp", bad: true},
		{in: strings.Repeat("a.", 130) + "jp", bad: true},
	}
	for _, c := range cases {
		got, err := Domain(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("Domain(%q) = %q, want error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Domain(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in, local, domain string
		bad               bool
	}{
		{in: "Tanaka@City.Toyokawa.LG.JP", local: "Tanaka", domain: "city.toyokawa.lg.jp"},
		{in: "taro..yamada@docomo.ne.jp", local: "taro..yamada", domain: "docomo.ne.jp"},
		{in: "taro.@ezweb.ne.jp", local: "taro.", domain: "ezweb.ne.jp"},
		{in: "a@b@example.jp", local: "a@b", domain: "example.jp"},
		{in: "noat", bad: true},
		{in: "@example.jp", bad: true},
		{in: "user@", bad: true},
		{in: "us\ter@example.jp", bad: true},
		{in: strings.Repeat("x", 65) + "@example.jp", bad: true},
	}
	for _, c := range cases {
		l, d, err := Parse(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("Parse(%q) succeeded, want error", c.in)
			}
			continue
		}
		if err != nil || l != c.local || d != c.domain {
			t.Errorf("Parse(%q) = %q, %q, %v", c.in, l, d, err)
		}
	}
}

func TestQuoteLocal(t *testing.T) {
	cases := map[string]string{
		"tanaka":        "tanaka",
		"taro..yamada":  "taro..yamada",
		"john doe":      `"john doe"`,
		`a"b`:           `"a\"b"`,
		"a@b":           `"a@b"`,
		"user+tag":      "user+tag",
		"日本":            "日本",
		`back\slash`:    `"back\\slash"`,
		"percent%hack":  "percent%hack",
		"comma,in,part": `"comma,in,part"`,
	}
	for in, want := range cases {
		if got := QuoteLocal(in); got != want {
			t.Errorf("QuoteLocal(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestKey(t *testing.T) {
	if got := Key("TaNaKa", "example.jp", true); got != "tanaka@example.jp" {
		t.Errorf("folded key = %q", got)
	}
	if got := Key("TaNaKa", "example.jp", false); got != "TaNaKa@example.jp" {
		t.Errorf("unfolded key = %q", got)
	}
}

func FuzzDomain(f *testing.F) {
	for _, s := range []string{"pref.aichi.jp", "ＥＸＡＭＰＬＥ．ｊｐ", "日本語.jp", "[1.2.3.4]", "a..b", "-x.jp", "x.jp."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Domain(s)
		if err != nil {
			return
		}
		// Canonical forms are fixed points.
		d2, err := Domain(d)
		if err != nil || d2 != d {
			t.Fatalf("Domain(%q) = %q, but Domain(%q) = %q, %v", s, d, d, d2, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a@b.jp", "taro..yamada@docomo.ne.jp", "x@[1.2.3.4]", "@", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, d, err := Parse(s)
		if err != nil {
			return
		}
		l2, d2, err := Parse(l + "@" + d)
		if err != nil || l2 != l || d2 != d {
			t.Fatalf("Parse(%q) = %q@%q does not re-parse: %q@%q %v", s, l, d, l2, d2, err)
		}
	})
}
