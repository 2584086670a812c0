package dnstest

import (
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds CNAME chains, so that an alias loop in a test zone ends.
const maxChase = 8

func (s *Server) handler(network string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) != 1 {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeFormatError)
			w.WriteMsg(m)
			return
		}
		q := req.Question[0]
		name := fqdn(q.Name)
		s.mu.Lock()
		s.queries = append(s.queries, Query{Name: name, Type: q.Qtype, Net: network})
		if s.drop[name] {
			s.mu.Unlock()
			return
		}
		m := s.answer(req, name, q.Qtype, network)
		s.mu.Unlock()
		w.WriteMsg(m)
	})
}

// answer builds the reply; s.mu is held.
func (s *Server) answer(req *dns.Msg, name string, qtype uint16, network string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		m.SetEdns0(opt.UDPSize(), false)
	}
	if rc, ok := s.rcodes[name]; ok {
		m.Rcode = rc
		return m
	}
	if rc, ok := s.typeRcodes[typeKey{name, qtype}]; ok {
		m.Rcode = rc
		return m
	}
	if network == "udp" && s.truncate[name] {
		m.Truncated = true
		return m
	}
	target := name
	found := false
	for range maxChase {
		var alias *dns.CNAME
		for _, rr := range s.records[target] {
			switch c := rr.(type) {
			case *dns.CNAME:
				if qtype == dns.TypeCNAME {
					m.Answer = append(m.Answer, rr)
					found = true
				} else {
					alias = c
				}
			default:
				if rr.Header().Rrtype == qtype {
					m.Answer = append(m.Answer, rr)
					found = true
				}
			}
		}
		if found || alias == nil {
			break
		}
		m.Answer = append(m.Answer, alias)
		target = fqdn(alias.Target)
		if !s.chase {
			return m // no SOA: the client must ask for the target itself
		}
		if rc, ok := s.rcodes[target]; ok {
			m.Rcode = rc
			return m
		}
	}
	if !found {
		if !s.nameExists(target) {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR(". 0 IN SOA ns.dnstest. hostmaster.dnstest. 1 3600 600 86400 0")
		soa.Header().Ttl = s.negativeTTL
		soa.(*dns.SOA).Minttl = s.negativeTTL
		m.Ns = append(m.Ns, soa)
	}
	if network == "udp" {
		m.Truncate(size)
	}
	return m
}

// nameExists: the name has records, was declared with Exists, or is a
// parent of a name that does (an empty non-terminal, RFC 8020).
func (s *Server) nameExists(name string) bool {
	if len(s.records[name]) > 0 || s.exists[name] {
		return true
	}
	for n := range s.records {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	for n := range s.exists {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}
