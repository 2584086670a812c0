package export

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/accounts"
)

func addEPostSeeds(f *testing.F) {
	for _, src := range epostFixtures {
		for _, name := range []string{src, fixtureName(src)} {
			if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzReadAliasCommands: no panic; every alias read is accepted by the
// directory (its pattern and target re-parse).
func FuzzReadAliasCommands(f *testing.F) {
	addEPostSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := ReadAliasCommands(bytes.NewReader(data), "f", AliasCommandsOptions{})
		for _, r := range res.Records {
			var buf bytes.Buffer
			if err := accounts.WriteRecords(&buf, []accounts.Record{r}); err != nil {
				t.Fatal(err)
			}
			if _, err := accounts.ParseFile("f", buf.Bytes()); err != nil {
				t.Fatalf("alias %s -> %s accepted but not valid in a directory: %v", r.Alias, r.Target, err)
			}
		}
	})
}

// FuzzReadSenderDat: no panic; a per-account file gives either one patch
// or errors, and the patch's allow list is canonical.
func FuzzReadSenderDat(f *testing.F) {
	addEPostSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := ReadSenderDat(bytes.NewReader(data), "f", SenderDatOptions{Local: "u"})
		if (err == nil) != (len(sd.Patches) == 1) {
			t.Fatalf("err %v with %d patches", err, len(sd.Patches))
		}
		for _, p := range sd.Patches {
			for _, e := range p.Allow {
				if n, err := accounts.NormalizeAllow(e); err != nil || n != e {
					t.Fatalf("allow entry %q not canonical: %q %v", e, n, err)
				}
			}
		}
	})
}
