package runner

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
)

// dkimSign signs mail from the inner networks and authenticated users
// whose From has a key, and leaves internet mail (even claiming our
// domain) and mail of other domains as it is.
func TestRunnerDKIMSign(t *testing.T) {
	pemb, _, err := dkimsign.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(keyFile, pemb, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.DefaultConfig()
	cfg.DKIMSign.Keys = []dkimsign.KeyConfig{{Domain: "city.example.jp", Selector: "gw", KeyFile: keyFile}}
	in, err := inspect.New(cfg, "gw.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{sh: &Shared{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	st := &Snapshot{Inspect: in}
	for _, tc := range []struct {
		source rewrite.Source
		from   string
		signed bool
	}{
		{rewrite.SourceInner, "tanaka@city.example.jp", true},
		{rewrite.SourceAuthenticated, "sato@sub.city.example.jp", true},
		{rewrite.SourceInternet, "forger@city.example.jp", false},
		{rewrite.SourceInner, "someone@other.example", false},
	} {
		msg := "From: " + tc.from + "\r\nSubject: s\r\n\r\nhello\r\n"
		open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }
		m := queue.Message{Envelope: queue.Envelope{Source: tc.source}}
		body, added, err := r.dkimSign(st, m, open)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.source, tc.from, err)
		}
		rc, _ := body()
		got, _ := io.ReadAll(rc)
		rc.Close()
		if signed := strings.HasPrefix(string(got), "DKIM-Signature: ") && strings.Contains(string(got), "d=city.example.jp"); signed != tc.signed {
			t.Errorf("%s %s: signed %v, want %v:\n%s", tc.source, tc.from, signed, tc.signed, got)
		}
		if int(added) != len(got)-len(msg) {
			t.Errorf("%s %s: added %d bytes, the message grew by %d", tc.source, tc.from, added, len(got)-len(msg))
		}
	}
}
