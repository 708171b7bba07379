package engine

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vouch-project/vouch"
)

// Bounds of the memo of parsed references: entries, and the bytes of their
// strings.
const (
	maxReferences     = 16384
	maxReferenceBytes = 8 << 20
)

// references keeps parsed image references by the string a request spelled
// them with, so that a hot image's reference is parsed once rather than on
// every request: parsing (Docker's normalisation, its regular expressions,
// the digest's validation) was two fifths of the server's CPU on cached
// requests. Parsing is a pure function of the string, so an entry never goes
// stale; only valid references are kept. When full, it starts afresh.
type references struct {
	mu    sync.RWMutex
	m     map[string]*parsedReference
	bytes int
}

// parsedReference is a parsed reference and its String.
type parsedReference struct {
	ref vouch.Reference
	str string
	// key is the reference's verdict key under the latest policy hash it
	// was looked up with (VerifyLocal), kept so that a hot image costs no
	// allocation.
	key atomic.Pointer[hashedKey]
}

// hashedKey is a verdict key and the policy hash it is under.
type hashedKey struct{ hash, key string }

// verdictKey returns the verdict key of p (a reference by digest) under
// hash.
func (p *parsedReference) verdictKey(hash string) string {
	if k := p.key.Load(); k != nil && k.hash == hash {
		return k.key
	}
	key := verdictKey(hash, p.ref)
	p.key.Store(&hashedKey{hash, key})
	return key
}

// parse returns parse(image), with its String, from the memo when it is
// there.
func (rs *references) parse(image string) (*parsedReference, error) {
	rs.mu.RLock()
	p, ok := rs.m[image]
	rs.mu.RUnlock()
	if ok {
		return p, nil
	}
	// A copy, which the entry and its parts keep: image may be a piece
	// of a whole request body.
	image = strings.Clone(image)
	ref, err := parse(image)
	if err != nil {
		return nil, err
	}
	p = &parsedReference{ref: ref, str: ref.String()}
	// The strings, and a verdict key (the image and a policy hash).
	size := len(image) + len(p.str) + len(ref.Registry) + len(ref.Repository) + len(ref.Tag) + len(ref.Digest) + len(image) + 96
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil || len(rs.m) >= maxReferences || rs.bytes+size > maxReferenceBytes {
		rs.m, rs.bytes = make(map[string]*parsedReference), 0
	}
	if _, ok := rs.m[image]; !ok {
		rs.m[image] = p
		rs.bytes += size
	}
	return p, nil
}
