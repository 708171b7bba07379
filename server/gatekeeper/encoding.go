package gatekeeper

import (
	"sync"

	"github.com/vouch-project/vouch"
)

// Bounds of the memo of encoded verdicts: entries (two per cached verdict
// at most, with and without the graph) and their bytes.
const (
	maxEncodings     = 8192
	maxEncodingBytes = 32 << 20
)

// encodings keeps the encoded verdict fields of cached verdicts, by the
// verdict's id (CachingDecider) and whether the graph is in: a verdict
// answered from the cache is encoded once, not for every request (three
// quarters of the server's CPU on cached requests, once the report itself
// is not decoded again). When full, it starts afresh.
type encodings struct {
	mu    sync.Mutex
	m     map[encodingKey][]byte
	bytes int
}

// encodingKey names one encoding of one cached verdict.
type encodingKey struct {
	id    uint64
	graph bool
}

// verdict returns the encoded verdict fields of r, which is the cached
// verdict id (0: not cached, encoded every time).
func (e *encodings) verdict(r *vouch.Report, id uint64, graph bool) ([]byte, error) {
	if id == 0 {
		return encodeVerdict(r, graph)
	}
	k := encodingKey{id, graph}
	e.mu.Lock()
	b, ok := e.m[k]
	e.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := encodeVerdict(r, graph)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil || len(e.m) >= maxEncodings || e.bytes+len(b) > maxEncodingBytes {
		e.m, e.bytes = make(map[encodingKey][]byte), 0
	}
	if _, ok := e.m[k]; !ok {
		e.m[k] = b
		e.bytes += len(b)
	}
	return b, nil
}
