package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/smtpd"
)

const dom = "city.example.lg.jp"

var (
	taroHash = "{SHA512-CRYPT}" + sha512Crypt("taro-pw", "testsalt", sha512MinRounds, true)
	hanako   = "{CRAM-MD5}" + newCRAMState([]byte("hanako-pw")).String()
)

func testDirectory(t testing.TB) *accounts.Directory {
	t.Helper()
	c := accounts.DefaultConfig()
	c.Domains = []accounts.DomainConfig{{Name: dom}}
	c.Accounts = []accounts.AccountConfig{
		{Address: "Taro@" + dom, Secret: taroHash},
		{Address: "hanako@" + dom, Secret: hanako},
		{Address: "tim@" + dom, Secret: "{PLAIN}" + rfcPassword},
		{Address: "gone@" + dom, Secret: "{PLAIN}gone-pw", Disabled: true},
		{Address: "nosecret@" + dom},
		{Address: "lost@" + dom, Secret: "file:" + filepath.Join(t.TempDir(), "missing")},
	}
	d, err := accounts.Build(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAuth(t testing.TB, cfg Config) (*Authenticator, *fakeClock) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := testDirectory(t)
	a := NewAuthenticator(cfg, func() *accounts.Directory { return d }, "mx.example.jp")
	clock := &fakeClock{t: time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)}
	a.now = clock.now
	return a, clock
}

func allMechs() Config {
	c := DefaultConfig()
	c.Mechanisms = []string{"plain", "LOGIN", "CRAM-MD5"}
	return c
}

// noLockout is allMechs for tests of the mechanisms themselves, which fail
// on purpose more often than the lockout allows.
func noLockout() Config {
	c := allMechs()
	c.MaxFailures = 0
	return c
}

var (
	ip1 = netip.MustParseAddr("198.18.0.5")
	ip2 = netip.MustParseAddr("198.18.0.6")
)

// exchange runs a SASL exchange: responses are fed in order (nil for "no
// initial response"); it returns the challenges and the final error.
func exchange(t testing.TB, s sasl.Server, responses ...[]byte) ([]string, error) {
	t.Helper()
	var challenges []string
	for i, r := range responses {
		ch, done, err := s.Next(r)
		if err != nil {
			if !done {
				t.Fatalf("error without done: %v", err)
			}
			return challenges, err
		}
		if done {
			if i != len(responses)-1 {
				t.Fatalf("done after %d of %d responses", i+1, len(responses))
			}
			return challenges, nil
		}
		challenges = append(challenges, string(ch))
	}
	t.Fatalf("exchange not finished after %d responses", len(responses))
	return nil, nil
}

func start(t testing.TB, a *Authenticator, mech string, ip netip.Addr, user *string) sasl.Server {
	t.Helper()
	s, err := a.Server(mech, ip, func(u string) { *user = u })
	if err != nil {
		t.Fatalf("Server(%s): %v", mech, err)
	}
	return s
}

func plainResp(identity, user, pass string) []byte {
	return []byte(identity + "\x00" + user + "\x00" + pass)
}

func wantCode(t testing.TB, err error, code int) {
	t.Helper()
	se, ok := err.(*smtpd.Reply)
	switch {
	case code == 0 && err == nil:
		return
	case code == 0:
		t.Fatalf("got %v, want success", err)
	case !ok:
		t.Fatalf("got %T %v, want *smtpd.Reply %d", err, err, code)
	case se.Code != code:
		t.Fatalf("got %d %v %q, want %d", se.Code, se.Enhanced, se.Text, code)
	}
}

