package dnstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func ask(t *testing.T, s *Server, network, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return in
}

func TestAnswers(t *testing.T) {
	s := New(t)
	s.MX("example.jp", 10, "mx.example.jp")
	s.A("mx.example.jp", "192.0.2.1")
	s.AAAA("mx.example.jp", "2001:db8::1")
	s.NullMX("null.example")
	s.CNAME("alias.example.jp", "mx.example.jp")
	s.ServFail("broken.example")
	s.NXDomain("gone.example")
	s.Exists("empty.example")

	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
		soa     bool
	}{
		{"example.jp", dns.TypeMX, dns.RcodeSuccess, 1, false},
		{"EXAMPLE.JP", dns.TypeMX, dns.RcodeSuccess, 1, false},
		{"example.jp", dns.TypeA, dns.RcodeSuccess, 0, true}, // NODATA
		{"mx.example.jp", dns.TypeAAAA, dns.RcodeSuccess, 1, false},
		{"null.example", dns.TypeMX, dns.RcodeSuccess, 1, false},
		{"alias.example.jp", dns.TypeA, dns.RcodeSuccess, 2, false}, // CNAME + A
		{"alias.example.jp", dns.TypeCNAME, dns.RcodeSuccess, 1, false},
		{"broken.example", dns.TypeMX, dns.RcodeServerFailure, 0, false},
		{"gone.example", dns.TypeMX, dns.RcodeNameError, 0, false},
		{"unknown.example", dns.TypeMX, dns.RcodeNameError, 0, true},
		{"jp", dns.TypeMX, dns.RcodeSuccess, 0, true}, // empty non-terminal
		{"empty.example", dns.TypeA, dns.RcodeSuccess, 0, true},
	}
	for _, tt := range tests {
		in := ask(t, s, "udp", tt.name, tt.qtype, false)
		if in.Rcode != tt.rcode || len(in.Answer) != tt.answers || (len(in.Ns) > 0) != tt.soa {
			t.Errorf("%s %s: rcode %s, %d answers, %d authority; want %s, %d, soa %v",
				tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[in.Rcode], len(in.Answer), len(in.Ns),
				dns.RcodeToString[tt.rcode], tt.answers, tt.soa)
		}
	}
	if got := s.Count("example.jp", dns.TypeMX); got != 2 {
		t.Errorf("Count(example.jp, MX) = %d, want 2", got)
	}
}

func TestTruncation(t *testing.T) {
	s := New(t)
	s.MX("forced.example", 10, "mx.forced.example")
	s.Truncate("forced.example")
	for i := range 60 {
		s.MX("big.example", uint16(i), fmt.Sprintf("a-rather-long-mail-exchanger-name-%02d.big.example", i))
	}
	for _, name := range []string{"forced.example", "big.example"} {
		udp := ask(t, s, "udp", name, dns.TypeMX, true)
		if !udp.Truncated {
			t.Errorf("%s over UDP: not truncated (%d answers)", name, len(udp.Answer))
		}
		tcp := ask(t, s, "tcp", name, dns.TypeMX, true)
		if tcp.Truncated || len(tcp.Answer) == 0 {
			t.Errorf("%s over TCP: truncated %v, %d answers", name, tcp.Truncated, len(tcp.Answer))
		}
	}
	if got := s.Queries(); len(got) != 4 || got[0].Net != "udp" || got[1].Net != "tcp" {
		t.Errorf("queries = %+v", got)
	}
}

func TestCNAMEWithoutChasing(t *testing.T) {
	s := New(t)
	s.CNAME("alias.example", "real.example")
	s.A("real.example", "192.0.2.7")
	s.SetCNAMEChasing(false)
	in := ask(t, s, "udp", "alias.example", dns.TypeA, false)
	if len(in.Answer) != 1 || len(in.Ns) != 0 {
		t.Errorf("answer %v, authority %v; want the CNAME alone", in.Answer, in.Ns)
	}
}

func TestDrop(t *testing.T) {
	s := New(t)
	s.Drop("slow.example")
	m := new(dns.Msg)
	m.SetQuestion("slow.example.", dns.TypeA)
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	if _, _, err := c.Exchange(m, s.Addr); err == nil {
		t.Fatal("a dropped name got an answer")
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := Start("0.0.0.0:0"); err == nil {
		t.Fatal("Start on 0.0.0.0 succeeded")
	}
}
