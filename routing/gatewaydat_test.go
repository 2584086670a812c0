package routing

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"golang.org/x/text/encoding/japanese"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGatewayDat(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway.dat")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGatewayDat(bytes.NewReader(data), "gateway.dat")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := g.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	golden(t, "gateway.dat.yaml", out.Bytes())
	golden(t, "gateway.dat.problems", []byte(strings.Join(g.Problems, "\n")+"\n"))

	// The same table saved by Notepad in Shift_JIS with CRLF converts the same.
	crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	sjis, err := japanese.ShiftJIS.NewEncoder().Bytes(crlf)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := ParseGatewayDat(bytes.NewReader(append([]byte("\uFEFF"), sjis...)), "gateway.dat")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, g2) {
		t.Errorf("Shift_JIS/CRLF copy converts differently:\n%+v\n%+v", g, g2)
	}

	// What it prints is a valid routing section that says the same.
	cfg := decodeRoutingYAML(t, out.Bytes())
	if err := cfg.Validate(); err != nil {
		t.Fatalf("converted routes do not validate: %v", err)
	}
	if len(cfg.Routes) != len(g.Routes) {
		t.Fatalf("%d routes read back, want %d", len(cfg.Routes), len(g.Routes))
	}
	for i, e := range g.Routes {
		if !reflect.DeepEqual(cfg.Routes[i], e.Route) {
			t.Errorf("route %d read back as %+v, want %+v", i, cfg.Routes[i], e.Route)
		}
	}
	if !reflect.DeepEqual(cfg.SmartHost, g.SmartHost.Route.TargetConfig) {
		t.Errorf("smart host read back as %+v", cfg.SmartHost)
	}
}

func TestGatewayDatEmpty(t *testing.T) {
	g, err := ParseGatewayDat(strings.NewReader("; nothing here\n"), "g.dat")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	g.WriteYAML(&out)
	if cfg := decodeRoutingYAML(t, out.Bytes()); len(cfg.Routes) != 0 || !cfg.SmartHost.isZero() {
		t.Errorf("empty table read back as %+v", cfg)
	}
	// Bytes that are neither UTF-8 nor Shift_JIS cannot hide in a domain.
	g, err = ParseGatewayDat(bytes.NewReader([]byte("x\x82\xff.jp, h.jp\n")), "g.dat")
	if err != nil || len(g.Problems) != 1 || len(g.Routes) != 0 {
		t.Errorf("undecodable domain: %+v, %v", g, err)
	}
	// Only that line is lost; a comment may hold any bytes.
	g, err = ParseGatewayDat(bytes.NewReader([]byte("; \x82\xb1\x82\xf1 \xff\nx.jp, h.jp\ny.jp, \x82\xff.jp\r\nz.jp, h.jp\r\n")), "g.dat")
	want := []string{"g.dat:3: neither UTF-8 nor Shift_JIS (byte 0x82 at byte 7 of the line): the line is left out; correct it, or save the file as UTF-8, and import again"}
	if err != nil || !slices.Equal(g.Problems, want) || len(g.Routes) != 2 {
		t.Errorf("one undecodable line: %q, %+v, %v", g.Problems, g.Routes, err)
	}
}

// decodeRoutingYAML decodes a document's routing section strictly, as the
// configuration loader does.
func decodeRoutingYAML(t testing.TB, doc []byte) Config {
	t.Helper()
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(doc), yaml.Parser()); err != nil {
		t.Fatalf("YAML does not parse: %v\n%s", err, doc)
	}
	cfg := DefaultConfig()
	err := k.UnmarshalWithConf("routing", &cfg, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: &mapstructure.DecoderConfig{
		ErrorUnused: true, WeaklyTypedInput: true, Result: &cfg, TagName: "koanf",
	}})
	if err != nil {
		t.Fatalf("YAML does not decode: %v\n%s", err, doc)
	}
	return cfg
}

func FuzzGatewayDat(f *testing.F) {
	if seed, err := os.ReadFile("testdata/gateway.dat"); err == nil {
		f.Add(seed)
	}
	for _, s := range []string{
		"a.jp,b.jp,25\n", "*,[dns]\n", "*.x.jp , 10.0.0.1 , 65535\r\n", "u@x.jp,h.jp\n",
		"x.jp,\"h.jp\",25\n", "x.jp,h.jp,25 ; comment\n", "\uFEFF' c\na.jp,[::1]\n", "*\n", "#x,y\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGatewayDat(bytes.NewReader(data), "g.dat")
		if err != nil {
			return
		}
		lines := 0
		text := string(bytes.TrimPrefix(data, []byte("\uFEFF")))
		if !bytes.Equal([]byte(text), bytes.TrimPrefix(data, []byte("\uFEFF"))) || !isUTF8(text) {
			decoded, _ := japanese.ShiftJIS.NewDecoder().String(text)
			text = decoded
		}
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimSpace(l)
			if l != "" && l[0] != ';' && l[0] != '\'' {
				lines++
			}
		}
		got := len(g.Routes) + len(g.Notes) + len(g.Problems)
		if g.SmartHost != nil {
			got++
		}
		// TrimSpace and the parser's unicode.IsSpace agree except on
		// exotic spaces; allow the parser to see fewer lines, never more.
		if got > lines {
			t.Fatalf("%d results for %d lines", got, lines)
		}
		cfg := DefaultConfig()
		for _, e := range g.Routes {
			cfg.Routes = append(cfg.Routes, e.Route)
		}
		if g.SmartHost != nil {
			cfg.SmartHost = g.SmartHost.Route.TargetConfig
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("converted routes do not validate: %v\n%q", err, data)
		}
		var out bytes.Buffer
		g.WriteYAML(&out)
		back := decodeRoutingYAML(t, out.Bytes())
		if len(back.Routes) != len(cfg.Routes) || (len(cfg.Routes) > 0 && !reflect.DeepEqual(back.Routes, cfg.Routes)) {
			t.Fatalf("YAML reads back differently:\n%s", out.Bytes())
		}
	})
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
