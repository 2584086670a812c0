// Package trace owns the live protocol trace: the hub that sessions report
// their wire to while someone is attached, the line reader that redacts AUTH
// secrets and leaves bodies out, and the local unix socket `sekisho trace`
// attaches to. With nobody attached a line costs one atomic load.
package trace

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Side is the side of the gateway a session belongs to.
type Side uint8

const (
	// Inbound is a client's session with our SMTP server.
	Inbound Side = iota + 1
	// Outbound is our delivery client's session with a next hop.
	Outbound
)

func (s Side) String() string {
	if s == Outbound {
		return "out"
	}
	return "in"
}

// Filter selects the sessions a subscriber sees. A zero Filter sees every
// session on both sides. Client selects inbound sessions from that network,
// NextHop outbound sessions to that host (its name or address); when only
// one of them is set, the other side is not shown.
type Filter struct {
	Client  netip.Prefix `json:"client,omitzero"`
	NextHop string       `json:"next_hop,omitempty"`
	Bodies  bool         `json:"bodies,omitempty"`
}

// match reports whether the filter selects a session.
func (f Filter) match(side Side, peer netip.Addr, host string) bool {
	hasClient, hasHop := f.Client.IsValid(), f.NextHop != ""
	switch side {
	case Inbound:
		if hasClient {
			return f.Client.Contains(peer)
		}
		return !hasHop
	case Outbound:
		if hasHop {
			return strings.EqualFold(strings.TrimSuffix(f.NextHop, "."), strings.TrimSuffix(host, ".")) ||
				(peer.IsValid() && f.NextHop == peer.String())
		}
		return !hasClient
	}
	return false
}

// queueLen bounds the lines waiting for one subscriber: a slow reader
// loses lines (counted) rather than slowing a session.
const queueLen = 4096

// Subscriber is one attached trace reader.
type Subscriber struct {
	hub     *Hub
	filter  Filter
	lines   chan string
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// Lines delivers the formatted lines, each ending in a newline.
func (s *Subscriber) Lines() <-chan string { return s.lines }

// Dropped returns and resets the count of lines lost since the last call.
func (s *Subscriber) Dropped() int64 { return s.dropped.Swap(0) }

// Done is closed when the subscriber is closed.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Close detaches the subscriber.
func (s *Subscriber) Close() {
	s.once.Do(func() {
		s.hub.remove(s)
		close(s.done)
	})
}

// Hub fans the traced lines out to the attached subscribers.
type Hub struct {
	// active is the number of subscribers: the one load per line.
	active atomic.Int32
	// gen changes with every subscribe and unsubscribe, so a session
	// re-checks its filters only when the set changed.
	gen atomic.Uint64
	// epoch changes when the first subscriber attaches: a session's
	// state was not kept while nobody watched.
	epoch atomic.Uint64
	mu    sync.RWMutex
	subs  []*Subscriber
	ids   atomic.Uint64
	now   func() time.Time
}

// NewHub returns a hub with nobody attached.
func NewHub() *Hub { return &Hub{now: time.Now} }

// Active reports whether anyone is attached.
func (h *Hub) Active() bool { return h != nil && h.active.Load() > 0 }

// Subscribe attaches a reader with a filter.
func (h *Hub) Subscribe(f Filter) *Subscriber {
	s := &Subscriber{hub: h, filter: f, lines: make(chan string, queueLen), done: make(chan struct{})}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.gen.Add(1)
	if h.active.Add(1) == 1 {
		h.epoch.Add(1)
	}
	h.mu.Unlock()
	return s
}

func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			h.subs = append(h.subs[:i:i], h.subs[i+1:]...)
			h.gen.Add(1)
			h.active.Add(-1)
			return
		}
	}
}

// watchers returns the subscribers whose filter selects a session, and the
// generation they were chosen in.
func (h *Hub) watchers(side Side, peer netip.Addr, host string) ([]*Subscriber, uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*Subscriber
	for _, s := range h.subs {
		if s.filter.match(side, peer, host) {
			out = append(out, s)
		}
	}
	return out, h.gen.Load()
}

// send queues a line for a subscriber without ever waiting.
func (s *Subscriber) send(line string) {
	select {
	case s.lines <- line:
	default:
		s.dropped.Add(1)
	}
}

// Direction of a traced line, as E-Post's debug trace names them.
const (
	recv = "RECV <- ["
	sent = "SEND -> ["
	note = "---- "
)

// format builds one trace line:
//
//	15:04:05.000 in  S1b2c3d4 192.0.2.7:50123 RECV <- [EHLO client.example
func format(at time.Time, side Side, id, peer, dir, text string) string {
	var b strings.Builder
	b.Grow(48 + len(id) + len(peer) + len(text))
	b.WriteString(at.Format("15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(side.String())
	if side == Inbound {
		b.WriteByte(' ')
	}
	b.WriteByte(' ')
	b.WriteString(id)
	b.WriteByte(' ')
	b.WriteString(peer)
	b.WriteByte(' ')
	b.WriteString(dir)
	b.WriteString(text)
	b.WriteByte('\n')
	return b.String()
}

// newID names an outbound session (inbound ones carry the session ID of
// the logs).
func (h *Hub) newID() string { return "D" + strconv.FormatUint(h.ids.Add(1), 10) }
