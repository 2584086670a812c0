// Package ratelimit owns the gateway's rate limits, what Postfix's anvil
// gives: connections, messages and recipients per minute for each client
// address, messages and recipients per minute and concurrent sessions for
// each authenticated user, and the relay.rate_limits section.
//
// It counts; it does not decide. relay/policy asks it at every stage
// (the live session and every dry run alike) and says what the client is
// told; relay/gateway counts connections where it accepts them. A count
// is a token bucket (golang.org/x/time/rate) holding a minute's worth and
// refilling continuously, so a burst up to the limit passes and a steady
// flow over it is slowed to it.
//
// Memory is bounded: a bucket that has filled up again is the same as
// none and is forgotten; at most maxKeys are kept, and a client beyond
// that is not counted until room is made (the limits fail open rather
// than grow without bound).
package ratelimit

import (
	"net/netip"
	"sync"
	"time"

	"github.com/sekisho/sekisho/relay/guard"
	"golang.org/x/time/rate"
)

// Counter names what is counted.
type Counter string

// The counters.
const (
	Connections Counter = "connections"
	Messages    Counter = "messages"
	Recipients  Counter = "recipients"
	Sessions    Counter = "sessions"
)

// Scope is whom a limit applies to.
type Scope string

// The scopes.
const (
	Client Scope = "client"
	User   Scope = "user"
)

// maxKeys bounds the buckets kept.
const maxKeys = 50000

// sweepEvery is how often buckets that filled up again are forgotten.
const sweepEvery = time.Minute

type bucketKey struct {
	scope   Scope
	counter Counter
	name    string
}

// Limiter holds the counts of one gateway for the life of the process; a
// reload gives it a new Config and the counts go on.
type Limiter struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	cfg       Config
	exempt    []netip.Prefix
	buckets   map[bucketKey]*rate.Limiter
	sessions  map[string]int // authenticated user → sessions holding a slot
	lastSweep time.Time
}

// New returns a limiter for a validated cfg; now nil means time.Now.
func New(cfg Config, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, maxKeys: maxKeys, buckets: map[bucketKey]*rate.Limiter{}, sessions: map[string]int{}}
	l.SetConfig(cfg)
	return l
}

// SetConfig applies a reloaded configuration; the counts so far stay,
// and each bucket takes the new limit at its next event.
func (l *Limiter) SetConfig(cfg Config) {
	var exempt []netip.Prefix
	for _, s := range cfg.Exempt {
		if p, err := guard.ParseNetwork(s); err == nil {
			exempt = append(exempt, p)
		}
	}
	l.mu.Lock()
	l.cfg, l.exempt = cfg, exempt
	l.mu.Unlock()
}

// Config is the configuration in force.
func (l *Limiter) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Exempt reports whether ip is in relay.rate_limits.exempt.
func (l *Limiter) Exempt(ip netip.Addr) bool {
	ip = ip.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Limit is the configured limit of counter in scope; 0 is none.
func (c Config) Limit(scope Scope, counter Counter) int {
	switch {
	case scope == Client && counter == Connections:
		return c.Client.ConnectionsPerMinute
	case scope == Client && counter == Messages:
		return c.Client.MessagesPerMinute
	case scope == Client && counter == Recipients:
		return c.Client.RecipientsPerMinute
	case scope == User && counter == Messages:
		return c.User.MessagesPerMinute
	case scope == User && counter == Recipients:
		return c.User.RecipientsPerMinute
	case scope == User && counter == Sessions:
		return c.User.Sessions
	}
	return 0
}

// ClientKey is what a client address is counted under: the address, or
// for IPv6 its /64, which one host usually has to itself.
func ClientKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Take counts one event of counter for name in scope and reports whether
// it is within the limit, with the limit (0: none). A refused event is
// not counted, so a client that keeps trying is let in again as soon as
// its minute allows.
func (l *Limiter) Take(scope Scope, name string, counter Counter) (limit int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	limit = l.cfg.Limit(scope, counter)
	if limit <= 0 || counter == Sessions {
		return limit, true
	}
	k := bucketKey{scope, counter, name}
	b := l.buckets[k]
	if b == nil {
		l.sweep(now)
		if len(l.buckets) >= l.maxKeys {
			return limit, true
		}
		b = rate.NewLimiter(perMinute(limit), limit)
		l.buckets[k] = b
	} else if b.Burst() != limit {
		b.SetLimitAt(now, perMinute(limit))
		b.SetBurstAt(now, limit)
	}
	return limit, b.AllowN(now, 1)
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

// sweep forgets the buckets that are full again: once a sweepEvery, and
// once a second while the map is full. A full map holds a spread of
// clients too wide to count (new ones pass uncounted, see take); sweeping
// it on every new client would scan the whole map under l.mu at each
// connection, just when the attack comes. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	since := now.Sub(l.lastSweep)
	if since < time.Second || len(l.buckets) < l.maxKeys && since < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
}

// Session is one SMTP session's part in the limits: the user slot it
// holds once its user has sent, given back when it ends.
type Session struct {
	l *Limiter

	mu   sync.Mutex
	user string // the user whose slot this session holds; "" none
}

// Session returns a handle for one SMTP session.
func (l *Limiter) Session() *Session { return &Session{l: l} }

// Take counts one event, as Limiter.Take.
func (s *Session) Take(scope Scope, name string, counter Counter) (limit int, ok bool) {
	return s.l.Take(scope, name, counter)
}

// Limiter is the limiter the session counts in.
func (s *Session) Limiter() *Limiter { return s.l }

// Hold takes one of user's session slots for this session, unless it
// holds one already; false when the user has as many sessions sending as
// user.sessions allows. The slot is kept until Release.
func (s *Session) Hold(user string) (limit int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	limit = l.cfg.User.Sessions
	if s.user == user {
		return limit, true
	}
	if s.user != "" {
		l.releaseLocked(s.user)
		s.user = ""
	}
	if limit > 0 && l.sessions[user] >= limit {
		return limit, false
	}
	l.sessions[user]++
	s.user = user
	return limit, true
}

// Release gives back the slot the session holds, if any.
func (s *Session) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user == "" {
		return
	}
	s.l.mu.Lock()
	s.l.releaseLocked(s.user)
	s.l.mu.Unlock()
	s.user = ""
}

func (l *Limiter) releaseLocked(user string) {
	if l.sessions[user]--; l.sessions[user] <= 0 {
		delete(l.sessions, user)
	}
}

// Holding is how many sessions of user hold a slot now.
func (l *Limiter) Holding(user string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions[user]
}
