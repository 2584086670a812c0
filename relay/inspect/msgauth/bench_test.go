package msgauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// BenchmarkVerify is the cost of the checks for one 4 KB message signed
// with RSA-2048 (what most senders use), lookups answered by the
// in-process DNS over loopback UDP: through the caching resolver (the
// production path, warm after the first message), through Go's resolver
// (no cache: every lookup on the wire, the DNS server's CPU counted too),
// and from memory. "off" reads the message and nothing else.
func BenchmarkVerify(b *testing.B) {
	w := newWorld(b)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	txt := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	w.dns.Add(`rsa._domainkey.example.com. IN TXT "` + txt[:200] + `" "` + txt[200:] + `"`)
	h := "From: Alice <alice@example.com>\r\nTo: bob@city.lg.jp\r\nSubject: budget\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMessage-ID: <m1@example.com>\r\n"
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 64)
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(h+"\r\n"+body), &dkim.SignOptions{
		Domain: "example.com", Selector: "rsa", Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	}); err != nil {
		b.Fatal(err)
	}
	hdr, bd, _ := bytes.Cut(out.Bytes(), []byte("\r\n\r\n"))
	hdr = append(hdr, "\r\n"...)
	msg := Message{ClientIP: netip.MustParseAddr("192.0.2.7"), Helo: "mx.example.com", MailFrom: "alice@example.com", Header: hdr}

	b.Run("off", func(b *testing.B) {
		b.SetBytes(int64(len(hdr) + len(bd)))
		for b.Loop() {
			io.Copy(io.Discard, io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(bd)))
		}
	})
	// cached answers the same questions from memory: the CPU cost of the
	// checks alone, as behind a local caching resolver.
	cached := memResolver{
		"example.com":                {`v=spf1 ip4:192.0.2.0/24 -all`},
		"rsa._domainkey.example.com": {txt},
		"_dmarc.example.com":         {`v=DMARC1; p=reject; sp=quarantine`},
	}
	for _, tc := range []struct {
		name        string
		spf, dk, dm Policy
		dns         string
	}{
		{"spf", Header, Off, Off, ""},
		{"dkim", Off, Header, Off, ""},
		{"spf+dkim+dmarc", Header, Header, Header, ""},
		{"spf+dkim+dmarc,no-cache", Header, Header, Header, "go"},
		{"spf+dkim+dmarc,memory", Header, Header, Header, "memory"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v := w.verifier(b, tc.spf, tc.dk, tc.dm)
			switch tc.dns {
			case "memory":
				v.dns = cached
			case "go":
				v.dns = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, w.dns.Addr)
				}}
			}
			b.SetBytes(int64(len(hdr) + len(bd)))
			for b.Loop() {
				m := msg
				m.Body = bytes.NewReader(bd)
				r := v.Verify(context.Background(), m)
				if (tc.dm != Off && r.DMARC != "pass") || (tc.spf != Off && r.SPF != "pass") {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}

type memResolver map[string][]string

func (m memResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if t, ok := m[strings.TrimSuffix(name, ".")]; ok {
		return t, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (memResolver) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }
func (memResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, nil
}
func (memResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }
