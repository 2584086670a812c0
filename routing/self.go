package routing

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
)

// Self is this gateway as other hosts see it: its host names and the
// addresses it listens on. An unspecified listen address (0.0.0.0:25,
// [::]:25) stands for every local interface address on that port.
type Self struct {
	Hostnames []string
	Addrs     []netip.AddrPort
}

// localAddrs lists the addresses of the local interfaces; a variable so
// that tests do not depend on the machine.
var localAddrs = func() ([]netip.Addr, error) {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range ifas {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// selfSet answers "is this next hop us?".
type selfSet struct {
	names map[string]bool
	addrs map[netip.AddrPort]bool
	ports map[int]bool
	// listen describes the listen addresses for messages.
	listen string
}

// newSelfSet merges what the relay passes with the configured extras and
// expands unspecified listen addresses to the local interface addresses.
func newSelfSet(s Self, extra SelfConfig) (selfSet, error) {
	set := selfSet{names: map[string]bool{}, addrs: map[netip.AddrPort]bool{}, ports: map[int]bool{}}
	names := append(append([]string(nil), s.Hostnames...), extra.Hostnames...)
	for _, n := range names {
		d, err := addr.Domain(n)
		if err != nil {
			return selfSet{}, fmt.Errorf("hostname %q: %v", n, err)
		}
		set.names[d] = true
	}
	listen := append([]netip.AddrPort(nil), s.Addrs...)
	for _, a := range extra.Addrs {
		ap, err := parseSelfAddr(a)
		if err != nil {
			return selfSet{}, err
		}
		listen = append(listen, ap)
	}
	var locals []netip.Addr
	var descr []string
	for _, ap := range listen {
		descr = append(descr, ap.String())
		set.ports[int(ap.Port())] = true
		ip := ap.Addr().Unmap()
		if !ip.IsUnspecified() {
			set.addrs[netip.AddrPortFrom(ip, ap.Port())] = true
			continue
		}
		if locals == nil {
			var err error
			if locals, err = localAddrs(); err != nil {
				return selfSet{}, fmt.Errorf("listing local addresses for %s: %v", ap, err)
			}
		}
		for _, l := range locals {
			set.addrs[netip.AddrPortFrom(l, ap.Port())] = true
		}
	}
	set.listen = strings.Join(descr, ", ")
	return set, nil
}

// isName reports whether host (canonical) on port is us. Without known
// listen addresses a host name of ours is us on any port; with them, only
// on a port we listen on, so that an inner server on the same machine at
// another port (the seeds' 20025) is not mistaken for us.
func (s selfSet) isName(host string, port int) bool {
	if !s.names[host] {
		return false
	}
	return len(s.ports) == 0 || s.ports[port]
}

// isAddr reports whether ip:port is one of our listen addresses.
func (s selfSet) isAddr(ip netip.Addr, port int) bool {
	return s.addrs[netip.AddrPortFrom(ip.Unmap(), uint16(port))]
}

// which explains why a hop is us, completing "HOST:PORT is this gateway
// (...)", or returns "" when it is not.
func (s selfSet) which(host string, port int, addrs []netip.Addr) string {
	if s.isName(host, port) {
		return "one of its host names"
	}
	for _, a := range addrs {
		if !s.isAddr(a, port) {
			continue
		}
		if a.String() == host {
			return "it listens on " + s.listen
		}
		return fmt.Sprintf("%s has address %s, and it listens on %s", host, a, s.listen)
	}
	return ""
}
