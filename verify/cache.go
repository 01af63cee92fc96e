package verify

import (
	"container/list"
	"sync"
	"time"
)

// lru is a size-bounded cache whose entries also expire at a fixed time.
// It is safe for concurrent use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	items map[K]*list.Element
	order list.List // front is most recently used
}

type lruItem[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	item := el.Value.(*lruItem[K, V])
	if !now.Before(item.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return item.value, true
}

func (c *lru[K, V]) put(key K, value V, expires time.Time) {
	if c.max <= 0 {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	if el, ok := c.items[key]; ok {
		el.Value = &lruItem[K, V]{key: key, value: value, expires: expires}
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[K, V]{key: key, value: value, expires: expires})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem[K, V]).key)
	}
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
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
