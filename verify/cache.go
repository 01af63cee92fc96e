package verify

import (
	"sync"
	"sync/atomic"
	"time"
)

// lru is a size-bounded cache whose entries also expire at a fixed time.
// It is safe for concurrent use. Reads take a shared lock and only mark the
// entry as used. Eviction follows the CLOCK algorithm (second chance), so
// the hot read path never reorders a list under an exclusive lock.
type lru[K comparable, V any] struct {
	mu    sync.RWMutex
	max   int
	items map[K]*lruItem[K, V]
	ring  []*lruItem[K, V] // eviction order; hand is the next to consider
	hand  int
}

type lruItem[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
	used    atomic.Bool
	slot    int
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*lruItem[K, V])}
}

func (c *lru[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.RLock()
	item, ok := c.items[key]
	c.mu.RUnlock()

	var zero V
	if !ok || !now.Before(item.expires) {
		return zero, false
	}
	if !item.used.Load() {
		item.used.Store(true)
	}
	return item.value, true
}

func (c *lru[K, V]) put(key K, value V, expires time.Time) {
	if c.max <= 0 {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	item := &lruItem[K, V]{key: key, value: value, expires: expires}
	if old, ok := c.items[key]; ok {
		item.slot = old.slot
		c.ring[old.slot] = item
		c.items[key] = item
		return
	}
	if len(c.ring) < c.max {
		item.slot = len(c.ring)
		c.ring = append(c.ring, item)
		c.items[key] = item
		return
	}

	// Evict the first entry at or after the hand that was not used since
	// the hand last passed it.
	for {
		victim := c.ring[c.hand]
		if victim.used.Load() {
			victim.used.Store(false)
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		delete(c.items, victim.key)
		item.slot = c.hand
		c.ring[c.hand] = item
		c.items[key] = item
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}

func (c *lru[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// flights lets concurrent verifications of one record wait for the first,
// so each record is checked once however many lookups ask at the same time.
type flights struct {
	mu      sync.Mutex
	pending map[string]chan struct{}
}

// join returns a channel to wait on when another goroutine is verifying key,
// or nil when the caller is now the one verifying it and must call done.
func (f *flights) join(key string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()

	if ch, ok := f.pending[key]; ok {
		return ch
	}
	if f.pending == nil {
		f.pending = make(map[string]chan struct{})
	}
	f.pending[key] = make(chan struct{})
	return nil
}

func (f *flights) done(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()

	close(f.pending[key])
	delete(f.pending, key)
}
