package delivery

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestEnvelopeQuotingAndParameters(t *testing.T) {
	r := newRawSink(t, "", "8BITMIME", "SIZE 100000")
	c := testClient(t, nil)
	m := newMessage("john doe@example.jp", testBody, `a"b@example.jp`, "plain@example.jp")
	m.EightBit = true
	deliver(t, c, plainTarget(r.addr), m)
	deliver(t, c, plainTarget(r.addr), newMessage("", testBody, "plain@example.jp"))
	commands, _ := r.recorded()
	for _, want := range []string{
		fmt.Sprintf(`MAIL FROM:<"john doe"@example.jp> BODY=8BITMIME SIZE=%d`, len(testBody)),
		`RCPT TO:<"a\"b"@example.jp>`,
		"RCPT TO:<plain@example.jp>",
		fmt.Sprintf("MAIL FROM:<> BODY=8BITMIME SIZE=%d", len(testBody)),
	} {
		found := false
		for _, c := range commands {
			found = found || c == want
		}
		if !found {
			t.Errorf("no command %q in %q", want, commands)
		}
	}
}

func TestCapabilityFailures(t *testing.T) {
	t.Run("8-bit to a server without 8BITMIME", func(t *testing.T) {
		r := newRawSink(t, "")
		c := testClient(t, nil)
		m := newMessage("a@example.jp", "Subject: \xe6\x97\xa5\r\n\r\n", "b@example.jp")
		m.EightBit = true
		res := deliver(t, c, plainTarget(r.addr), m)
		if got := res[0]; got.Code != 554 || got.Enhanced != "5.6.3" || got.Temporary {
			t.Errorf("got %+v", got)
		}
		for _, cmd := range func() []string { c, _ := r.recorded(); return c }() {
			if strings.HasPrefix(cmd, "MAIL") {
				t.Errorf("MAIL was sent: %q", cmd)
			}
		}
	})
	t.Run("SMTPUTF8 not offered", func(t *testing.T) {
		s := newSink(t)
		c := testClient(t, nil)
		res := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "ユーザー@example.jp"))
		if got := res[0]; got.Code != 553 || got.Enhanced != "5.6.7" || got.Temporary {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("SMTPUTF8 offered", func(t *testing.T) {
		s := newSink(t, func(s *sink) { s.srv.EnableSMTPUTF8 = true })
		c := testClient(t, nil)
		res := deliver(t, c, plainTarget(s.addr), newMessage("a@example.jp", testBody, "ユーザー@example.jp"))
		if !res[0].Delivered || s.messages()[0].rcpts[0] != "ユーザー@example.jp" {
			t.Errorf("got %+v", res[0])
		}
	})
	t.Run("over the SIZE limit", func(t *testing.T) {
		s := newSink(t, func(s *sink) { s.srv.MaxMessageBytes = 1000 })
		c := testClient(t, nil)
		m := newMessage("a@example.jp", testBody, "b@example.jp")
		m.Size = 5000
		res := deliver(t, c, plainTarget(s.addr), m)
		if got := res[0]; got.Code != 552 || got.Enhanced != "5.3.4" || got.Temporary {
			t.Errorf("got %+v", got)
		}
	})
}

func TestInvalidInput(t *testing.T) {
	c := testClient(t, nil)
	good := newMessage("a@example.jp", testBody, "b@example.jp")
	tests := []struct {
		name string
		t    Target
		m    Message
		want string
	}{
		{"no addrs", Target{Host: "mx"}, good, "addrs: no address"},
		{"bad addr", plainTarget("127.0.0.1"), good, `addrs[0]: "127.0.0.1" is not host:port`},
		{"bad mode", Target{Host: "mx", Addrs: []string{"127.0.0.1:25"}, TLS: TLSPolicy{Mode: "always"}}, good, `tls.mode: unknown TLS mode "always"`},
		{"insecure required", Target{Host: "mx", Addrs: []string{"127.0.0.1:25"}, TLS: TLSPolicy{Mode: TLSRequired, InsecureSkipVerify: true}}, good, "insecure_skip_verify: only allowed with mode opportunistic"},
		{"bad mechanism", Target{Host: "mx", Addrs: []string{"127.0.0.1:25"}, Auth: &Auth{Mechanism: "CRAM-MD5", Username: "u"}}, good, `auth.mechanism: unknown "CRAM-MD5"`},
		{"auth in plain text", Target{Host: "mx", Addrs: []string{"127.0.0.1:25"}, TLS: TLSPolicy{Mode: TLSNone}, Auth: &Auth{Mechanism: MechPlain, Username: "u"}}, good, "set allow_plaintext"},
		{"missing CA file", Target{Host: "mx", Addrs: []string{"127.0.0.1:25"}, TLS: TLSPolicy{Mode: TLSRequired, CAFile: "/nonexistent/ca.pem"}}, good, "tls.ca_file: open /nonexistent/ca.pem"},
		{"no recipients", plainTarget("127.0.0.1:25"), Message{From: "a@b", Body: good.Body}, "no recipients"},
		{"no body", plainTarget("127.0.0.1:25"), Message{From: "a@b", Rcpts: []string{"c@d"}}, "no Body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Deliver(context.Background(), tc.t, tc.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}

	bad := testClient(t, func(o *Options) { o.HeloName = "gw test" })
	if _, err := bad.Deliver(context.Background(), plainTarget("127.0.0.1:25"), good); err == nil || !strings.Contains(err.Error(), `options: helo_name: "gw test" is not a host name`) {
		t.Errorf("bad HeloName: %v", err)
	}

	res, err := c.Deliver(context.Background(), plainTarget(closedAddr(t)), newMessage("a\r\n@example.jp", testBody, "b@example.jp"))
	if err != nil || res[0].Code != 553 || res[0].Enhanced != "5.1.7" || res[0].Temporary {
		t.Errorf("bad sender: %+v, %v", res, err)
	}
}

func TestParseTLSMode(t *testing.T) {
	for in, want := range map[string]TLSMode{"": TLSOpportunistic, "None": TLSNone, " required ": TLSRequired, "opportunistic": TLSOpportunistic} {
		if got, err := ParseTLSMode(in); err != nil || got != want {
			t.Errorf("ParseTLSMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseTLSMode("starttls"); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestReplyHelpers(t *testing.T) {
	if e := enhancedOf(&smtp.SMTPError{Code: 451}); e != "4.0.0" {
		t.Errorf("enhancedOf without code = %q", e)
	}
	if e := enhancedOf(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 26}}); e != "5.7.26" {
		t.Errorf("enhancedOf = %q", e)
	}
	for in, want := range map[string][2]string{
		"2.0.0 OK: queued as X": {"2.0.0", "OK: queued as X"},
		"OK id=1":               {"2.0.0", "OK id=1"},
		"2.6.0 ok\nsecond line": {"2.6.0", "ok second line"},
		"":                      {"2.0.0", ""},
	} {
		if e, txt := splitEnhanced(in, "2.0.0"); e != want[0] || txt != want[1] {
			t.Errorf("splitEnhanced(%q) = %q, %q", in, e, txt)
		}
	}
}