func TestPlain(t *testing.T) {
	a, _ := newTestAuth(t, noLockout())
	for _, tc := range []struct {
		name      string
		responses [][]byte
		code      int
		user      string
	}{
		{"initial response", [][]byte{plainResp("", "taro@"+dom, "taro-pw")}, 0, "Taro@" + dom},
		{"after empty challenge", [][]byte{nil, plainResp("", "TARO@CITY.EXAMPLE.LG.JP", "taro-pw")}, 0, "Taro@" + dom},
		{"identity equal to user", [][]byte{plainResp("tim@"+dom, "tim@"+dom, rfcPassword)}, 0, "tim@" + dom},
		{"CRAM-MD5 secret verifies PLAIN", [][]byte{plainResp("", "hanako@"+dom, "hanako-pw")}, 0, "hanako@" + dom},
		{"wrong password", [][]byte{plainResp("", "taro@"+dom, "taro-PW")}, 535, ""},
		{"other identity", [][]byte{plainResp("hanako@"+dom, "taro@"+dom, "taro-pw")}, 535, ""},
		{"unknown user", [][]byte{plainResp("", "nobody@"+dom, "x")}, 535, ""},
		{"disabled user", [][]byte{plainResp("", "gone@"+dom, "gone-pw")}, 535, ""},
		{"no secret", [][]byte{plainResp("", "nosecret@"+dom, "")}, 535, ""},
		{"unreadable secret is temporary", [][]byte{plainResp("", "lost@"+dom, "x")}, 454, ""},
		{"malformed", [][]byte{[]byte("taro@" + dom + "\x00taro-pw")}, 535, ""},
		{"empty", [][]byte{{}}, 535, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var user string
			_, err := exchange(t, start(t, a, "PLAIN", ip1, &user), tc.responses...)
			wantCode(t, err, tc.code)
			if user != tc.user {
				t.Fatalf("onSuccess got %q, want %q", user, tc.user)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	a, _ := newTestAuth(t, noLockout())
	var user string
	ch, err := exchange(t, start(t, a, "LOGIN", ip1, &user), nil, []byte("taro@"+dom), []byte("taro-pw"))
	wantCode(t, err, 0)
	if strings.Join(ch, "|") != "Username:|Password:" || user != "Taro@"+dom {
		t.Fatalf("challenges %q, user %q", ch, user)
	}
	// AUTH LOGIN <user>: the initial response is the user name.
	user = ""
	ch, err = exchange(t, start(t, a, "login", ip1, &user), []byte("tim@"+dom), []byte(rfcPassword))
	wantCode(t, err, 0)
	if strings.Join(ch, "|") != "Password:" || user != "tim@"+dom {
		t.Fatalf("challenges %q, user %q", ch, user)
	}
	_, err = exchange(t, start(t, a, "LOGIN", ip1, &user), nil, []byte("taro@"+dom), []byte("nope"))
	wantCode(t, err, 535)
	_, err = exchange(t, start(t, a, "LOGIN", ip1, &user), []byte{}, []byte("x"))
	wantCode(t, err, 535)
	// Go's own client (go-sasl) talks to it.
	c := sasl.NewLoginClient("hanako@"+dom, "hanako-pw")
	s := start(t, a, "LOGIN", ip2, &user)
	_, ir, _ := c.Start()
	resp := ir
	for {
		challenge, done, err := s.Next(resp)
		if err != nil {
			t.Fatalf("go-sasl client: %v", err)
		}
		if done {
			break
		}
		if resp, err = c.Next(challenge); err != nil {
			t.Fatal(err)
		}
	}
	if user != "hanako@"+dom {
		t.Fatalf("user %q", user)
	}
}

func cramAnswer(user, password string, challenge []byte) []byte {
	mac := hmac.New(md5.New, []byte(password))
	mac.Write(challenge)
	return []byte(user + " " + hex.EncodeToString(mac.Sum(nil)))
}

func TestCRAMMD5(t *testing.T) {
	a, _ := newTestAuth(t, noLockout())
	var user string
	s := start(t, a, "CRAM-MD5", ip1, &user)
	ch, _, err := s.Next(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^<\d+\.1743498000@mx\.example\.jp>$`).Match(ch) {
		t.Fatalf("challenge %q", ch)
	}
	_, done, err := s.Next(cramAnswer("hanako@"+dom, "hanako-pw", ch))
	if !done || err != nil || user != "hanako@"+dom {
		t.Fatalf("done=%v err=%v user=%q", done, err, user)
	}

	// The RFC 2195 example, against both secret schemes.
	a.challenge = func() ([]byte, error) { return []byte(rfcChallenge), nil }
	user = ""
	ch2, err := exchange(t, start(t, a, "CRAM-MD5", ip1, &user), nil, []byte("tim@"+dom+" "+rfcDigest))
	wantCode(t, err, 0)
	if ch2[0] != rfcChallenge || user != "tim@"+dom {
		t.Fatalf("challenge %q user %q", ch2, user)
	}
	rfcState := "{CRAM-MD5}" + newCRAMState([]byte(rfcPassword)).String()
	d := testDirectoryWith(t, accounts.AccountConfig{Address: "tim@" + dom, Secret: rfcState})
	a.dir = func() *accounts.Directory { return d }
	_, err = exchange(t, start(t, a, "CRAM-MD5", ip1, &user), nil, []byte("tim@"+dom+" "+strings.ToUpper(rfcDigest)))
	wantCode(t, err, 0)

	for _, tc := range []struct {
		name string
		resp [][]byte
		code int
	}{
		{"wrong digest", [][]byte{nil, []byte("tim@" + dom + " " + strings.Repeat("0", 32))}, 535},
		{"no space", [][]byte{nil, []byte("tim@" + dom)}, 535},
		{"short digest", [][]byte{nil, []byte("tim@" + dom + " b913")}, 535},
		{"not hex", [][]byte{nil, []byte("tim@" + dom + " " + strings.Repeat("zz", 16))}, 535},
		{"initial response", [][]byte{[]byte("tim@" + dom + " " + rfcDigest)}, 501},
		{"empty initial response", [][]byte{{}}, 501},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exchange(t, start(t, a, "CRAM-MD5", ip2, &user), tc.resp...)
			wantCode(t, err, tc.code)
		})
	}
	// A SHA512-CRYPT secret cannot answer CRAM-MD5.
	a.dir = func() *accounts.Directory { return testDirectory(t) }
	_, err = exchange(t, start(t, a, "CRAM-MD5", ip2, &user), nil, cramAnswer("taro@"+dom, "taro-pw", []byte(rfcChallenge)))
	wantCode(t, err, 535)
}

func testDirectoryWith(t testing.TB, acct accounts.AccountConfig) *accounts.Directory {
	c := accounts.DefaultConfig()
	c.Domains = []accounts.DomainConfig{{Name: dom}}
	c.Accounts = []accounts.AccountConfig{acct}
	d, err := accounts.Build(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMechanisms(t *testing.T) {
	a, _ := newTestAuth(t, DefaultConfig())
	if m := a.Mechanisms(); strings.Join(m, " ") != "PLAIN LOGIN" {
		t.Errorf("defaults: %v", m)
	}
	if _, err := a.Server("CRAM-MD5", ip1, nil); err != error(errUnknownMech) {
		t.Errorf("disabled mechanism: %v", err)
	}
	if _, err := a.Server("XOAUTH2", ip1, nil); err != error(errUnknownMech) {
		t.Errorf("unknown mechanism: %v", err)
	}
	a, _ = newTestAuth(t, allMechs())
	if m := a.Mechanisms(); strings.Join(m, " ") != "PLAIN LOGIN CRAM-MD5" {
		t.Errorf("all: %v", m)
	}
}

func TestValidate(t *testing.T) {
	c := Config{Mechanisms: []string{"PLAIN", "plain", "DIGEST-MD5"}, MaxFailures: 3}
	err := c.Validate()
	for _, want := range []string{
		`mechanisms[1]: PLAIN is already mechanisms[0]`,
		`mechanisms[2]: "DIGEST-MD5" is not a mechanism`,
		`failure_window: must be positive`,
		`lockout_time: must be positive`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err := (Config{MaxFailures: -1}).Validate(); err == nil {
		t.Error("negative max_failures accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("lockout off, no AUTH: %v", err)
	}
}

func TestLockoutByUser(t *testing.T) {
	cfg := allMechs()
	cfg.MaxFailures, cfg.FailureWindow, cfg.LockoutTime = 3, 10*time.Minute, 30*time.Minute
	a, clock := newTestAuth(t, cfg)
	var user string
	try := func(ip string, pass string) error {
		_, err := exchange(t, start(t, a, "PLAIN", netip.MustParseAddr(ip), &user), plainResp("", "taro@"+dom, pass))
		return err
	}
	// Three failures from three networks lock the user, not the networks.
	wantCode(t, try("198.18.0.1", "a"), 535)
	wantCode(t, try("198.18.1.1", "b"), 535)
	wantCode(t, try("198.18.2.1", "c"), 535)
	wantCode(t, try("198.18.3.1", "taro-pw"), 454) // even the right password
	user = ""
	_, err := exchange(t, start(t, a, "PLAIN", ip1, &user), plainResp("", "hanako@"+dom, "hanako-pw"))
	wantCode(t, err, 0) // others are not affected
	clock.advance(29 * time.Minute)
	wantCode(t, try("198.18.3.1", "taro-pw"), 454)
	clock.advance(2 * time.Minute)
	wantCode(t, try("198.18.3.1", "taro-pw"), 0)
	// Success forgets the count; failures spread beyond the window never lock.
	wantCode(t, try("198.18.4.1", "x"), 535)
	wantCode(t, try("198.18.5.1", "x"), 535)
	clock.advance(11 * time.Minute)
	wantCode(t, try("198.18.6.1", "x"), 535)
	wantCode(t, try("198.18.7.1", "x"), 535)
	wantCode(t, try("198.18.8.1", "taro-pw"), 0)
}

func TestLockoutByClient(t *testing.T) {
	cfg := allMechs()
	cfg.MaxFailures, cfg.FailureWindow, cfg.LockoutTime = 3, 10*time.Minute, 30*time.Minute
	a, clock := newTestAuth(t, cfg)
	var user string
	for _, u := range []string{"taro", "hanako", "tim"} { // three user names from one client
		_, err := exchange(t, start(t, a, "LOGIN", ip1, &user), []byte(u+"@"+dom), []byte("x"))
		wantCode(t, err, 535)
	}
	if _, err := a.Server("PLAIN", ip1, nil); err != errLocked {
		t.Fatalf("locked client got %v", err)
	}
	// An IPv6 client is locked by its /64.
	for i, u := range []string{"taro", "hanako", "tim"} {
		ip := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		_, err := exchange(t, start(t, a, "PLAIN", ip, &user), plainResp("", u+"@"+dom, "x"))
		wantCode(t, err, 535)
	}
	if _, err := a.Server("PLAIN", netip.MustParseAddr("2001:db8:1:2:ffff::9"), nil); err != errLocked {
		t.Fatalf("same /64: %v", err)
	}
	if _, err := a.Server("PLAIN", netip.MustParseAddr("2001:db8:1:3::1"), nil); err != nil {
		t.Fatalf("other /64: %v", err)
	}
	if _, err := a.Server("PLAIN", ip2, nil); err != nil {
		t.Fatalf("other client: %v", err)
	}
	clock.advance(30*time.Minute + time.Second)
	_, err := exchange(t, start(t, a, "PLAIN", ip1, &user), plainResp("", "taro@"+dom, "taro-pw"))
	wantCode(t, err, 0)
	// Temporary failures do not count.
	for range 5 {
		_, err := exchange(t, start(t, a, "PLAIN", ip2, &user), plainResp("", "lost@"+dom, "x"))
		wantCode(t, err, 454)
	}
	if _, err := a.Server("PLAIN", ip2, nil); err != nil {
		t.Fatalf("temporary failures locked the client: %v", err)
	}
}

func TestLockoutDisabled(t *testing.T) {
	cfg := allMechs()
	cfg.MaxFailures = 0
	a, _ := newTestAuth(t, cfg)
	var user string
	for range 20 {
		_, err := exchange(t, start(t, a, "PLAIN", ip1, &user), plainResp("", "taro@"+dom, "x"))
		wantCode(t, err, 535)
	}
}

func TestFailureTableBounded(t *testing.T) {
	tab := newFailureTable(100)
	now := time.Now()
	for i := range 1000 {
		tab.fail(fmt.Sprint(i), now, 1, time.Minute, time.Hour)
	}
	if tab.len() != 100 {
		t.Fatalf("%d entries", tab.len())
	}
	if !tab.locked("999", now) || tab.locked("0", now) {
		t.Fatal("eviction must drop the oldest entries")
	}
}

func TestNoDirectory(t *testing.T) {
	a := NewAuthenticator(allMechs(), func() *accounts.Directory { return nil }, "")
	var user string
	_, err := exchange(t, start(t, a, "PLAIN", ip1, &user), plainResp("", "taro@"+dom, "taro-pw"))
	wantCode(t, err, 454)
}

func FuzzCRAMResponse(f *testing.F) {
	f.Add([]byte("tim " + rfcDigest))
	f.Add([]byte("a b c " + rfcDigest))
	f.Add([]byte(" " + rfcDigest))
	f.Add([]byte("tim\x00 " + rfcDigest))
	f.Fuzz(func(t *testing.T, resp []byte) {
		user, digest, err := parseCRAMResponse(resp)
		if err != nil {
			return
		}
		if len(digest) != md5.Size || user == "" || checkUsername(user) != nil {
			t.Fatalf("accepted %q as user %q digest %x", resp, user, digest)
		}
		if string(resp) != user+" "+string(resp[len(user)+1:]) {
			t.Fatal("split is not at the last space")
		}
	})
}

// FuzzLoginExchange drives the LOGIN and CRAM-MD5 servers with arbitrary
// responses: they must finish within their steps, never panic, and answer
// only with *smtpd.Reply.
func FuzzLoginExchange(f *testing.F) {
	f.Add([]byte(nil), []byte("taro@"+dom), []byte("taro-pw"), false)
	f.Add([]byte("taro@"+dom), []byte("taro-pw"), []byte("extra"), true)
	f.Add([]byte{}, []byte{}, []byte{}, false)
	d := testDirectory(f)
	f.Fuzz(func(t *testing.T, r1, r2, r3 []byte, noIR bool) {
		if noIR {
			r1 = nil
		}
		cfg := allMechs()
		cfg.MaxFailures = 0
		a := NewAuthenticator(cfg, func() *accounts.Directory { return d }, "mx")
		for _, mech := range []string{"LOGIN", "CRAM-MD5", "PLAIN"} {
			s, err := a.Server(mech, ip1, func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range [][]byte{r1, r2, r3, {}} {
				_, done, err := s.Next(r)
				if err != nil {
					if _, ok := err.(*smtpd.Reply); !ok {
						t.Fatalf("%s: %T %v", mech, err, err)
					}
				}
				if done {
					break
				}
				if i == 3 {
					t.Fatalf("%s not done after 4 responses", mech)
				}
			}
		}
	})
}
