package registry

import (
	"container/list"
	"sync"
	"time"
)

// lru is a cache bounded by the total size of its values, evicting the least
// recently used. Items may expire. A nil *lru caches nothing.
type lru struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type lruItem struct {
	key     string
	value   any
	size    int64
	expires time.Time // zero: never
}

func newLRU(maxBytes int64) *lru {
	return &lru{max: maxBytes, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the value under key, if present and not expired.
func (c *lru) get(key string) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	it := e.Value.(*lruItem)
	if !it.expires.IsZero() && time.Now().After(it.expires) {
		c.remove(e)
		return nil, false
	}
	c.order.MoveToFront(e)
	return it.value, true
}

// add stores value under key for ttl (0: until evicted). Values bigger than
// an eighth of the cache are not kept, so that one cannot flush the rest.
func (c *lru) add(key string, value any, size int64, ttl time.Duration) {
	if c == nil || size > c.max/8 {
		return
	}
	it := &lruItem{key: key, value: value, size: size}
	if ttl > 0 {
		it.expires = time.Now().Add(ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.remove(e)
	}
	c.items[key] = c.order.PushFront(it)
	c.used += size
	for c.used > c.max {
		c.remove(c.order.Back())
	}
}

func (c *lru) remove(e *list.Element) {
	it := e.Value.(*lruItem)
	c.order.Remove(e)
	delete(c.items, it.key)
	c.used -= it.size
}
