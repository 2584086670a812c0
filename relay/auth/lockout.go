package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// maxTracked bounds each failure table (client networks, user names). When
// a table is full the least recently failing entry is forgotten, so memory
// stays bounded under a distributed attack; an attacker would need that
// many fresh networks to flush one lock.
const maxTracked = 10000

// failureTable counts authentication failures per key in a fixed window
// that starts at the first failure, and locks the key for a while once the
// count reaches the limit. Least recently failed entries are evicted first.
type failureTable struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	order   *list.List // front: most recent failure
}

type failureEntry struct {
	key         string
	count       int
	windowStart time.Time
	lockedUntil time.Time
}

func newFailureTable(max int) *failureTable {
	return &failureTable{max: max, entries: map[string]*list.Element{}, order: list.New()}
}

// locked reports whether key is locked at now.
func (t *failureTable) locked(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.entries[key]
	if !ok {
		return false
	}
	return now.Before(el.Value.(*failureEntry).lockedUntil)
}

// fail records one failure and reports whether it locked the key.
func (t *failureTable) fail(key string, now time.Time, limit int, window, lockout time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.entries[key]
	if !ok {
		if t.order.Len() >= t.max {
			oldest := t.order.Back()
			t.order.Remove(oldest)
			delete(t.entries, oldest.Value.(*failureEntry).key)
		}
		el = t.order.PushFront(&failureEntry{key: key, windowStart: now})
		t.entries[key] = el
	}
	t.order.MoveToFront(el)
	e := el.Value.(*failureEntry)
	if now.Before(e.lockedUntil) {
		return false // already locked; the lock is not extended
	}
	if !e.lockedUntil.IsZero() || now.Sub(e.windowStart) > window {
		*e = failureEntry{key: key, windowStart: now}
	}
	e.count++
	if e.count >= limit {
		e.lockedUntil = now.Add(lockout)
		return true
	}
	return false
}

// reset forgets key (after a successful login).
func (t *failureTable) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		t.order.Remove(el)
		delete(t.entries, key)
	}
}

func (t *failureTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// clientKey groups IPv6 clients by /64: one host usually owns the whole
// block and could otherwise rotate addresses past the lockout.
func clientKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
