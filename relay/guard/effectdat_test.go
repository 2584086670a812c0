package guard

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// formatProblems is the report the command prints on standard error.
func formatProblems(im *Imported) string {
	var b strings.Builder
	for _, p := range im.Problems {
		fmt.Fprintf(&b, "%s:%d: %s (%s)\n", im.Source, p.Line, p.Reason, p.Text)
	}
	return b.String()
}

func TestImportEffectDatGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/effect/*.dat")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			im := ImportEffectDat(data, f)
			var out bytes.Buffer
			if err := im.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			got := out.String() + "--- problems\n" + formatProblems(im)
			golden := strings.TrimSuffix(f, ".dat") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update):\n%s", golden, got)
			}
			checkRoundTrip(t, im, out.Bytes())
		})
	}
}

// checkRoundTrip parses the YAML back as koanf would and validates it.
func checkRoundTrip(t *testing.T, im *Imported, y []byte) {
	t.Helper()
	m, err := yaml.Parser().Unmarshal(y)
	if err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, y)
	}
	// The output is a whole relay.guard block: it pastes as it is.
	var whole struct {
		Relay struct {
			Guard Config `koanf:"guard"`
		} `koanf:"relay"`
	}
	whole.Relay.Guard = DefaultConfig()
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{TagName: "koanf", ErrorUnused: true, Result: &whole})
	if err != nil {
		t.Fatal(err)
	}
	c := &whole.Relay.Guard
	if err := dec.Decode(m); err != nil {
		t.Fatalf("decode: %v\n%s", err, y)
	}
	if len(c.Rules) != len(im.Rules) || (len(c.Rules) > 0 && !reflect.DeepEqual(c.Rules, im.Rules)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", c.Rules, im.Rules)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("converted rules do not validate: %v\n%s", err, y)
	}
}

func TestImportedSemantics(t *testing.T) {
	data, err := os.ReadFile("testdata/effect/gateway.dat")
	if err != nil {
		t.Fatal(err)
	}
	im := ImportEffectDat(data, "gateway.dat")
	c := DefaultConfig()
	c.Rules = im.Rules
	g := newTestGuard(t, c)
	for _, tc := range []struct {
		c          Client
		from, rcpt string
		code       int
		rule       string
	}{
		{client("192.168.0.10", ""), "taro@" + dom, "bob@example.net", 0, "gateway.dat:3"},
		{client("10.1.2.3", ""), "taro@" + dom, "bob@example.net", 0, "gateway.dat:5"},
		{client("192.168.1.5", ""), "alice@example.com", "taro@" + dom, 550, "gateway.dat:6"},
		{client("192.168.0.10", ""), "postmaster@" + dom, "bob@example.net", 0, "gateway.dat:3"},
		{client("198.18.0.1", ""), "postmaster@" + dom, "taro@" + dom, 550, "gateway.dat:7"},
		{client("192.168.5.77", ""), "alice@example.com", "bob@example.net", 554, "gateway.dat:9"},
		{client("198.18.0.1", "taro@"+dom), "taro@" + dom, "bob@example.net", 0, "gateway.dat:12"},
		{client("198.18.0.1", ""), "alice@example.com", "bob@example.net", 554, "gateway.dat:12"},
		{client("198.18.0.1", ""), "alice@example.com", "taro@" + dom, 0, ruleLocalRcpt},
		{client("2001:db8:10::5", ""), "taro@" + dom, "bob@example.net", 0, "gateway.dat:10"},
		{client("198.18.0.1", ""), "spam@abc.co.jp", "taro@" + dom, 550, "gateway.dat:11"},
	} {
		v := g.CheckRcpt(tc.c, tc.from, tc.rcpt)
		if v.Code != tc.code || v.Rule != tc.rule {
			t.Errorf("%v %s -> %s: got %d %s (%s), want %d %s", tc.c.IP, tc.from, tc.rcpt, v.Code, v.Rule, v.Reason, tc.code, tc.rule)
		}
	}
}

// A line in neither UTF-8 nor Shift_JIS is refused on its own; a comment
// may hold any bytes.
func TestImportEffectDatEncoding(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		rules      int
		problems   string
	}{
		{"utf-8", "# コメント\n192.168.0.1 true\n", 1, ""},
		{"utf-8 bom", "\ufeff192.168.0.1 true\n", 1, ""},
		{"shift_jis comment", "# \x83R\x83\x81\x83\x93\x83g\r\n192.168.0.1 true\r\n", 1, ""},
		{
			"bad bytes in a pattern", "# \xff comment\r\n192.168.0.1 true\r\nta\x82\xffro@x.jp false\r\n", 1,
			"effect.dat:3: neither UTF-8 nor Shift_JIS (byte 0x82 at byte 3 of the line): the line is left out; correct it, or save the file as UTF-8, and import again (ta\ufffd\ufffdro@x.jp false)\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := ImportEffectDat([]byte(tc.data), "effect.dat")
			if len(im.Rules) != tc.rules || formatProblems(im) != tc.problems {
				t.Errorf("%d rules, problems %q; want %d, %q", len(im.Rules), formatProblems(im), tc.rules, tc.problems)
			}
		})
	}
}

func TestEffectNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.0.10":   "192.168.0.10/32",
		"192.168.*.*":    "192.168.0.0/16",
		"10.*.*.*":       "10.0.0.0/8",
		"192.168.1.*":    "192.168.1.0/24",
		"192.168.1.0/28": "192.168.1.0/28",
		"2001:db8::1":    "2001:db8::1/128",
		"192.168.*.239":  "error",
		"192.168.1.*/24": "error",
		"192.168.300.*":  "error",
	} {
		got, err := effectNetwork(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func FuzzImportEffectDat(f *testing.F) {
	files, _ := filepath.Glob("testdata/effect/*.dat")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\ufeff192.168.0.1 TRUE\n*@*.x.jp false\n#<> false\n1.2.3.4 only\n"))
	f.Add([]byte("a@b@c false\n::ffff:1.2.3.4 true\n0.0.0.0/0 true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		im := ImportEffectDat(data, "effect.dat")
		c := DefaultConfig()
		c.Rules = im.Rules
		if err := c.Validate(); err != nil {
			t.Fatalf("converted rules do not validate: %v", err)
		}
		var out bytes.Buffer
		if err := im.WriteYAML(&out); err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, im, out.Bytes())
	})
}
