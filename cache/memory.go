package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Defaults of MemoryOptions.
const (
	DefaultMaxEntries = 10000
	DefaultMaxBytes   = 64 << 20
)

// MemoryOptions bound a Memory cache. The zero value takes the defaults.
type MemoryOptions struct {
	// MaxEntries bounds the number of entries; the least recently used go
	// first. Optional; default DefaultMaxEntries.
	MaxEntries int
	// MaxBytes bounds the sum of the keys' and values' sizes; a value
	// larger than a quarter of it is not stored. Optional; default
	// DefaultMaxBytes.
	MaxBytes int64
	// Now is the clock. Optional; default time.Now (tests set it).
	Now func() time.Time
}

// Memory is an in-process cache bounded in entries and bytes, evicting the
// least recently used entry first; entries expire after their TTL.
type Memory struct {
	maxEntries int
	maxBytes   int64
	now        func() time.Time

	mu    sync.Mutex
	ll    *list.List // front: most recently used
	items map[string]*list.Element
	bytes int64
}

type memEntry struct {
	key     string
	value   []byte
	expires time.Time
}

func (e *memEntry) size() int64 { return int64(len(e.key) + len(e.value)) }

// NewMemory returns an empty Memory cache.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{maxEntries: opts.MaxEntries, maxBytes: opts.MaxBytes, now: opts.Now, ll: list.New(), items: map[string]*list.Element{}}
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool) {
	v, _, ok := m.get(key)
	return v, ok
}

// GetLocal implements Local: a Memory is all in memory.
func (m *Memory) GetLocal(key string) ([]byte, bool) {
	v, _, ok := m.get(key)
	return v, ok
}

// get returns the value and its remaining time to live.
func (m *Memory) get(key string) ([]byte, time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, 0, false
	}
	e := el.Value.(*memEntry)
	left := e.expires.Sub(m.now())
	if left <= 0 {
		m.remove(el)
		return nil, 0, false
	}
	m.ll.MoveToFront(el)
	return e.value, left, true
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	e := &memEntry{key: key, value: append([]byte(nil), value...), expires: m.now().Add(ttl)}
	if e.size() > m.maxBytes/4 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	m.items[key] = m.ll.PushFront(e)
	m.bytes += e.size()
	for m.ll.Len() > m.maxEntries || m.bytes > m.maxBytes {
		m.remove(m.ll.Back())
	}
}

// Len returns the number of entries, expired ones included until they are
// evicted or looked up.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}

func (m *Memory) remove(el *list.Element) {
	e := m.ll.Remove(el).(*memEntry)
	delete(m.items, e.key)
	m.bytes -= e.size()
}
