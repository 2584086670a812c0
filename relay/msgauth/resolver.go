package msgauth

import (
	"context"
	"net"
	"sync/atomic"
)

// Resolver is the DNS the checks use; *net.Resolver satisfies it, and so
// does blitiri.com.ar/go/spf's DNSResolver.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// NewResolver returns a resolver that asks servers ("ip" or "ip:port"),
// in turn, or the system resolver when servers is empty. Tests point it at
// routing/dnstest.
func NewResolver(servers []string) (Resolver, error) {
	if len(servers) == 0 {
		return net.DefaultResolver, nil
	}
	var addrs []string
	for _, s := range servers {
		a, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	var next atomic.Uint32
	d := net.Dialer{}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			a := addrs[int(next.Add(1))%len(addrs)]
			return d.DialContext(ctx, network, a)
		},
	}, nil
}
