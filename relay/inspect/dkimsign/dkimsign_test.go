package dkimsign

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// publish puts the key's TXT record in the fake DNS, split into
// 255-byte strings as a zone file needs.
func publish(t testing.TB, s *dnstest.Server, name string, k crypto.Signer) {
	t.Helper()
	txt, err := TXTRecord(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.Add(name + " IN TXT " + quoteChunks(txt))
}

func quoteChunks(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}

func writeKey(t testing.TB, dir, name, kind string) (string, crypto.Signer) {
	t.Helper()
	pemb, k, err := GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemb, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, k
}

func verifier(s *dnstest.Server) func(msg []byte) ([]*dkim.Verification, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.Addr)
	}}
	return func(msg []byte) ([]*dkim.Verification, error) {
		return dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
			LookupTXT: func(n string) ([]string, error) { return r.LookupTXT(context.Background(), n) },
		})
	}
}

// rewritten is a message whose From the gateway rewrote from the LG
// domain to the regional one; the original signature no longer verifies.
const rewritten = "Received: from inner.city.lg.jp\r\n" +
	"From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@city.example.jp>\r\n" +
	"To: someone@example.com\r\n" +
	"Subject: minutes\r\n" +
	"Date: Sun, 29 Nov 2026 10:00:00 +0900\r\n" +
	"Message-ID: <a1@city.lg.jp>\r\n" +
	"\r\n" +
	"The minutes of the meeting.\r\n.leading dot line\r\n"

func TestSignVerifies(t *testing.T) {
	dir := t.TempDir()
	s := dnstest.New(t)
	verify := verifier(s)
	rsaFile, rsaKey := writeKey(t, dir, "city.pem", "rsa")
	edFile, edKey := writeKey(t, dir, "ed.pem", "ed25519")
	publish(t, s, "s1._domainkey.city.example.jp.", rsaKey)
	publish(t, s, "e1._domainkey.town.example.jp.", edKey)
	cfg := DefaultConfig()
	cfg.Keys = []KeyConfig{{Domain: "city.example.jp", Selector: "s1", KeyFile: rsaFile}, {Domain: "town.example.jp", Selector: "e1", KeyFile: edFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, wantD string
	}{
		{"rsa, domain itself", "taro@city.example.jp", "city.example.jp"},
		{"ed25519, subdomain signed by parent", "hanako@kyoiku.town.example.jp", "town.example.jp"},
		{"no key", "x@elsewhere.example.org", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := strings.Replace(rewritten, "taro@city.example.jp", tc.from, 1)
			field, err := sg.Sign(strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantD == "" {
				if field != "" {
					t.Fatalf("signed without a key: %q", field)
				}
				return
			}
			if !strings.Contains(field, "h=From:From:") || !strings.Contains(field, "c=relaxed/relaxed") {
				t.Errorf("signature lacks over-signed From or relaxed canonicalization: %s", field)
			}
			vs, err := verify([]byte(field + msg))
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != tc.wantD {
				t.Fatalf("verification: %v %+v", err, vs)
			}
			// A From added later breaks the over-signed signature.
			vs, _ = verify([]byte(field + "From: evil@example.net\r\n" + msg))
			if len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("an added From still verifies")
			}
		})
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	s := dnstest.New(t)
	verify := verifier(s)
	file, k1 := writeKey(t, dir, "k.pem", "ed25519")
	publish(t, s, "old._domainkey.city.example.jp.", k1)
	sg, err := New(Config{Keys: []KeyConfig{{Domain: "city.example.jp", Selector: "old", KeyFile: file}}, Headers: DefaultHeaders})
	if err != nil {
		t.Fatal(err)
	}
	// A broken file on reload keeps the key in use.
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sg.Reload(); err == nil || !strings.Contains(err.Error(), "keys[0].key_file: no PEM block") {
		t.Fatalf("Reload of garbage: %v", err)
	}
	field, err := sg.Sign(strings.NewReader(rewritten))
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := verify([]byte(field + rewritten)); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("old key after a failed reload: %+v", vs)
	}
	// A new key in the file is used after Reload.
	_, k2 := writeKey(t, dir, "k.pem", "ed25519")
	s.Remove("old._domainkey.city.example.jp.")
	publish(t, s, "old._domainkey.city.example.jp.", k2)
	if err := sg.Reload(); err != nil {
		t.Fatal(err)
	}
	field, _ = sg.Sign(strings.NewReader(rewritten))
	if vs, _ := verify([]byte(field + rewritten)); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("new key after reload: %+v", vs)
	}
}

func TestSignErrors(t *testing.T) {
	sg, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"Subject: no from\r\n\r\nx", "From: a@b.example\r\nFrom: c@d.example\r\n\r\nx", "From: broken <\r\n\r\nx", "no header at all"} {
		if _, err := sg.Sign(strings.NewReader(msg)); !errors.Is(err, ErrUnsignable) {
			t.Errorf("Sign(%q): %v, want ErrUnsignable", msg, err)
		}
	}
	// A spool that fails to read is not the message's fault.
	broken := io.MultiReader(strings.NewReader("From: a@city.example.jp\r\n"), iotest.ErrReader(errors.New("EIO")))
	if _, err := sg.Sign(broken); err == nil || errors.Is(err, ErrUnsignable) {
		t.Errorf("Sign of a failing reader: %v", err)
	}
}

func TestFromDomain(t *testing.T) {
	for _, tc := range []struct{ header, want, err string }{
		{"From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@City.Example.JP>\r\n\r\n", "City.Example.JP", ""},
		{"From: \x95\\\x81\x40 <hyo@example.jp>\r\n", "example.jp", ""}, // a raw Shift_JIS name
		{"From: a@b.example, c@d.example\r\n", "b.example", ""},         // the first address signs
		{"Subject: x\r\n", "", "0 From fields"},
		{"From: a@b.example\r\nFrom: c@d.example\r\n", "", "2 From fields"},
		{"From: \r\n", "", "header from: unparsable (no address)"},
		{"From: broken <\r\n", "", "header from: unparsable (field cannot be read: '<' without '>')"},
		{"From: postmaster\r\n", "", `header from "postmaster" has no domain`},
		{"From: a@@b.jp\r\n", "", "header from: unparsable (more than one '@')"},
	} {
		d, err := fromDomain([]byte(tc.header))
		if d != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%q: %q %v, want %q %q", tc.header, d, err, tc.want, tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	c := Config{
		Keys: []KeyConfig{
			{Domain: "city.example.jp", Selector: "s1", KeyFile: "a.pem"},
			{Domain: "CITY.example.jp.", Selector: "bad selector", KeyFile: ""},
			{Domain: "localhost", Selector: "s", KeyFile: "b.pem"},
		},
		Headers: []string{"Subject", "X:Y"},
	}
	want := `keys[1].domain: city.example.jp already has a key at keys[0]
keys[1].selector: "bad selector" is not a DNS label
keys[1].key_file: empty
keys[2].domain: "localhost" is not a domain
headers[1]: "X:Y" is not a field name
headers: must include From (RFC 6376)`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no PEM block"},
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", `PEM block "CERTIFICATE" is not a private key`},
	} {
		if _, err := ParseKey([]byte(tc.in)); err == nil || err.Error() != tc.want {
			t.Errorf("ParseKey(%q) = %v, want %s", tc.in, err, tc.want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	pemb, _, _ := GenerateKey("ed25519")
	f.Add(pemb)
	f.Fuzz(func(t *testing.T, b []byte) { ParseKey(b) })
}
