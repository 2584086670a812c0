package inspect

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing/dnstest"
)

// tagMilter adds one header at the end of the body.
type tagMilter struct{ gomilter.NoOpMilter }

func (tagMilter) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	m.AddHeader("X-Scanned", "yes")
	return gomilter.RespAccept, nil
}

func TestInspectionCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return tagMilter{} }, Actions: gomilter.OptAddHeader}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	d := dnstest.New(t)
	d.Add(`example.com. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
	r, _ := msgauth.NewResolver([]string{d.Addr})

	cfg := DefaultConfig()
	cfg.Milters = []milter.Config{{Name: "tag", Address: "inet:" + l.Addr().String()}}
	cfg.Auth.SPF = msgauth.Reject
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in, err := New(cfg, "gw.city.lg.jp", r)
	if err != nil {
		t.Fatal(err)
	}
	received := "Authentication-Results: gw.city.lg.jp; spf=pass (forged)\r\nFrom: a@example.com\r\nSubject: s\r\n\r\n"
	rewritten := strings.Replace(received, "a@example.com", "a@city.lg.jp", 1)
	msg := func(ip string, source rewrite.Source) Received {
		return Received{ClientIP: netip.MustParseAddr(ip), Helo: "mx.example.com", From: "a@example.com", Rcpts: []string{"b@city.lg.jp"},
			Source: source, Header: []byte(received), Body: bytes.NewReader([]byte("body\r\n"))}
	}

	v := in.Check(context.Background(), msg("192.0.2.7", rewrite.SourceInternet))
	want := "Authentication-Results: gw.city.lg.jp;\r\n\tspf=pass smtp.helo=mx.example.com smtp.mailfrom=a@example.com\r\n" +
		"From: a@city.lg.jp\r\nSubject: s\r\nX-Scanned: yes\r\n\r\n"
	if got := string(v.Header([]byte(rewritten))); v.Action != milter.Accept || got != want {
		t.Errorf("internet, SPF pass: %v\n%q\nwant\n%q", v.Action, got, want)
	}

	v = in.Check(context.Background(), msg("203.0.113.1", rewrite.SourceInternet))
	if v.Action != milter.Reject || v.Reply.Code != 550 || v.Reply.Enhanced != "5.7.23" || v.Reason != "sender authentication" {
		t.Errorf("internet, SPF fail: %+v", v)
	}

	// Inner mail skips the sender checks (the forged field is not ours to
	// judge there) but still goes through the milter.
	v = in.Check(context.Background(), msg("203.0.113.1", rewrite.SourceInner))
	if got := string(v.Header([]byte(rewritten))); v.Action != milter.Accept || got != strings.TrimSuffix(rewritten, "\r\n")+"X-Scanned: yes\r\n\r\n" {
		t.Errorf("inner: %v %q", v.Action, got)
	}
}

// The delivery-time rewrite changes From from the LG domain to the
// regional one; the signature made afterwards over the bytes sent verifies
// against the regional domain's published key.
func TestSignAfterRewrite(t *testing.T) {
	dir := t.TempDir()
	pemb, key, err := dkimsign.GenerateKey("rsa")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "city.pem")
	if err := os.WriteFile(keyFile, pemb, 0o600); err != nil {
		t.Fatal(err)
	}
	txt, _ := dkimsign.TXTRecord(key.Public())
	d := dnstest.New(t)
	d.Add(`s1._domainkey.city.example.jp. IN TXT "` + txt[:200] + `" "` + txt[200:] + `"`)

	rw, err := rewrite.New(rewrite.Config{Sets: []rewrite.SetConfig{{Name: "to-internet", Rules: []rewrite.RuleConfig{
		{Name: "lg-to-regional", Domain: "city.lg.jp", Replace: "city.example.jp", Source: []string{"inner"}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := rw.Set("to-internet")
	header := []byte("Received: from inner.city.lg.jp\r\nFrom: Taro <taro@city.lg.jp>\r\nTo: someone@example.com\r\nSubject: minutes\r\n" +
		"Date: Sun, 29 Nov 2026 10:00:00 +0900\r\nMessage-ID: <a1@city.lg.jp>\r\n\r\n")
	out, err := set.Rewrite(rewrite.Input{From: "taro@city.lg.jp", To: []string{"someone@example.com"}, Header: header, Source: rewrite.SourceInner})
	if err != nil || !bytes.Contains(out.Header, []byte("From: Taro <taro@city.example.jp>")) {
		t.Fatalf("rewrite: %v\n%s", err, out.Header)
	}
	msg := string(out.Header) + "The minutes.\r\n"

	cfg := DefaultConfig()
	cfg.DKIMSign.Keys = []dkimsign.KeyConfig{{Domain: "city.example.jp", Selector: "s1", KeyFile: keyFile}}
	in, err := New(cfg, "gw.city.lg.jp", nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := in.Sign(strings.NewReader(msg))
	if err != nil || sig == "" {
		t.Fatalf("Sign: %q %v", sig, err)
	}
	r, _ := msgauth.NewResolver([]string{d.Addr})
	verify := func(m string) {
		t.Helper()
		vs, err := dkim.VerifyWithOptions(strings.NewReader(m), &dkim.VerifyOptions{
			LookupTXT: func(n string) ([]string, error) { return r.LookupTXT(context.Background(), n) },
		})
		if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "city.example.jp" {
			t.Fatalf("verification: %v %+v", err, vs)
		}
	}
	verify(sig + msg)

	// The runner's way: wrap the spool opener.
	opens := 0
	open := func() (io.ReadCloser, error) { opens++; return io.NopCloser(strings.NewReader(msg)), nil }
	signed, added, err := in.SignBody(open)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := signed()
	sent, _ := io.ReadAll(rc)
	rc.Close()
	if opens != 2 || added != len(sent)-len(msg) || !strings.HasPrefix(string(sent), "DKIM-Signature:") {
		t.Fatalf("opens %d, added %d, sent %d of %d bytes", opens, added, len(sent), len(msg))
	}
	verify(string(sent))
	// No key for the From domain: the opener comes back unchanged.
	other := strings.Replace(msg, "taro@city.example.jp", "taro@elsewhere.example.org", 1)
	same, added, err := in.SignBody(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(other)), nil })
	if rc, _ := same(); err != nil || added != 0 {
		t.Errorf("unsigned: %v %d", err, added)
	} else if b, _ := io.ReadAll(rc); string(b) != other {
		t.Errorf("unsigned message changed")
	}
}
