package msgauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/routing/dnstest"
)

func TestCachingResolver(t *testing.T) {
	s := dnstest.New(t)
	s.SetTTL(60)
	s.SetNegativeTTL(30)
	s.Add(`example.com. 60 IN TXT "v=spf1 " "-all"`, "mx.example.com. IN A 192.0.2.1", "mx.example.com. IN AAAA 2001:db8::1",
		"example.com. IN MX 10 mx.example.com.", "1.2.0.192.in-addr.arpa. IN PTR mx.example.com.",
		`big.example.com. IN TXT "`+strings.Repeat("a", 200)+`"`)
	s.ServFail("fail.example.com.")
	s.Truncate("big.example.com.")
	now := time.Unix(1_800_000_000, 0)
	r, err := newCachingResolver([]string{s.Addr}, "", time.Second, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for range 2 {
		txt, err := r.LookupTXT(ctx, "Example.COM")
		if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
			t.Fatalf("TXT: %q %v", txt, err)
		}
	}
	if n := s.Count("example.com.", dns.TypeTXT); n != 1 {
		t.Errorf("TXT asked %d times within its TTL, want 1", n)
	}
	now = now.Add(61 * time.Second)
	r.LookupTXT(ctx, "example.com")
	if n := s.Count("example.com.", dns.TypeTXT); n != 2 {
		t.Errorf("TXT asked %d times after its TTL, want 2", n)
	}

	// Negative answers are kept for the SOA's negative TTL.
	for range 2 {
		_, err := r.LookupTXT(ctx, "_dmarc.nowhere.example.org")
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound || de.Temporary() {
			t.Fatalf("NXDOMAIN: %#v", err)
		}
	}
	if n := s.Count("_dmarc.nowhere.example.org.", dns.TypeTXT); n != 1 {
		t.Errorf("NXDOMAIN asked %d times, want 1", n)
	}

	// Failures are temporary and never kept.
	for range 2 {
		_, err := r.LookupTXT(ctx, "fail.example.com")
		var de *net.DNSError
		if !errors.As(err, &de) || !de.Temporary() || de.IsNotFound {
			t.Fatalf("SERVFAIL: %#v", err)
		}
	}
	if n := s.Count("fail.example.com.", dns.TypeTXT); n != 2 {
		t.Errorf("SERVFAIL asked %d times, want 2", n)
	}

	if txt, err := r.LookupTXT(ctx, "big.example.com"); err != nil || len(txt) != 1 || len(txt[0]) != 200 {
		t.Errorf("truncated TXT over TCP: %d %v", len(txt), err)
	}
	if ips, err := r.LookupIPAddr(ctx, "mx.example.com"); err != nil || len(ips) != 2 {
		t.Errorf("A and AAAA: %v %v", ips, err)
	}
	if mx, err := r.LookupMX(ctx, "example.com"); err != nil || len(mx) != 1 || mx[0].Host != "mx.example.com." {
		t.Errorf("MX: %v %v", mx, err)
	}
	if names, err := r.LookupAddr(ctx, "192.0.2.1"); err != nil || len(names) != 1 || names[0] != "mx.example.com." {
		t.Errorf("PTR: %v %v", names, err)
	}
	if _, err := r.LookupIPAddr(ctx, "fail.example.com"); err == nil || !err.(*net.DNSError).Temporary() {
		t.Errorf("A of a failing name: %v", err)
	}
}

func TestQueryName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com", true},
		{"example.com.", "example.com.", true},
		{"macro%percent  space.example.com", `macro%percent\ \ space.example.com`, true},
		{"a;b@c.example", `a\;b\@c.example`, true},
		{"tab\there.example", `tab\009here.example`, true},
		{"a...example.com", "", false},
		{".example.com", "", false},
		{strings.Repeat("a", 64) + ".example.com", "", false},
		{strings.Repeat("a", 63) + ".example.com", strings.Repeat("a", 63) + ".example.com", true},
		{strings.Repeat("abcdefghi.", 26), "", false},
		{"", "", false},
		{".", "", false},
	}
	for _, tc := range tests {
		got, ok := queryName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// A malformed name is one that does not exist, asked of no server.
func TestMalformedNameNotFound(t *testing.T) {
	s := dnstest.New(t)
	r, err := NewCachingResolver([]string{s.Addr}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.LookupTXT(context.Background(), "a..example.com")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || de.IsTemporary {
		t.Fatalf("got %v, want a not-found error", err)
	}
	if q := s.Queries(); len(q) != 0 {
		t.Errorf("asked %v", q)
	}
}
