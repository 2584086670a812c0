package delivery

import "net"

// Tracer shows the wire of live sessions with next hops (sekisho trace).
// Outbound is called once per connection with the next hop's name and the
// "ip:port" dialed; the function it returns wraps the plain connection and,
// after STARTTLS, the TLS one, so the trace sees text, never TLS records.
// The wrapper must cost next to nothing while nobody watches.
type Tracer interface {
	Outbound(host, addr string) func(net.Conn) net.Conn
}

// tracer returns the wrapper for one connection: the identity without a
// Tracer.
func (c *Client) tracer(host, addr string) func(net.Conn) net.Conn {
	if c.opts.Trace == nil {
		return func(nc net.Conn) net.Conn { return nc }
	}
	return c.opts.Trace.Outbound(host, addr)
}
