package rewrite

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Building blocks for random headers: the kinds of names, addresses and
// noise real Japanese mail carries.
var (
	genNames = []string{
		"", "Taro Yamada", `"Yamada, Taro"`, "=?ISO-2022-JP?B?GyRCS0xAbhsoQiAbJEJCQE86GyhC?=",
		`"=?ISO-2022-JP?B?GyRCP007djJdGyhC?="`, "=?UTF-8?Q?a@b,\"c?=", "豊川 太郎", "\x1b$B\"(0u\x1b(B",
		"\"\x83\\\x83t\"", "taro@home", "(comment) Name",
	}
	genLocals  = []string{"user", "kikaku", "soumu", "Kikaku-Old", "taro..yamada", "taro.", ".hanako", `"odd@local"`, `"a\"b"`, `"taro yamada"`, "x+tag"}
	genDomains = []string{
		"pref.aichi.jp", "PREF.Aichi.JP", "city.nagoya.jp.", "city.toyokawa.aichi.jp", "mail.city.toyokawa.aichi.jp",
		"soumu.pref.aichi.jp", "pref.aichi.lg.jp", "example.com", "docomo.ne.jp", "[192.0.2.1]", "xn--r8jz45g.jp",
	}
	genFields = []string{"From", "To", "cc", "Bcc", "Reply-To", "Sender", "Resent-To", "Resent-From", "Subject", "Received", "X-Note"}
	genNoise  = []string{" (note)", " (nested (deep) @x)", "", "", ""}
)

func randomMailbox(r *rand.Rand) string {
	spec := genLocals[r.IntN(len(genLocals))] + "@" + genDomains[r.IntN(len(genDomains))]
	name := genNames[r.IntN(len(genNames))]
	noise := genNoise[r.IntN(len(genNoise))]
	switch r.IntN(4) {
	case 0:
		return spec + noise
	case 1:
		return "<" + spec + ">" + noise
	case 2:
		return "<@relay.example:" + spec + ">"
	}
	if name == "" {
		name = "Name"
	}
	return name + " <" + spec + ">" + noise
}

func randomHeader(r *rand.Rand) string {
	eol := "\r\n"
	if r.IntN(3) == 0 {
		eol = "\n"
	}
	var b strings.Builder
	for range 1 + r.IntN(8) {
		name := genFields[r.IntN(len(genFields))]
		b.WriteString(name + ":")
		var parts []string
		for range 1 + r.IntN(5) {
			switch r.IntN(10) {
			case 0:
				parts = append(parts, "Group: "+randomMailbox(r)+", "+randomMailbox(r)+";")
			case 1:
				parts = append(parts, "undisclosed-recipients:;")
			default:
				parts = append(parts, randomMailbox(r))
			}
		}
		for i, p := range parts {
			sep := " "
			if i > 0 {
				sep = []string{", ", "," + eol + " ", "," + eol + "\t"}[r.IntN(3)]
			}
			b.WriteString(sep + p)
		}
		if r.IntN(20) == 0 { // damage: the field must then be left alone
			b.WriteString([]string{` "`, " (", " <", ">", "\r"}[r.IntN(5)])
		}
		b.WriteString(eol)
	}
	b.WriteString(eol)
	return b.String()
}

// TestPropertyRandomHeaders checks the invariants (untouched fields
// byte-identical, names and separators intact, idempotence) on random
// headers built from realistic pieces.
func TestPropertyRandomHeaders(t *testing.T) {
	rs := mustNew(t, testConfig()).Default()
	r := rand.New(rand.NewPCG(5, 3))
	changed, noted := 0, 0
	for i := range 400 {
		hdr := randomHeader(r)
		in := Input{From: "user@city.toyokawa.aichi.jp", To: []string{"kikaku@pref.aichi.jp"}, Header: []byte(hdr), Source: SourceInner}
		out, err := rs.Rewrite(in)
		if err != nil {
			t.Fatalf("header %d: %v\n%q", i, err, hdr)
		}
		ok := t.Run("", func(t *testing.T) { checkInvariants(t, rs, in, out) })
		if !ok {
			t.Fatalf("header %d:\n%q", i, hdr)
		}
		if string(out.Header) != hdr {
			changed++
		}
		for _, st := range out.Trace {
			if st.Note != "" && st.Rule == "" {
				noted++
				break
			}
		}
	}
	// The generator must exercise both rewriting and refusals.
	if changed < 200 || noted < 20 {
		t.Errorf("only %d headers changed and %d had fields left alone", changed, noted)
	}
}

// FuzzRewrite: no panic on any header, and when the rewrite succeeds the
// invariants hold.
func FuzzRewrite(f *testing.F) {
	files, _ := filepath.Glob("testdata/corpus/*.eml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("To: a@pref.aichi.jp,\r\n\tb@city.nagoya.jp\r\n\r\n"))
	rs := mustNew(f, testConfig()).Default()
	f.Fuzz(func(t *testing.T, hdr []byte) {
		in := Input{From: "user@city.toyokawa.aichi.jp", To: []string{"kikaku@pref.aichi.jp"}, Header: hdr, Source: SourceInner}
		out, err := rs.Rewrite(in)
		if err != nil {
			return
		}
		checkInvariants(t, rs, in, out)
	})
}
