package msgauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// world is a fake internet: example.com publishes SPF, a DKIM key and a
// DMARC reject policy; nodmarc.example.net publishes SPF only.
type world struct {
	dns *dnstest.Server
	key ed25519.PrivateKey
}

func newWorld(t testing.TB) *world {
	t.Helper()
	s := dnstest.New(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(
		`example.com. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`sel._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`,
		`_dmarc.example.com. IN TXT "v=DMARC1; p=reject; sp=quarantine"`,
		`news.example.com. IN TXT "v=spf1 -all"`,
		`example.net. IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
	)
	s.ServFail("broken.example.org.")
	// temp.example.com's SPF and keyfail.example.com's DKIM key cannot be
	// read; both align with example.com under relaxed alignment.
	s.ServFail("temp.example.com.")
	s.ServFail("sel._domainkey.keyfail.example.com.")
	// example.org publishes two DMARC records: no policy (RFC 7489
	// §6.6.3), though each alone would reject.
	s.Add(
		`example.org. IN TXT "v=spf1 -all"`,
		`_dmarc.example.org. IN TXT "v=DMARC1; p=reject"`,
		`_dmarc.example.org. IN TXT "v=DMARC1; p=reject; pct=100"`,
		`_dmarc.example.org. IN TXT "some other record"`,
	)
	return &world{dns: s, key: key}
}

func (w *world) verifier(t testing.TB, spf, dk, dm Policy) *Verifier {
	t.Helper()
	r, err := NewResolver([]string{w.dns.Addr})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SPF, cfg.DKIM, cfg.DMARC = spf, dk, dm
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v, err := New(cfg, "gw.city.lg.jp", r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// msg builds a message from "from" (an address, or whole From fields
// when it starts with "From:"); signed by d= domain when sign is set.
func (w *world) msg(t testing.TB, from string, sign string, tamper bool) (hdr, body []byte) {
	if !strings.HasPrefix(from, "From:") {
		from = "From: Alice <" + from + ">\r\n"
	}
	h := from + "To: bob@city.lg.jp\r\nSubject: budget\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMessage-ID: <m1@example.com>\r\n"
	b := "The figures are attached.\r\n"
	if sign != "" {
		var out bytes.Buffer
		err := dkim.Sign(&out, strings.NewReader(h+"\r\n"+b), &dkim.SignOptions{
			Domain: sign, Selector: "sel", Signer: w.key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
		})
		if err != nil {
			t.Fatal(err)
		}
		h, b, _ = strings.Cut(out.String(), "\r\n\r\n")
		h += "\r\n"
	}
	if tamper {
		b = "The figures have changed.\r\n"
	}
	return []byte(h), []byte(b)
}

func TestVerify(t *testing.T) {
	w := newWorld(t)
	inside := netip.MustParseAddr("192.0.2.7")
	outside := netip.MustParseAddr("203.0.113.9")
	tests := []struct {
		name        string
		spf, dk, dm Policy
		ip          netip.Addr
		mailFrom    string
		from, sign  string
		tamper      bool
		header      string // the Authentication-Results field, whole
		refuse      bool
		code        int
		enhanced    string
		dmarc       string
	}{
		{name: "all pass", spf: Header, dk: Header, dm: Header, ip: inside, mailFrom: "alice@example.com", from: "alice@example.com", sign: "example.com",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=pass smtp.helo=mx.example.com smtp.mailfrom=alice@example.com;\r\n\tdkim=pass header.d=example.com header.i=@example.com;\r\n\tdmarc=pass header.from=example.com\r\n"},
		{name: "spf fail header only", spf: Header, ip: outside, mailFrom: "alice@example.com",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=alice@example.com\r\n"},
		{name: "spf fail rejected", spf: Reject, ip: outside, mailFrom: "alice@example.com", refuse: true, code: 550, enhanced: "5.7.23",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=alice@example.com\r\n"},
		{name: "spf temperror deferred", spf: Reject, ip: outside, mailFrom: "a@broken.example.org", refuse: true, code: 451, enhanced: "4.7.24"},
		{name: "null sender uses helo", spf: Reject, ip: outside, mailFrom: "",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=none reason=\"no DNS record found\" smtp.helo=mx.example.com\r\n"},
		{name: "dkim unsigned not refused", dk: Reject, ip: outside, from: "alice@example.com",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tdkim=none\r\n"},
		{name: "dkim tampered refused", dk: Reject, ip: outside, from: "alice@example.com", sign: "example.com", tamper: true, refuse: true, code: 550, enhanced: "5.7.20"},
		{name: "dmarc reject policy", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "alice@example.com", from: "alice@example.com", refuse: true, code: 550, enhanced: "5.7.1",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=alice@example.com;\r\n\tdkim=none;\r\n\tdmarc=fail reason=\"no aligned SPF or DKIM pass\" header.from=example.com\r\n"},
		{name: "dmarc pass by aligned dkim despite spf fail", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "bounce@example.net", from: "alice@example.com", sign: "example.com", dmarc: "pass"},
		{name: "dmarc relaxed alignment", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "alice@news.example.com", sign: "example.com", dmarc: "pass"},
		{name: "dmarc subdomain policy quarantine not refused", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "alice@news.example.com", dmarc: "fail"},
		{name: "dmarc temperror when aligned spf could not be checked", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "bounce@temp.example.com", from: "alice@example.com", refuse: true, code: 451, enhanced: "4.7.1", dmarc: "temperror"},
		{name: "dmarc temperror when aligned dkim key could not be read", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "alice@example.com", sign: "keyfail.example.com", refuse: true, code: 451, enhanced: "4.7.1", dmarc: "temperror"},
		{name: "dmarc fail when only an unaligned check failed temporarily", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@broken.example.org", from: "alice@example.com", refuse: true, code: 550, enhanced: "5.7.1", dmarc: "fail"},
		{name: "dmarc pass beats an aligned temperror", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@temp.example.com", from: "alice@example.com", sign: "example.com", dmarc: "pass"},
		{name: "dmarc second From field evaluated", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "From: a@example.net\r\nFrom: alice@example.com\r\n", refuse: true, code: 550, enhanced: "5.7.1",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=x@example.net;\r\n\tdkim=none;\r\n\tdmarc=none header.from=example.net;\r\n\tdmarc=fail reason=\"no aligned SPF or DKIM pass\" header.from=example.com\r\n"},
		{name: "dmarc second address evaluated", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "From: a@example.net, Alice <alice@example.com>\r\n", refuse: true, code: 550, enhanced: "5.7.1", dmarc: "fail"},
		{name: "dmarc strictest of several authors applies", spf: Header, dk: Header, dm: Reject, ip: inside, mailFrom: "alice@example.com", from: "From: alice@example.com, b@news.example.com, c@example.net\r\n", dmarc: "none"},
		{name: "dmarc unreadable address does not hide a readable one", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "From: postmaster, alice@example.com\r\n", refuse: true, code: 550, enhanced: "5.7.1"},
		{name: "dmarc several records mean none", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.org", from: "a@example.org",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=x@example.org;\r\n\tdkim=none;\r\n\tdmarc=none reason=\"several DMARC records\" header.from=example.org\r\n"},
		{name: "dmarc no From field permerror", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "From: postmaster\r\n", dmarc: "permerror"},
		{name: "dmarc none without record", spf: Header, dk: Header, dm: Reject, ip: outside, mailFrom: "x@example.net", from: "a@example.net",
			header: "Authentication-Results: gw.city.lg.jp;\r\n\tspf=fail reason=\"matched all\" smtp.helo=mx.example.com smtp.mailfrom=x@example.net;\r\n\tdkim=none;\r\n\tdmarc=none header.from=example.net\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := w.verifier(t, or(tc.spf), or(tc.dk), or(tc.dm))
			from := tc.from
			if from == "" {
				from = "alice@example.com"
			}
			hdr, body := w.msg(t, from, tc.sign, tc.tamper)
			r := v.Verify(context.Background(), Message{ClientIP: tc.ip, Helo: "mx.example.com", MailFrom: tc.mailFrom, Header: hdr, Body: bytes.NewReader(body)})
			// The same with the empty line kept on the header block.
			r2 := v.Verify(context.Background(), Message{ClientIP: tc.ip, Helo: "mx.example.com", MailFrom: tc.mailFrom, Header: append(hdr, "\r\n"...), Body: bytes.NewReader(body)})
			if r2.Header != r.Header || r2.Refuse != r.Refuse {
				t.Errorf("with the empty line: %+v\nwithout: %+v", r2, r)
			}
			if r.Refuse != tc.refuse || r.Reply.Code != tc.code || r.Reply.Enhanced != tc.enhanced {
				t.Errorf("refuse %v %+v, want %v %d %s (spf %s dkim %v dmarc %s)", r.Refuse, r.Reply, tc.refuse, tc.code, tc.enhanced, r.SPF, r.DKIM, r.DMARC)
			}
			if tc.dmarc != "" && string(r.DMARC) != tc.dmarc {
				t.Errorf("dmarc %s (policy %s), want %s", r.DMARC, r.DMARCPolicy, tc.dmarc)
			}
			if tc.header != "" && r.Header != tc.header {
				t.Errorf("header\n%q\nwant\n%q", r.Header, tc.header)
			}
		})
	}
}

func or(p Policy) Policy {
	if p == "" {
		return Off
	}
	return p
}

func TestAddHeaderStripsForged(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t, Header, Off, Off)
	in := "Authentication-Results: GW.city.lg.jp; spf=pass smtp.mailfrom=x@example.com\r\n" +
		"Received: from a\r\n" +
		"Authentication-Results: (forged) gw.city.lg.jp;\r\n dkim=pass\r\n" +
		"Authentication-Results: mx.example.com; spf=pass\r\n" +
		"Subject: x\r\n"
	got := string(v.AddHeader([]byte(in), Result{Header: "Authentication-Results: gw.city.lg.jp; spf=fail\r\n"}))
	want := "Authentication-Results: gw.city.lg.jp; spf=fail\r\n" +
		"Received: from a\r\n" +
		"Authentication-Results: mx.example.com; spf=pass\r\n" +
		"Subject: x\r\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func FuzzStripAuthResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: (c (n)) gw; spf=pass\r\nA: b\r\n"), "gw")
	f.Fuzz(func(t *testing.T, h []byte, id string) {
		out := StripAuthResults(h, id)
		if len(out) > len(h) {
			t.Fatalf("grew: %q -> %q", h, out)
		}
	})
}

func TestCheckConnect(t *testing.T) {
	w := newWorld(t)
	w.dns.Add(
		"7.2.0.192.bl.example.org. IN A 127.0.0.2",
		"7.2.0.192.al.example.org. IN A 127.0.0.2",
		"8.2.0.192.bl.example.org. IN A 127.0.0.4",
		"9.2.0.192.bl.example.org. IN A 127.255.255.254",
		"8.2.0.192.in-addr.arpa. IN PTR mx.example.com.",
		"mx.example.com. IN A 192.0.2.8",
		"9.2.0.192.in-addr.arpa. IN PTR liar.example.com.",
		"liar.example.com. IN A 192.0.2.200",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example.org. IN A 127.0.0.2",
	)
	w.dns.ServFail("10.2.0.192.in-addr.arpa.")
	r, _ := NewResolver([]string{w.dns.Addr})
	tests := []struct {
		name     string
		block    []string
		allow    []string
		reverse  string
		ip       string
		listed   string
		host     string
		code     int
		enhanced string
		dmarc    string
	}{
		{name: "listed", block: []string{"bl.example.org"}, ip: "192.0.2.8", listed: "bl.example.org", code: 554, enhanced: "5.7.1"},
		{name: "second of two lists", block: []string{"none.example.org", "bl.example.org"}, ip: "192.0.2.8", listed: "bl.example.org", code: 554, enhanced: "5.7.1"},
		{name: "first listing list named", block: []string{"bl.example.org", "al.example.org"}, ip: "192.0.2.7", listed: "bl.example.org", code: 554, enhanced: "5.7.1"},
		{name: "ipv6 listed", block: []string{"bl.example.org"}, ip: "2001:db8::1", listed: "bl.example.org", code: 554, enhanced: "5.7.1"},
		{name: "allow list wins", block: []string{"bl.example.org"}, allow: []string{"al.example.org"}, ip: "192.0.2.7"},
		{name: "refused-query answer is no listing", block: []string{"bl.example.org"}, ip: "192.0.2.9"},
		{name: "not listed", block: []string{"bl.example.org"}, ip: "192.0.2.100"},
		{name: "confirmed name", reverse: ReverseForwards, ip: "192.0.2.8", host: "mx.example.com"},
		{name: "ptr only accepts unconfirmed", reverse: ReversePTR, ip: "192.0.2.9", host: "liar.example.com"},
		{name: "confirmed refuses liar", reverse: ReverseForwards, ip: "192.0.2.9", code: 554, enhanced: "5.7.25"},
		{name: "no ptr", reverse: ReversePTR, ip: "192.0.2.100", code: 554, enhanced: "5.7.25"},
		{name: "dns failure defers", reverse: ReversePTR, ip: "192.0.2.10", code: 421, enhanced: "4.7.25"},
		{name: "loopback never checked", block: []string{"bl.example.org"}, reverse: ReverseForwards, ip: "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Blocklists, cfg.Allowlists = tc.block, tc.allow
			if tc.reverse != "" {
				cfg.ReverseDNS = tc.reverse
			}
			v, _ := New(cfg, "gw", r)
			res := v.CheckConnect(context.Background(), netip.MustParseAddr(tc.ip))
			if res.Listed != tc.listed || res.Name != tc.host || res.Reply.Code != tc.code || res.Reply.Enhanced != tc.enhanced || res.Refuse != (tc.code != 0) {
				t.Errorf("got %+v", res)
			}
		})
	}
	_ = dns.TypeA
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.SPF, c.DMARC, c.ReverseDNS = "strict", Reject, "yes"
	c.Blocklists = []string{"zen", "ok.example.org"}
	c.DNSServers = []string{"127.0.0.1:53", "resolver"}
	c.MaxSignatures = 0
	want := `spf: "strict" is not off, header or reject
dmarc: needs spf and dkim checked (header or reject)
max_signatures: 0, need at least 1
dns_servers[1]: "resolver" is not an IP address with an optional port
blocklists[0]: "zen" is not a DNS zone
reverse_dns: "yes" is not off, ptr or confirmed`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func FuzzAuthorDomains(f *testing.F) {
	f.Add([]byte("From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@city.example.jp>\r\n"))
	f.Add([]byte("From: a@b.example, c@d.example\r\n"))
	f.Fuzz(func(t *testing.T, h []byte) {
		ds, err := authorDomains(h)
		if (err == nil) != (len(ds) > 0) {
			t.Fatalf("%q: %q %v", h, ds, err)
		}
		for _, d := range ds {
			if d == "" || strings.ContainsAny(d, "@ ") {
				t.Fatalf("domain %q from %q", d, h)
			}
		}
	})
}

func TestAuthorDomains(t *testing.T) {
	for _, tc := range []struct{ h, want, err string }{
		{"From: =?ISO-2022-JP?B?GyRCOzBCPBsoQg==?= <taro@City.Example.JP>\r\n", "city.example.jp", ""},
		{"Subject: x\r\n", "", "no From field"},
		{"From: a@b.example, c@d.example\r\n", "b.example d.example", ""},
		{"From: a@b.example, c@B.example\r\n", "b.example", ""},
		{"From: a@b.example\r\nFrom: c@d.example\r\n", "b.example d.example", ""},
		{"From: \x95\\\x81\x40 <hyo@Example.JP.>\r\n", "example.jp", ""}, // a raw Shift_JIS name
		{"From: taro..yamada@docomo.ne.jp\r\n", "docomo.ne.jp", ""},      // a carrier's local part
		{"From: postmaster\r\n", "", "header from has no domain"},
		{"From: postmaster, a@b.example\r\n", "b.example", ""},
		{"From: \"unclosed <a@b.jp>\r\n", "", "header from: field cannot be read: unclosed quoted string"},
		{"From: \"unclosed <a@b.jp>\r\nFrom: c@d.example\r\n", "d.example", ""},
	} {
		ds, err := authorDomains([]byte(tc.h))
		if got := strings.Join(ds, " "); got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%q: %q %v", tc.h, got, err)
		}
	}
}
