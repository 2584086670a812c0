package dnsclient

import (
	"container/list"
	"sync"
	"time"

	"github.com/miekg/dns"
)

type cacheKey struct {
	name  string // FQDN, lower case
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg
	expires time.Time
}

// cache keeps answers until they expire, at most max of them, dropping
// the least recently used when full: a busy gateway's hot names (its own
// domains, the big mail providers, the block lists) stay, while one-off
// names go first. Entries are read-only once stored.
type cache struct {
	mu  sync.Mutex
	max int
	lru *list.List // of *cacheEntry, most recently used first
	m   map[cacheKey]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, lru: list.New(), m: map[cacheKey]*list.Element{}}
}

func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	if c.max == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.m, k)
		return nil
	}
	c.lru.MoveToFront(el)
	return e.msg
}

func (c *cache) put(k cacheKey, msg *dns.Msg, expires time.Time) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		el.Value = &cacheEntry{k, msg, expires}
		c.lru.MoveToFront(el)
		return
	}
	c.m[k] = c.lru.PushFront(&cacheEntry{k, msg, expires})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.m, oldest.Value.(*cacheEntry).key)
	}
}

// len is the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
