package auth

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// testHandler is the smallest protocol handler that offers AUTH through
// an Authenticator, to see the replies as a client does.
type testHandler struct {
	a    *Authenticator
	c    *smtpd.Conn
	user string
}

func (h *testHandler) Connect() smtpd.Reply                      { return smtpd.R(220, "", "") }
func (h *testHandler) Helo(string, bool) smtpd.Reply             { return smtpd.R(250, "", "") }
func (h *testHandler) AuthMechanisms() []string                  { return h.a.Mechanisms() }
func (h *testHandler) LinePolicy() smtpd.LinePolicy              { return smtpd.LineReject }
func (h *testHandler) Rcpt(string, smtpd.RcptParams) smtpd.Reply { return smtpd.R(250, "2.1.5", "OK") }
func (h *testHandler) Reset()                                    {}
func (h *testHandler) Close()                                    {}
func (h *testHandler) Auth(mech string) (sasl.Server, error) {
	return h.a.Server(mech, h.c.RemoteAddr().Addr(), func(u string) { h.user = u })
}
func (h *testHandler) Mail(string, smtpd.MailParams) smtpd.Reply {
	if h.user == "" {
		return smtpd.R(530, "5.7.0", "Authentication required")
	}
	return smtpd.R(250, "2.1.0", "OK")
}
func (h *testHandler) Data(m *smtpd.MessageReader) smtpd.Reply {
	io.Copy(io.Discard, m)
	return smtpd.R(250, "2.0.0", "OK")
}

func TestOverSMTP(t *testing.T) {
	cfg := allMechs()
	cfg.AllowInsecure = true
	cfg.MaxFailures = 2
	a, _ := newTestAuth(t, cfg)
	srv := &smtpd.Server{
		Config:     smtpd.Config{Hostname: "mx.example.jp", WriteTimeout: 10 * time.Second},
		NewHandler: func(c *smtpd.Conn) smtpd.Handler { return &testHandler{a: a, c: c} },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	login := func(c sasl.Client) error {
		cl, err := smtp.Dial(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Hello("client.example"); err != nil {
			t.Fatal(err)
		}
		return cl.Auth(c)
	}
	code := func(err error) string {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return "no SMTP error: " + errString(err)
		}
		return se.Error()
	}
	if err := login(sasl.NewPlainClient("", "taro@"+dom, "taro-pw")); err != nil {
		t.Fatalf("PLAIN: %v", err)
	}
	if err := login(sasl.NewLoginClient("hanako@"+dom, "hanako-pw")); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	err = login(sasl.NewPlainClient("", "taro@"+dom, "wrong"))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
		t.Fatalf("wrong password: %s", code(err))
	}
	err = login(sasl.NewPlainClient("", "nobody@"+dom, "wrong")) // second failure: 127.0.0.1 is locked
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 535 {
		t.Fatalf("second failure: %s", code(err))
	}
	err = login(sasl.NewPlainClient("", "taro@"+dom, "taro-pw"))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 454 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) {
		t.Fatalf("locked out: %s", code(err))
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
