// Package dnstest is an in-process DNS server on loopback for tests: zones are set from Go, answered over UDP and TCP on one port.
//
// It behaves like a recursive resolver for the names it holds: a name with
// records of another type answers NODATA, a name it has never heard of
// (and that is no parent of a known name) answers NXDOMAIN, negative
// answers carry an SOA with the negative TTL, CNAMEs are followed, and UDP
// answers larger than the client's buffer come back truncated so the
// client must retry over TCP.
package dnstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Query is one question the server received.
type Query struct {
	Name string // FQDN, lower case
	Type uint16
	Net  string // "udp" or "tcp"
}

// Server is a running fake DNS server.
type Server struct {
	// Addr is "ip:port", the same for UDP and TCP.
	Addr string

	udp, tcp *dns.Server

	mu          sync.Mutex
	records     map[string][]dns.RR // by owner, lower-case FQDN
	rcodes      map[string]int      // forced response codes
	typeRcodes  map[typeKey]int     // forced response codes for one type
	truncate    map[string]bool     // UDP answers come back truncated and empty
	drop        map[string]bool     // never answered
	exists      map[string]bool     // names that exist with no records
	chase       bool
	ttl         uint32
	negativeTTL uint32
	queries     []Query
}

// New starts a server on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Start starts a server on addr ("127.0.0.1:0", "[::1]:0"); port 0 picks a
// port free for both UDP and TCP.
func Start(addr string) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	s := &Server{
		records:     map[string][]dns.RR{},
		rcodes:      map[string]int{},
		typeRcodes:  map[typeKey]int{},
		truncate:    map[string]bool{},
		drop:        map[string]bool{},
		exists:      map[string]bool{},
		chase:       true,
		ttl:         300,
		negativeTTL: 60,
	}
	// Bind UDP first, then TCP on the same port; retry when the port the
	// kernel chose for UDP is taken for TCP.
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, err
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil || port != "0" {
			break
		}
		pc.Close()
	}
	if err != nil {
		pc.Close()
		return nil, err
	}
	s.Addr = pc.LocalAddr().String()
	s.udp = &dns.Server{PacketConn: pc, Handler: s.handler("udp")}
	s.tcp = &dns.Server{Listener: l, Handler: s.handler("tcp")}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			s.Close()
			return nil, errors.New("server did not start")
		}
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// Add adds records written as zone file lines ("example.jp. 60 IN MX 10
// mx.example.jp."). It panics on a line that does not parse: zones are
// test code.
func (s *Server) Add(lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range lines {
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			panic(fmt.Sprintf("dnstest: bad record %q: %v", line, err))
		}
		name := fqdn(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
}

// SetTTL sets the TTL of records added by the helpers from now on.
func (s *Server) SetTTL(seconds uint32) {
	s.mu.Lock()
	s.ttl = seconds
	s.mu.Unlock()
}

// SetNegativeTTL sets the SOA minimum sent with NXDOMAIN and NODATA.
func (s *Server) SetNegativeTTL(seconds uint32) {
	s.mu.Lock()
	s.negativeTTL = seconds
	s.mu.Unlock()
}

// SetCNAMEChasing turns off (or on) including the CNAME target's records
// in answers, to mimic a server that does not follow aliases.
func (s *Server) SetCNAMEChasing(on bool) {
	s.mu.Lock()
	s.chase = on
	s.mu.Unlock()
}

func (s *Server) currentTTL() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttl
}

// MX adds an MX record for domain.
func (s *Server) MX(domain string, pref uint16, host string) {
	s.Add(fmt.Sprintf("%s %d IN MX %d %s", fqdn(domain), s.currentTTL(), pref, fqdn(host)))
}

// NullMX publishes RFC 7505's "MX 0 ." for domain.
func (s *Server) NullMX(domain string) {
	s.Add(fmt.Sprintf("%s %d IN MX 0 .", fqdn(domain), s.currentTTL()))
}

// A adds A records.
func (s *Server) A(name string, ips ...string) {
	for _, ip := range ips {
		s.Add(fmt.Sprintf("%s %d IN A %s", fqdn(name), s.currentTTL(), ip))
	}
}

// AAAA adds AAAA records.
func (s *Server) AAAA(name string, ips ...string) {
	for _, ip := range ips {
		s.Add(fmt.Sprintf("%s %d IN AAAA %s", fqdn(name), s.currentTTL(), ip))
	}
}

// CNAME makes name an alias of target.
func (s *Server) CNAME(name, target string) {
	s.Add(fmt.Sprintf("%s %d IN CNAME %s", fqdn(name), s.currentTTL(), fqdn(target)))
}

// Exists makes name exist without records (every question answers NODATA).
func (s *Server) Exists(name string) { s.set(s.exists, name, true) }

// NXDomain makes every question for name answer NXDOMAIN, whatever records
// it has.
func (s *Server) NXDomain(name string) { s.Rcode(name, dns.RcodeNameError) }

// ServFail makes every question for name answer SERVFAIL.
func (s *Server) ServFail(name string) { s.Rcode(name, dns.RcodeServerFailure) }

// Rcode forces the response code for name.
func (s *Server) Rcode(name string, rcode int) {
	s.mu.Lock()
	s.rcodes[fqdn(name)] = rcode
	s.mu.Unlock()
}

// RcodeType forces the response code for questions of one type about
// name (a server that fails AAAA questions, say).
func (s *Server) RcodeType(name string, qtype uint16, rcode int) {
	s.mu.Lock()
	s.typeRcodes[typeKey{fqdn(name), qtype}] = rcode
	s.mu.Unlock()
}

type typeKey struct {
	name  string
	qtype uint16
}

// Truncate makes UDP answers for name come back empty with the TC bit set,
// so the client must ask again over TCP.
func (s *Server) Truncate(name string) { s.set(s.truncate, name, true) }

// Drop makes the server never answer questions for name (timeouts).
func (s *Server) Drop(name string) { s.set(s.drop, name, true) }

// Remove forgets everything about name: records, forced codes, flags.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := fqdn(name)
	delete(s.records, n)
	delete(s.rcodes, n)
	for k := range s.typeRcodes {
		if k.name == n {
			delete(s.typeRcodes, k)
		}
	}
	delete(s.truncate, n)
	delete(s.drop, n)
	delete(s.exists, n)
}

func (s *Server) set(m map[string]bool, name string, v bool) {
	s.mu.Lock()
	m[fqdn(name)] = v
	s.mu.Unlock()
}

// Queries returns the questions received so far, in order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Count returns how many questions for name and qtype were received, over
// any transport.
func (s *Server) Count(name string, qtype uint16) int {
	n := 0
	for _, q := range s.Queries() {
		if q.Name == fqdn(name) && q.Type == qtype {
			n++
		}
	}
	return n
}

// ResetQueries forgets the questions received so far.
func (s *Server) ResetQueries() {
	s.mu.Lock()
	s.queries = nil
	s.mu.Unlock()
}
