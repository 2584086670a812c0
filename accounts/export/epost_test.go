package export

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

// epostFixtures are E-Post files as they come off a Windows server:
// Shift_JIS (CP932) with CR LF, made from readable UTF-8 sources
// (NAME.src.EXT -> NAME.EXT) so the binary files stay reviewable.
var epostFixtures = []string{
	"epost/aliimport.src.sh",
	"epost/broken.src.txt",
	"epost/inbox/baito/sender.src.dat",
	"epost/inbox/bucho/sender.src.dat",
	"epost/MS/broken.src.dat",
}

func fixtureName(src string) string { return strings.Replace(src, ".src.", ".", 1) }

func TestEPostFixtures(t *testing.T) {
	for _, src := range epostFixtures {
		text, err := os.ReadFile(filepath.Join("testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		want, err := japanese.ShiftJIS.NewEncoder().Bytes(bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join("testdata", fixtureName(src))
		if *update {
			if err := os.WriteFile(dst, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from its encoded source %s (go test -update): %v", dst, src, err)
		}
	}
}

func TestEPostGolden(t *testing.T) {
	cases := []struct {
		file string
		read func(f *os.File, name string) string
	}{
		{"epost/aliimport.sh", readAliasesDump},
		{"epost/broken.txt", readAliasesDump},
		{"epost/inbox/baito/sender.dat", readSenderDump("baito")},
		{"epost/inbox/bucho/sender.dat", readSenderDump("bucho")},
		{"epost/MS/broken.dat", readSenderDump("")},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := tc.read(f, tc.file)
			golden := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func readAliasesDump(f *os.File, name string) string {
	res, err := ReadAliasCommands(f, name, AliasCommandsOptions{})
	return dump(res, err)
}

func readSenderDump(local string) func(*os.File, string) string {
	return func(f *os.File, name string) string {
		sd, err := ReadSenderDat(f, name, SenderDatOptions{Local: local})
		var b strings.Builder
		fmt.Fprintf(&b, "lines: %d\npatches:\n", sd.Lines)
		for _, p := range sd.Patches {
			fmt.Fprintf(&b, "  %s:%d account=%q@%q set=%v clear=%v allow=%v set_allow=%v\n", p.Source, p.Line, p.Local, p.Domain, p.Set, p.Clear, p.Allow, p.SetAllow)
		}
		b.WriteString("errors:\n")
		for _, e := range sd.Errors {
			fmt.Fprintf(&b, "  %v\n", e)
		}
		if err != nil {
			fmt.Fprintf(&b, "result: %v\n", err)
		}
		return b.String()
	}
}

func TestSenderDatSemantics(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "clear=outbound_blocked allow=[]"},
		{"*@a.jp,-1\n", "clear=outbound_blocked allow=[]"},
		{"*@a.jp,-1\nSato@B.JP,-1\n*,0\n", "set=outbound_blocked clear=- allow=[*@a.jp sato@b.jp]"},
		{"*,0\n", "set=outbound_blocked clear=- allow=[]"},
		{"*@a.jp,-1\n*@spam.jp,0\n*,0\n", "set=outbound_blocked clear=- allow=[*@a.jp]"},
		{"*@spam.jp,0\n", "x:1: refusing only *@spam.jp while allowing the rest"},
		{"*@spam.jp,0\n*,-1\n", "x:1: refusing only *@spam.jp"},
	}
	// The global file: refusing nothing changes nothing; a block applies
	// to every account.
	if sd, err := ReadSenderDat(strings.NewReader("*,-1\n"), "g", SenderDatOptions{}); err != nil || len(sd.Patches) != 0 {
		t.Errorf("global allow-all: %v, %+v", err, sd.Patches)
	}
	if sd, err := ReadSenderDat(strings.NewReader("*@a.jp,-1\n*,0\n"), "g", SenderDatOptions{}); err != nil || len(sd.Patches) != 1 || sd.Patches[0].Local != "" {
		t.Errorf("global block: %v, %+v", err, sd.Patches)
	}
	for _, c := range cases {
		sd, err := ReadSenderDat(strings.NewReader(c.in), "x", SenderDatOptions{Local: "u"})
		got := fmt.Sprint(err)
		if len(sd.Patches) == 1 {
			p := sd.Patches[0]
			got = fmt.Sprintf("set=%v clear=%v allow=%v", p.Set, p.Clear, p.Allow)
			if p.Set == 0 {
				got = fmt.Sprintf("clear=%v allow=%v", p.Clear, p.Allow)
			}
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%q: got %s, want %s", c.in, got, c.want)
		}
	}
}
