package sanitize

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/queue"
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
	st, err := NewStage(cfg)
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
				_, err := st.Apply(env, "inner", open, nil, w)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
