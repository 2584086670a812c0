package msgauth

import (
	"context"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the DNS the checks use; *net.Resolver satisfies it, and so
// does blitiri.com.ar/go/spf's DNSResolver.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// exchangeTimeout bounds one DNS exchange; Config.Timeout bounds all of a
// message's or a connection's lookups.
const exchangeTimeout = 5 * time.Second

// NewResolver returns a caching resolver that asks servers ("ip" or
// "ip:port") in turn, or the nameservers of /etc/resolv.conf when servers
// is empty (Go's own resolver if that file lists none). Tests point it at
// routing/dnstest.
func NewResolver(servers []string) (Resolver, error) {
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return net.DefaultResolver, nil
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
	}
	return NewCachingResolver(servers, exchangeTimeout)
}
