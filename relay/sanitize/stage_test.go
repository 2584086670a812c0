package sanitize

import (
	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
)

func testSanitizeStage(t *testing.T) (*Stage, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{Source: "internet", Routes: []string{"inner"}}}
	cfg.SubjectTag = "[無害化]"
	cfg.Quarantine.Dir = filepath.Join(t.TempDir(), "quarantine")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := NewStage(cfg, nil, StageDeps{})
	if err != nil {
		t.Fatal(err)
	}
	return st, cfg
}

func opener(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// The case: a Shift_JIS HTML newsletter with a PDF and an .xlsm
// from the internet reaches the inner route as readable UTF-8 text with a
// notice; the original is in the quarantine; its release goes through the
// queue and passes the stage untouched; mail from inside is not selected.
func TestSanitizeStageNewsletter(t *testing.T) {
	st, cfg := testSanitizeStage(t)
	orig, err := os.ReadFile("testdata/corpus/outlook_sjis_html_pdf_xlsm.eml")
	if err != nil {
		t.Fatal(err)
	}
	if st.Applies(rewrite.SourceInner, "192.0.2.1", "inner") || st.Applies(rewrite.SourceInternet, "192.0.2.1", "internet-out") || !st.Applies(rewrite.SourceInternet, "192.0.2.1", "inner") {
		t.Fatal("rule selection is wrong")
	}
	env := queue.Envelope{From: "yamada@example.com", Rcpts: []queue.Recipient{{Addr: "soumu@city.example.lg.jp"}}, Source: rewrite.SourceInternet}
	// The route's delivery-time rewrite changes the header of what is
	// sent; the sanitized copy shows it, the quarantine keeps the stored
	// bytes.
	view := bytes.Replace(orig, []byte("To: <soumu@city.example.lg.jp>"), []byte("To: <soumu@inner.example.jp>"), 1)
	var out bytes.Buffer
	res, err := st.Apply(context.Background(), env, "inner", opener(orig), opener(view), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("To: <soumu@inner.example.jp>\r\n")) {
		t.Error("the sanitized copy lacks the rewritten header")
	}
	if res.Released || res.ReleaseID == "" || len(res.Report.Removed) != 3 {
		t.Fatalf("outcome %+v", res)
	}
	m, err := message.Read(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if mt, params, _ := m.Header.ContentType(); mt != "text/plain" || params["charset"] != "UTF-8" {
		t.Errorf("sanitized Content-Type %s %v", mt, params)
	}
	body, _ := io.ReadAll(m.Body)
	for _, want := range []string{"市役所ニュースレター", "案内.pdf", "集計.xlsm", res.ReleaseID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("sanitized text lacks %q", want)
		}
	}
	if subj, _ := m.Header.Text("Subject"); !strings.HasPrefix(subj, "[無害化] 【重要】") {
		t.Errorf("Subject %q", subj)
	}

	store, err := quarantine.Open(cfg.Quarantine.Dir, cfg.Quarantine.Retention)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := store.Open(res.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(kept, orig) {
		t.Fatal("the quarantine does not hold the original byte for byte")
	}

	// Release into a real spool, claim it as the runner would, and run
	// the stage on it: it passes as it is.
	qc := queue.DefaultConfig()
	qc.Dir = filepath.Join(t.TempDir(), "spool")
	q, err := queue.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rel, err := store.Release(res.ReleaseID, nil)
	if err != nil {
		t.Fatal(err)
	}
	qid, err := q.Enqueue(rel.Envelope, bytes.NewReader(rel.Data))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	claimed, err := q.Claim(ctx)
	if err != nil || claimed.ID != qid {
		t.Fatalf("Claim = %v, %v", claimed.ID, err)
	}
	openQueued := func() (io.ReadCloser, error) { return q.Open(qid) }
	var out2 bytes.Buffer
	res2, err := st.Apply(context.Background(), claimed.Envelope, "inner", openQueued, nil, &out2)
	if err != nil || !res2.Released || out2.Len() != 0 {
		t.Fatalf("released original: %+v, %v (wrote %d bytes)", res2, err, out2.Len())
	}
	if claimed.Envelope.Rcpts[0].Addr != "soumu@city.example.lg.jp" || claimed.Envelope.Source != rewrite.SourceInternet {
		t.Errorf("released envelope %+v", claimed.Envelope)
	}
}

// A plain text message loses nothing: no quarantine copy, no tag.
func TestSanitizeStagePlainKeepsNoCopy(t *testing.T) {
	st, cfg := testSanitizeStage(t)
	msg := []byte("From: a@example.com\r\nTo: b@city.example.lg.jp\r\nSubject: hi\r\n\r\nhello\r\n")
	var out bytes.Buffer
	res, err := st.Apply(context.Background(), queue.Envelope{Source: rewrite.SourceInternet}, "inner", opener(msg), nil, &out)
	if err != nil || res.ReleaseID != "" {
		t.Fatalf("%+v, %v", res, err)
	}
	store, _ := quarantine.Open(cfg.Quarantine.Dir, time.Hour)
	if list, _ := store.List(); len(list) != 0 {
		t.Errorf("quarantine holds %d entries", len(list))
	}
	if removed, err := st.Purge(); err != nil || len(removed) != 0 {
		t.Errorf("Purge = %v, %v", removed, err)
	}
	var off *Stage
	if off.Applies(rewrite.SourceInternet, "192.0.2.1", "inner") {
		t.Error("a nil stage applies")
	}
	if !strings.Contains(out.String(), "Subject: hi\r\n") {
		t.Errorf("subject changed:\n%s", out.String())
	}
}

// When the original cannot be kept, Apply fails: nothing is delivered
// sanitized without its original.
func TestSanitizeStageQuarantineFailure(t *testing.T) {
	st, cfg := testSanitizeStage(t)
	// A file where the quarantine folder was: every write fails, for root
	// too (permissions would not stop root).
	if err := os.RemoveAll(cfg.Quarantine.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Quarantine.Dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile("testdata/corpus/outlook_sjis_html_pdf_xlsm.eml")
	if _, err := st.Apply(context.Background(), queue.Envelope{Source: rewrite.SourceInternet}, "inner", opener(orig), nil, io.Discard); err == nil {
		t.Fatal("Apply succeeded with an unwritable quarantine")
	}
}

// A rule selects by source and route, and leaves the networks it
// excepts alone (the LGWAN relay: mail between municipalities).
func TestSanitizeRuleSelects(t *testing.T) {
	c := DefaultConfig()
	c.Rules = []Rule{{Source: "internet", Routes: []string{"inner"}, ExceptNetworks: []string{"198.51.100.0/24", "2001:db8::25"}}}
	for _, tt := range []struct {
		source        rewrite.Source
		client, route string
		want          bool
	}{
		{rewrite.SourceInternet, "203.0.113.9", "inner", true},
		{rewrite.SourceInternet, "", "inner", true},
		{rewrite.SourceInternet, "198.51.100.7", "inner", false},
		{rewrite.SourceInternet, "::ffff:198.51.100.7", "inner", false},
		{rewrite.SourceInternet, "2001:db8::25", "inner", false},
		{rewrite.SourceInternet, "2001:db8::26", "inner", true},
		{rewrite.SourceInternet, "203.0.113.9", "smart_host", false},
		{rewrite.SourceInner, "203.0.113.9", "inner", false},
	} {
		if got := c.Applies(tt.source, tt.client, tt.route); got != tt.want {
			t.Errorf("Applies(%s, %s, %s) = %v, want %v", tt.source, tt.client, tt.route, got, tt.want)
		}
	}
}

func TestSanitizeConfigValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Rules = []Rule{{Source: "web"}} }, `rules[0].source: "web" is not a source`},
		{func(c *Config) { c.Charset = "shift_jis" }, `charset: "shift_jis" is not an output charset`},
		{func(c *Config) { c.Links = "x" }, `links: "x" is not a link style`},
		{func(c *Config) {
			c.Allow.Extensions = []string{".pdf"}
			c.Allow.Types = []string{"application/pdf"}
		}, `allow.extensions[0]: ".pdf": give the extension`},
		{func(c *Config) {
			c.Allow.Extensions = []string{"pdf"}
			c.Allow.Types = []string{"application/x-foo"}
		}, `allow.types[0]: "application/x-foo" is not a type the content check recognizes`},
		{func(c *Config) { c.Allow.Extensions = []string{"pdf"} }, `allow: types and extensions go together`},
		{func(c *Config) { c.Quarantine.Retention = time.Minute }, `quarantine.retention: must be at least 1h`},
		{func(c *Config) { c.Rules = []Rule{{Source: "internet"}}; c.Quarantine.Dir = "" }, `quarantine.dir: required`},
		{func(c *Config) {
			c.Rules = []Rule{{Source: "internet", ExceptNetworks: []string{"lgwan-relay"}}}
		}, `rules[0].except_networks[0]: "lgwan-relay" is neither an IP address nor a CIDR block`},
		{func(c *Config) { c.Convert.Timeout = 15 * time.Minute },
			`convert.wall_timeout: must be at least timeout (15m0s), got 10m0s: raise wall_timeout (default 10m) or lower timeout`},
		{func(c *Config) { c.Convert.Nice = 20 }, `convert.nice: must be between 0 and 19, got 20`},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
