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
	// last is what the reference was last answered with from the cache
	// (VerifyLocal): a hot image then costs no allocation.
	last atomic.Pointer[lastAnswer]
}

// lastAnswer is a verdict key of a reference by digest, under a policy
// hash, and the report last answered for it, made from a memo entry.
type lastAnswer struct {
	hash, key string
	entry     *memoEntry
	report    *vouch.Report
}

// verdictKey returns the verdict key of p (a reference by digest) under
// hash.
func (p *parsedReference) verdictKey(hash string) string {
	if l := p.last.Load(); l != nil && l.hash == hash {
		return l.key
	}
	return verdictKey(hash, p.ref)
}

// personal returns the report of memo entry m, cached under key (p's
// verdict key under hash), as p names its subject: the one it returned
// last when m has not changed since.
func (p *parsedReference) personal(hash, key string, m *memoEntry) *vouch.Report {
	if l := p.last.Load(); l != nil && l.entry == m && l.hash == hash {
		return l.report
	}
	r := personal(m.r, p.str, p.ref, p.ref)
	p.last.Store(&lastAnswer{hash: hash, key: key, entry: m, report: r})
	return r
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
	size := len(image) + len(p.str) + len(ref.Registry) + len(ref.Repository) + len(ref.Tag) + len(ref.Digest)
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
