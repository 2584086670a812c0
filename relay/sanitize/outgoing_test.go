package sanitize

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

func TestCheckRoutes(t *testing.T) {
	rt := routing.Config{Routes: []routing.RouteConfig{{Name: "inner"}, {}}}
	cases := []struct {
		routes []string
		want   string
	}{
		{nil, ""},
		{[]string{"inner", "routes[1]", "smart_host"}, ""},
		{[]string{"inner", "iner"}, `rules[0].routes[1]: "iner" is not a route`},
		{[]string{"routes[0]"}, `"routes[0]" is not a route`}, // named: routes[0] is "inner"
	}
	for _, c := range cases {
		err := Config{Rules: []Rule{{Source: "internet", Routes: c.routes}}}.CheckRoutes(rt)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("routes %v: %v, want %q", c.routes, err, c.want)
		}
	}
}

// BenchmarkSanitizeDeliveryStep is the delivery hook's cost per message
// (the newsletter): sanitize, keep the original in the quarantine and
// commit the copy, each file fsynced; "sanitize only" is the text
// conversion alone, for the ratio.
func BenchmarkSanitizeDeliveryStep(b *testing.B) {
	orig, err := os.ReadFile("testdata/corpus/outlook_sjis_html_pdf_xlsm.eml")
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{Source: "internet"}}
	cfg.Quarantine.Dir = b.TempDir()
	st, err := NewStage(cfg, nil, StageDeps{})
	if err != nil {
		b.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(orig))), nil }
	env := queue.Envelope{From: "a@example.com", Rcpts: []queue.Recipient{{Addr: "b@example.jp"}}, Source: rewrite.SourceInternet}
	b.Run("sanitize only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Message(strings.NewReader(string(orig)), io.Discard, cfg.Options("20260101-0000000000", time.Now())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("with quarantine and copy", func(b *testing.B) {
		out := filepath.Join(b.TempDir(), "copy.eml")
		for i := 0; i < b.N; i++ {
			err := safeio.WriteFileFunc(out, 0o600, func(w io.Writer) error {
				_, err := st.Apply(context.Background(), env, "inner", open, nil, w)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A release goes to the recipients of the sanitized copy that the sender
// asked for: not to the archive copy relay.archive added, not to the
// recipients on other routes. The log's result says what was done.
func TestOutgoingReleaseRecipientsAndResult(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{Source: "internet", Routes: []string{"inner"}}}
	cfg.Quarantine.Dir = filepath.Join(t.TempDir(), "quarantine")
	st, err := NewStage(cfg, []string{"Archive@city.example.lg.jp"}, StageDeps{})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile("testdata/corpus/outlook_sjis_html_pdf_xlsm.eml")
	if err != nil {
		t.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(orig))), nil }
	m := queue.Message{ID: queue.ID(1), Envelope: queue.Envelope{From: "a@example.com", Source: rewrite.SourceInternet,
		Rcpts: []queue.Recipient{{Addr: "soumu@city.example.lg.jp"}, {Addr: "someone@example.net"}, {Addr: "archive@city.example.lg.jp", Notify: "NEVER"}}}}
	c, err := st.Outgoing(context.Background(), m, "inner", []int{0, 2}, open, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Result, "sanitized: attachments removed=3") || c.ReleaseID == "" {
		t.Errorf("Result %q, release ID %q", c.Result, c.ReleaseID)
	}
	store, err := quarantine.Open(cfg.Quarantine.Dir, cfg.Quarantine.Retention)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := store.Release(c.ReleaseID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Envelope.Rcpts) != 1 || rel.Envelope.Rcpts[0].Addr != "soumu@city.example.lg.jp" {
		t.Errorf("release goes to %+v, want only soumu@", rel.Envelope.Rcpts)
	}

	// A plain message is rewritten all the same (our MIME, base64 text):
	// the log says so, not "unchanged".
	plain := []byte("From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
	m.ID = queue.ID(2)
	c, err = st.Outgoing(context.Background(), m, "inner", []int{0}, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(plain))), nil }, nil)
	if err != nil || !strings.HasPrefix(c.Result, "re-encoded: ") || c.ReleaseID != "" {
		t.Errorf("plain message: %+v, %v", c, err)
	}
	// Kept only for an archive copy: a release must name its recipients.
	m.ID = queue.ID(3)
	c, err = st.Outgoing(context.Background(), m, "inner", []int{2}, open, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Release(c.ReleaseID, nil); err == nil || !strings.Contains(err.Error(), "name the recipients") {
		t.Errorf("release of an archive-only original: %v", err)
	}
	if rel, err := store.Release(c.ReleaseID, []string{"x@city.example.lg.jp"}); err != nil || len(rel.Envelope.Rcpts) != 1 {
		t.Errorf("release with --to: %+v, %v", rel.Envelope.Rcpts, err)
	}
}
