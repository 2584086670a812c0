package sanitize

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The third-party corpus: about 400 test messages of public MIME parser
// suites (stalwartlabs/mail-parser with the Hunny Software and Dovecot
// samples, mikel/mail, jpmobile/jpmobile, jhillyerd/enmime,
// apache/james-mime4j), byte for byte as their repositories hold them.
// testdata/thirdparty.tsv lists each file: where it comes from, its
// licence, its SHA-256, and what the sanitize stage makes of it with the
// municipal profile — shown, or withheld and why — with a digest of the
// golden rendering (go test -update rewrites those two columns).
//
// The files themselves are not in the repository: the test reads them
// from $SEKISHO_THIRDPARTY_CORPUS, else from testdata/thirdparty/, and
// skips saying so when neither holds them. Each file is
// `git show COMMIT:PATH` in a clone of its repository, saved under the
// manifest's name.

const thirdPartyManifest = "testdata/thirdparty.tsv"

type thirdPartyEntry struct {
	file, repo, path, commit, licence, sha string
	result, digest                         string // "shown" or "withheld: why"; the rendering's digest
}

const thirdPartyHeader = "# file\trepository\tpath\tcommit\tlicence\tsha256\tresult\tdigest"

func readThirdPartyManifest(t *testing.T) (comments []string, entries []thirdPartyEntry) {
	t.Helper()
	f, err := os.Open(thirdPartyManifest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			if line != thirdPartyHeader {
				comments = append(comments, line)
			}
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 8 {
			t.Fatalf("%s:%d: %d columns, want 8", thirdPartyManifest, n, len(c))
		}
		entries = append(entries, thirdPartyEntry{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return comments, entries
}

func writeThirdPartyManifest(t *testing.T, comments []string, entries []thirdPartyEntry) {
	t.Helper()
	var b strings.Builder
	for _, c := range comments {
		b.WriteString(c + "\n")
	}
	b.WriteString(thirdPartyHeader + "\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.file, e.repo, e.path, e.commit, e.licence, e.sha, e.result, e.digest)
	}
	if err := os.WriteFile(thirdPartyManifest, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// thirdPartyDir is where the corpus is, "" when it is nowhere.
func thirdPartyDir() string {
	if d := os.Getenv("SEKISHO_THIRDPARTY_CORPUS"); d != "" {
		return d
	}
	if fi, err := os.Stat(filepath.Join("testdata", "thirdparty")); err == nil && fi.IsDir() {
		return filepath.Join("testdata", "thirdparty")
	}
	return ""
}

func TestThirdPartyCorpus(t *testing.T) {
	comments, entries := readThirdPartyManifest(t)
	dir := thirdPartyDir()
	if dir == "" {
		t.Skipf("the third-party corpus is not here: set SEKISHO_THIRDPARTY_CORPUS to a folder holding the %d files %s lists (git show COMMIT:PATH of each)", len(entries), thirdPartyManifest)
	}
	listed := map[string]bool{}
	withheld := 0
	for i := range entries {
		e := &entries[i]
		listed[e.file] = true
		t.Run(e.file, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.file)))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(msg); hex.EncodeToString(sum[:]) != e.sha {
				t.Fatalf("not the bytes the manifest lists (SHA-256 %x)", sum)
			}
			rep, golden := sanitizeCorpusMessage(t, msg)
			result := "shown"
			if rep.Unparseable {
				result = "withheld: " + rep.ParseError
				withheld++
			}
			sum := sha256.Sum256([]byte(golden))
			digest := hex.EncodeToString(sum[:8])
			if *update {
				e.result, e.digest = result, digest
				return
			}
			if result != e.result {
				t.Errorf("%s, the manifest says %s", result, e.result)
			}
			if digest != e.digest {
				t.Errorf("output differs from the digest in %s (go test -update to accept):\n%s", thirdPartyManifest, capText(golden, 6000))
			}
		})
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !listed[filepath.ToSlash(rel)] {
			t.Errorf("%s is in the corpus folder but not in %s", rel, thirdPartyManifest)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if *update {
		writeThirdPartyManifest(t, comments, entries)
	}
	t.Logf("%d messages, %d withheld", len(entries), withheld)
}

// sanitizeCorpusMessage sanitizes one message of a real corpus with the
// municipal profile and returns the report and the golden rendering
// (which checks the output is RFC 5322/2045-clean).
func sanitizeCorpusMessage(t *testing.T, msg []byte) (*Report, string) {
	t.Helper()
	o := municipalOptions()
	o.TempDir = t.TempDir()
	var out bytes.Buffer
	rep, err := Message(bytes.NewReader(msg), &out, testOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	return rep, goldenText(t, rep, out.Bytes())
}

// thirdPartySeeds are the corpus's messages, for the fuzz target, when
// the corpus is here.
func thirdPartySeeds() [][]byte {
	dir := thirdPartyDir()
	if dir == "" {
		return nil
	}
	var seeds [][]byte
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, b)
			}
		}
		return nil
	})
	return seeds
}
