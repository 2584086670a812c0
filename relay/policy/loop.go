package policy

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// TraceBy is the "by" clause of the Received field we write (RFC 5321
// §4.4): relay/session writes it, Data looks for it to know a message has
// been through this gateway before.
func TraceBy(hostname string) string { return "by " + hostname + " (sekisho)" }

// relayedBefore reports whether the header holds a Received field of
// ours: the message has passed through this gateway before.
func relayedBefore(header []byte, hostname string) bool {
	if hostname == "" {
		return false
	}
	want := []byte(strings.ToLower(TraceBy(hostname)))
	var field []byte // the Received field being read, unfolded
	in := false
	check := func() bool {
		return in && bytes.Contains(bytes.ToLower(field), want)
	}
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i+1], header[i+1:]
		} else {
			header = nil
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if in {
				field = append(append(field, ' '), bytes.TrimLeft(line, " \t")...)
			}
			continue
		}
		if check() {
			return true
		}
		in = len(line) >= 9 && bytes.EqualFold(line[:9], []byte("received:"))
		field = append(field[:0], line...)
	}
	return check()
}

// loop finds the ping-pong of the seeds: a message for a domain that is
// not ours, which we relayed before (our Received field is in it) and
// which comes back from the very host its route would send it to again
// (the inner server, when a route or the smart host for foreign domains
// points at it). Refused on its first return, it never makes the ten
// round trips the hop count would allow. Mail for our own domains is left
// alone: an inner server may send a list's copies back through us.
// Data calls it only for a message relayedBefore says has passed here.
func (p *Policy) loop(c Conn, rcpt string, from string) (string, bool) {
	_, domain, err := addr.Parse(rcpt)
	if err != nil || p.p.Dir.IsOurDomain(domain) {
		return "", false
	}
	rd, err := p.Route(rcpt, from)
	if err != nil || rd == nil {
		return "", false
	}
	client := c.IP.Unmap()
	for _, h := range rd.Hops {
		for _, a := range h.Addrs {
			if a.Unmap() == client && client != (netip.Addr{}) {
				return fmt.Sprintf("we relayed this message before (our Received field is in it) and %s, which sent it back, is where %s would take %s again (a loop)",
					h.String(), rd.Label(), rcpt), true
			}
		}
	}
	return "", false
}
