package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/export/slapdtest"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// fixture is a running engine with a store and a quarantine, and the
// console's handler over it.
type fixture struct {
	eng *gateway.Engine
	con *Server
	srv *httptest.Server
	st  *store.Store
	id  string // tanaka's quarantined original
}

func newFixture(t *testing.T, edit ...func(*Config)) *fixture {
	return newFixtureTLS(t, "", "", edit...)
}

// newFixtureTLS is newFixture with relay.tls set (certFile, keyFile).
func newFixtureTLS(t *testing.T, certFile, keyFile string, edit ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureSections(t, nil, certFile, keyFile, edit...)
}

// newFixtureSections is newFixtureTLS with the gateway's sections edited
// before it starts.
func newFixtureSections(t *testing.T, secEdit func(*gateway.Sections), certFile, keyFile string, edit ...func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	sec := gateway.Sections{Accounts: accounts.DefaultConfig(), Rewrite: rewrite.DefaultConfig(), Routing: routing.DefaultConfig(),
		Relay: gateway.DefaultConfig()}
	sec.Accounts.Domains = []accounts.DomainConfig{{Name: "test.jp", Mode: "mirror"}}
	sec.Accounts.Accounts = []accounts.AccountConfig{
		{Address: "tanaka@test.jp", Secret: "{PLAIN}tanaka-pw"}, {Address: "sato@test.jp", Secret: "{PLAIN}sato-pw"},
		{Address: "admin@test.jp", Secret: "{PLAIN}admin-pw"},
	}
	sec.Relay.Hostname = "gw.test.jp"
	sec.Relay.TLS = gateway.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	sec.Relay.Listeners = []gateway.ListenerConfig{{Address: "127.0.0.1:0", Mode: "mx"}}
	sec.Relay.Queue.Dir = filepath.Join(dir, "queue")
	sec.Relay.Store = store.Config{Driver: store.DriverSQLite, Path: filepath.Join(dir, "s.db"), Buffer: 1024,
		TraceRetention: time.Hour, AuditRetention: 48 * time.Hour}
	sec.Relay.Sanitize.Rules = []sanitize.Rule{{Source: "internet"}}
	sec.Relay.Sanitize.Quarantine.Dir = filepath.Join(dir, "quarantine")
	if secEdit != nil {
		secEdit(&sec)
	}
	eng, err := gateway.New(sec, slog.New(slog.DiscardHandler), ops.NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Shutdown(context.Background())
		cancel()
	})
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", HTTP: true}}
	cfg.Administrators = []string{"admin@test.jp"}
	for _, e := range edit {
		e(&cfg)
	}
	con, err := New(cfg, eng, Options{Config: func() ConfigReport { return ConfigReport{Source: "test.yaml", YAML: "x: 1\n"} }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{eng: eng, con: con, srv: httptest.NewServer(con.Handler())}
	t.Cleanup(f.srv.Close)
	deadline := time.Now().Add(20 * time.Second)
	for f.st = eng.Store(); f.st == nil; f.st = eng.Store() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	q, err := quarantine.Open(sec.Relay.Sanitize.Quarantine.Dir, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.id = q.NewID()
	env := queue.Envelope{From: "yamada@example.com", Rcpts: []queue.Recipient{{Addr: "tanaka@test.jp"}}}
	if _, err := q.Put(f.id, env, quarantine.Entry{Subject: "見積書"}, strings.NewReader("Subject: x\r\n\r\n<b>original</b>\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutQuarantine(context.Background(), store.QuarantineItem{Instance: "gw.test.jp", ID: f.id, Stored: time.Now(),
		Expires: time.Now().Add(time.Hour), Sender: "yamada@example.com", Rcpts: []string{"tanaka@test.jp"}, Subject: "見積書"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// client is one browser: a cookie jar, no redirects followed blindly.
type client struct {
	t    *testing.T
	f    *fixture
	http *http.Client
	csrf string
}

func (f *fixture) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, f: f, http: &http.Client{Jar: jar}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Get(c.f.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) post(path string, form url.Values, headers ...string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) signIn(user, pw string) {
	c.t.Helper()
	c.get("/signin")
	resp, body := c.post("/signin", url.Values{"csrf": {c.csrf}, "user": {user}, "password": {pw}})
	if resp.StatusCode != http.StatusOK || strings.Contains(resp.Request.URL.Path, "/signin") {
		c.t.Fatalf("sign-in as %s: %d %s\n%s", user, resp.StatusCode, resp.Request.URL, body)
	}
}

func TestSecurityHeadersAndCookies(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	resp, _ := c.get("/signin")
	h := resp.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") ||
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", h)
	}
	c.signIn("tanaka@test.jp", "tanaka-pw")
	u, _ := url.Parse(f.srv.URL)
	var session *http.Cookie
	// The jar hides the attributes; sign in again by hand to see them.
	c2 := f.client(t)
	c2.get("/signin")
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/signin", strings.NewReader(url.Values{"csrf": {c2.csrf}, "user": {"tanaka@test.jp"}, "password": {"tanaka-pw"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range c2.http.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	raw, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	for _, ck := range raw.Cookies() {
		if ck.Name == "sekisho" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || !strings.Contains(session.Value, ".") {
		t.Fatalf("session cookie %+v", session)
	}
	// A forged signature is not even looked up.
	forged := f.client(t)
	forged.http.Jar.SetCookies(u, []*http.Cookie{{Name: "sekisho", Value: strings.Split(session.Value, ".")[0] + ".AAAA"}})
	if resp, _ := forged.get("/my/quarantine"); !strings.Contains(resp.Request.URL.Path, "/signin") {
		t.Errorf("a forged cookie was accepted: %s", resp.Request.URL)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	c.signIn("tanaka@test.jp", "tanaka-pw")
	item := "/quarantine/gw.test.jp/" + f.id
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{"reason": {"x"}}, nil},
		{"wrong token", url.Values{"reason": {"x"}, "csrf": {"AAAA"}}, nil},
		{"cross-site", url.Values{"reason": {"x"}, "csrf": {c.csrf}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		resp, body := c.post(item+"/request", tc.form, tc.headers...)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "フォームの有効期限") {
			t.Errorf("%s: %d\n%s", tc.name, resp.StatusCode, body)
		}
	}
	if reqs, _ := f.st.Requests(context.Background(), store.RequestQuery{}); len(reqs) != 0 {
		t.Errorf("a refused form made requests: %+v", reqs)
	}
	// A sign-in form needs its own token too.
	anon := f.client(t)
	if resp, _ := anon.post("/signin", url.Values{"user": {"tanaka@test.jp"}, "password": {"tanaka-pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a sign-in without the form's token: %d", resp.StatusCode)
	}
	// With the token the request is taken.
	c.get(item)
	if resp, body := c.post(item+"/request", url.Values{"reason": {"必要です"}, "csrf": {c.csrf}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "申請しました") {
		t.Errorf("a proper request: %d\n%s", resp.StatusCode, body)
	}
}

// Every object a URL names is checked: someone else's gets the answer a
// missing one gets.
func TestOwnership(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tanaka, sato, admin := f.client(t), f.client(t), f.client(t)
	tanaka.signIn("tanaka@test.jp", "tanaka-pw")
	sato.signIn("sato@test.jp", "sato-pw")
	admin.signIn("admin@test.jp", "admin-pw")
	item := "/quarantine/gw.test.jp/" + f.id
	if resp, body := tanaka.get(item); resp.StatusCode != http.StatusOK || !strings.Contains(body, "見積書") {
		t.Fatalf("the recipient: %d", resp.StatusCode)
	}
	tanaka.post(item+"/request", url.Values{"reason": {"要"}, "csrf": {tanaka.csrf}})
	reqs, _ := f.st.Requests(ctx, store.RequestQuery{Requester: "tanaka@test.jp"})
	if len(reqs) != 1 {
		t.Fatalf("requests %+v", reqs)
	}
	rid := reqs[0].ID
	sato.get("/my/quarantine")
	for _, tc := range []struct{ method, path string }{
		{"GET", item}, {"POST", item + "/request"}, {"GET", "/quarantine/gw.test.jp/20991231-0000000000"},
		{"GET", "/quarantine/other-gw/" + f.id}, {"POST", "/requests/" + itoa(rid) + "/cancel"},
		{"GET", "/quarantine/gw.test.jp/..%2f..%2fetc"},
	} {
		var resp *http.Response
		var body string
		if tc.method == "GET" {
			resp, body = sato.get(tc.path)
		} else {
			resp, body = sato.post(tc.path, url.Values{"reason": {"x"}, "csrf": {sato.csrf}})
		}
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "yamada@example.com") {
			t.Errorf("sato %s %s: %d", tc.method, tc.path, resp.StatusCode)
		}
	}
	if r, _ := f.st.Request(ctx, rid); r.State != store.StatePending {
		t.Errorf("sato changed tanaka's request: %+v", r)
	}
	for _, p := range []string{"/admin", "/admin/queue", "/admin/trace", "/approvals", "/admin/config"} {
		if resp, _ := sato.get(p); resp.StatusCode != http.StatusForbidden {
			t.Errorf("staff opened %s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := admin.get(item); resp.StatusCode != http.StatusOK {
		t.Errorf("the administrator: %d", resp.StatusCode)
	}
	resp, err := admin.http.Get(f.srv.URL + "/admin/quarantine/gw.test.jp/" + f.id + "/original")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		resp.Header.Get("Content-Type") != "application/octet-stream" || !strings.Contains(string(body), "<b>original</b>") {
		t.Errorf("the original's download: %v %q", resp.Header, body)
	}
	if a, _ := f.st.Audit(ctx, store.AuditQuery{Action: "view-original"}); len(a) != 1 || a[0].Actor != "admin@test.jp" {
		t.Errorf("the download is not audited: %+v", a)
	}
	if a, _ := f.st.Audit(ctx, store.AuditQuery{Actor: "sato@test.jp", Action: "denied"}); len(a) < 4 {
		t.Errorf("refused attempts are not audited: %+v", a)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSignInRedirectStaysHere(t *testing.T) {
	f := newFixture(t)
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/my/requests"} {
		c := f.client(t)
		c.get("/signin?next=" + url.QueryEscape(next))
		resp, _ := c.post("/signin", url.Values{"csrf": {c.csrf}, "user": {"tanaka@test.jp"}, "password": {"tanaka-pw"}, "next": {next}})
		if resp.Request.URL.Host != strings.TrimPrefix(f.srv.URL, "http://") {
			t.Errorf("next=%q went to %s", next, resp.Request.URL)
		}
	}
}

func TestInert(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain 日本語", "plain 日本語"},
		{"a\u202Eexe.pdf", "a[U+202E]exe.pdf"},
		{"x\u200By", "x[U+200B]y"},
		{"line\r\nnext\tcol", "line\nnext\tcol"},
		{"nul\x00bell\x07", "nul[U+0000]bell[U+0007]"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"<script>", "<script>"}, // escaped by html/template, not here
	} {
		if got := inert(c.in); got != c.want {
			t.Errorf("inert(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Every word a template asks for exists in both languages.
func TestMessagesComplete(t *testing.T) {
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("%s lacks a language", k)
		}
	}
	keyRE := regexp.MustCompile(`\{\{t "([a-z_.]+)"`)
	dirRE := regexp.MustCompile(`t \(print "([a-z_.]+)" [^)]*\)`)
	names, _ := filepath.Glob("templates/*.html")
	for _, n := range names {
		b, _ := os.ReadFile(n)
		for _, m := range keyRE.FindAllSubmatch(b, -1) {
			if _, ok := messages[string(m[1])]; !ok {
				t.Errorf("%s: %q is not in messages", n, m[1])
			}
		}
		for _, m := range dirRE.FindAllSubmatch(b, -1) {
			found := false
			for k := range messages {
				found = found || strings.HasPrefix(k, string(m[1]))
			}
			if !found {
				t.Errorf("%s: no message starts with %q", n, m[1])
			}
		}
	}
	for _, s := range []string{"pending", "approved", "denied", "started", "done", "failed", "cancelled", "deferred", "delivered", "held"} {
		if _, ok := messages["state."+s]; !ok {
			t.Errorf("state.%s is missing", s)
		}
	}
	for _, k := range []string{"receive", "reject", "send", "fail", "dsn", "sanitize", "release", "queue"} {
		if _, ok := messages["kind."+k]; !ok {
			t.Errorf("kind.%s is missing", k)
		}
	}
}

// A person without a secret in the directory signs in with an LDAP bind;
// their group makes them an approver; wrong passwords count towards the
// same lockout as SMTP AUTH.
func TestLDAPSignIn(t *testing.T) {
	url := slapdtest.Start(t, slapdtest.SignInLDIF)
	f := newFixture(t, func(c *Config) {
		c.LDAP.URL = url + "/ou=people,dc=toyokawa,dc=example??sub?(objectClass=inetOrgPerson)"
		c.LDAP.GroupBase = "ou=groups,dc=toyokawa,dc=example"
		c.Approvers = []string{"ldap-group:cn=approvers,ou=groups,dc=toyokawa,dc=example"}
	})
	c := f.client(t)
	c.signIn("kacho", "kacho-pw")
	if resp, _ := c.get("/approvals"); resp.StatusCode != http.StatusOK {
		t.Errorf("the LDAP group's member is not an approver: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/my/quarantine"); resp.StatusCode != http.StatusOK {
		t.Errorf("staff pages for the LDAP user: %d", resp.StatusCode)
	}
	// An account with a secret still signs in with it, not LDAP.
	c2 := f.client(t)
	c2.signIn("tanaka@test.jp", "tanaka-pw")
	bad := f.client(t)
	for range 5 {
		bad.get("/signin")
		bad.post("/signin", url2("csrf", bad.csrf, "user", "kacho", "password", "wrong"))
	}
	bad.get("/signin")
	_, body := bad.post("/signin", url2("csrf", bad.csrf, "user", "kacho", "password", "kacho-pw"))
	if !strings.Contains(body, "しばらくサインインできません") {
		t.Errorf("LDAP failures did not lock the sign-in:\n%s", body)
	}
	if a, _ := f.st.Audit(context.Background(), store.AuditQuery{Actor: "kacho@city.toyokawa.aichi.jp", Action: "signin"}); len(a) != 1 || !a[0].OK ||
		!strings.Contains(a[0].Detail, "ldap") {
		t.Errorf("the LDAP sign-in's audit record: %+v", a)
	}
}

func url2(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw.test.jp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"gw.test.jp"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// A listener without http: true serves HTTPS with the gateway's
// certificate; its cookies are __Host- cookies, and HSTS is set.
func TestHTTPSListener(t *testing.T) {
	cert, key := selfSigned(t)
	f := newFixtureTLS(t, cert, key, func(c *Config) { c.Listeners = []ListenerConfig{{Address: "127.0.0.1:0"}} })
	if err := f.con.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.con.Shutdown(context.Background())
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + f.con.Addrs()[0].String() + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("HTTPS: %d %v %v", resp.StatusCode, resp.TLS != nil, resp.Header)
	}
	var pre *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-sekisho-signin" {
			pre = c
		}
	}
	if pre == nil || !pre.Secure || !pre.HttpOnly || pre.Path != "/" {
		t.Errorf("the sign-in cookie on HTTPS: %+v", resp.Cookies())
	}
	// Plain HTTP is refused off loopback by the configuration.
	bad := DefaultConfig()
	bad.Administrators = []string{"admin@test.jp"}
	bad.Listeners = []ListenerConfig{{Address: "192.0.2.1:8080", HTTP: true}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "listeners[0].http: plain HTTP only on a loopback address") {
		t.Errorf("plain HTTP off loopback: %v", err)
	}
	if err := (Config{Listeners: []ListenerConfig{{Address: "127.0.0.1:8443"}}}).CheckTLS(false); err == nil {
		t.Errorf("HTTPS without relay.tls was accepted")
	}
}
