package auth

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testBackend is the smallest go-smtp backend that offers AUTH through an
// Authenticator, to see the replies as a client does.
type testBackend struct{ a *Authenticator }

type testSession struct {
	a    *Authenticator
	ip   netip.Addr
	user string
}

func (b testBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ap, _ := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	return &testSession{a: b.a, ip: ap.Addr()}, nil
}

func (s *testSession) AuthMechanisms() []string { return s.a.Mechanisms(false) }
func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return s.a.Server(mech, s.ip, func(u string) { s.user = u })
}
func (s *testSession) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *testSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *testSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (s *testSession) Reset()        {}
func (s *testSession) Logout() error { return nil }

func TestOverSMTP(t *testing.T) {
	cfg := allMechs()
	cfg.AllowInsecure = true
	cfg.MaxFailures = 2
	a, _ := newTestAuth(t, cfg)
	srv := smtp.NewServer(testBackend{a})
	srv.Domain = "mx.example.jp"
	srv.AllowInsecureAuth = cfg.AllowInsecure
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
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
