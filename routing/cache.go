package routing

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCacheTTL caps how long any answer is kept, whatever its TTL says.
const maxCacheTTL = 24 * time.Hour

type cacheKey struct {
	name  string // FQDN, lower case
	qtype uint16
}

type cacheEntry struct {
	msg     *dns.Msg
	expires time.Time
}

// answerCache keeps NOERROR and NXDOMAIN answers for their TTL. Entries
// are read-only once stored.
type answerCache struct {
	mu  sync.Mutex
	max int
	m   map[cacheKey]cacheEntry
}

func newAnswerCache(max int) *answerCache {
	return &answerCache{max: max, m: map[cacheKey]cacheEntry{}}
}

func (c *answerCache) get(k cacheKey, now time.Time) *dns.Msg {
	if c.max == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return nil
	}
	return e.msg
}

func (c *answerCache) put(k cacheKey, msg *dns.Msg, now time.Time) {
	ttl := answerTTL(msg)
	if c.max == 0 || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		// Still full: drop arbitrary entries (map order), enough to make
		// room for a tenth of the cache, so that eviction stays rare.
		for key := range c.m {
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = cacheEntry{msg: msg, expires: now.Add(ttl)}
}

// answerTTL is how long an answer may be kept: the smallest TTL of its
// answer records; for negative answers (NXDOMAIN, or no records of the
// type asked), the SOA's negative TTL as RFC 2308 §5 says, and not at all
// without an SOA.
func answerTTL(msg *dns.Msg) time.Duration {
	var ttl uint32
	found := false
	if msg.Rcode == dns.RcodeSuccess && len(msg.Answer) > 0 {
		for _, rr := range msg.Answer {
			if t := rr.Header().Ttl; !found || t < ttl {
				ttl, found = t, true
			}
		}
	} else {
		for _, rr := range msg.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl, found = min(soa.Hdr.Ttl, soa.Minttl), true
				break
			}
		}
	}
	if !found {
		return 0
	}
	return min(time.Duration(ttl)*time.Second, maxCacheTTL)
}
