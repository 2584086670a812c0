package relay

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/sekisho/sekisho/relay/milter"
	"github.com/sekisho/sekisho/relay/msgauth"
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

	cfg := DefaultInspectConfig()
	cfg.Milters = []milter.Config{{Name: "tag", Address: "inet:" + l.Addr().String()}}
	cfg.Auth.SPF = msgauth.Reject
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in, err := NewInspection(cfg, "gw.city.lg.jp", r)
	if err != nil {
		t.Fatal(err)
	}
	received := "Authentication-Results: gw.city.lg.jp; spf=pass (forged)\r\nFrom: a@example.com\r\nSubject: s\r\n"
	rewritten := strings.Replace(received, "a@example.com", "a@city.lg.jp", 1)
	msg := func(ip, source string) Received {
		return Received{ClientIP: netip.MustParseAddr(ip), Helo: "mx.example.com", From: "a@example.com", Rcpts: []string{"b@city.lg.jp"},
			Source: source, Header: []byte(received), Body: bytes.NewReader([]byte("body\r\n"))}
	}

	v := in.Check(context.Background(), msg("192.0.2.7", milter.SourceInternet))
	want := "Authentication-Results: gw.city.lg.jp;\r\n\tspf=pass smtp.helo=mx.example.com smtp.mailfrom=a@example.com\r\n" +
		"From: a@city.lg.jp\r\nSubject: s\r\nX-Scanned: yes\r\n"
	if got := string(v.Header([]byte(rewritten))); v.Action != milter.Accept || got != want {
		t.Errorf("internet, SPF pass: %v\n%q\nwant\n%q", v.Action, got, want)
	}

	v = in.Check(context.Background(), msg("203.0.113.1", milter.SourceInternet))
	if v.Action != milter.Reject || v.Reply.Code != 550 || v.Reply.Enhanced != "5.7.23" || v.Reason != "sender authentication" {
		t.Errorf("internet, SPF fail: %+v", v)
	}

	// Inner mail skips the sender checks (the forged field is not ours to
	// judge there) but still goes through the milter.
	v = in.Check(context.Background(), msg("203.0.113.1", milter.SourceInner))
	if got := string(v.Header([]byte(rewritten))); v.Action != milter.Accept || got != rewritten+"X-Scanned: yes\r\n" {
		t.Errorf("inner: %v %q", v.Action, got)
	}
}
