package smtpd

import (
	"net"
	"net/netip"
)

// Tracer shows the protocol of live sessions (sekisho trace). Inbound is
// called once per connection; the function it returns wraps the plain
// connection and, after STARTTLS, the TLS one, so the trace sees text.
// id names the session as the logs do; it is asked once the handler
// exists. The wrapper must cost next to nothing while nobody watches.
type Tracer interface {
	Inbound(remote netip.AddrPort, id func() string) func(net.Conn) net.Conn
}

// sessionIDer is a Handler that names its session for the trace.
type sessionIDer interface{ SessionID() string }

func (c *Conn) traceID() string {
	if h, ok := c.h.(sessionIDer); ok {
		return h.SessionID()
	}
	return "-"
}

// traced wraps nc for the trace, if there is one.
func (c *Conn) traced(nc net.Conn) net.Conn {
	if c.wrap == nil {
		return nc
	}
	return c.wrap(nc)
}
