package preverify

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vouch-project/vouch"
)

// DefaultMaxScopes is the default bound of a Scopes: as many namespaces
// as the engine keeps executors for (engine.MaxNamespaceExecutors).
const DefaultMaxScopes = 4096

// Scopes remembers, for the namespaces that asked vouch recently, the hash
// their verdicts are cached under: the policy scope each one decides in. A
// namespace whose tenants add a policy (a VouchConfig), or where a config
// file's scope names namespaces, caches verdicts under a hash of its own;
// the others share the hash of requests that name no namespace. An event
// about an image re-verifies it under each of them (QueueOptions.Scopes).
// It is safe for concurrent use.
type Scopes struct {
	max  int
	tick atomic.Uint64

	mu   sync.RWMutex
	byNS map[string]*scope
}

// scope is one namespace's hash (replaced, never changed) and when it was
// last seen (a tick).
type scope struct {
	hash string
	seen atomic.Uint64
}

// NewScopes returns a Scopes that remembers at most max namespaces (the
// least recently seen is forgotten first); max <= 0 means
// DefaultMaxScopes.
func NewScopes(max int) *Scopes {
	if max <= 0 {
		max = DefaultMaxScopes
	}
	return &Scopes{max: max, byNS: map[string]*scope{}}
}

// Executor returns f, recording the namespace and hash of each call: wrap
// the engine's ExecutorFunc with it, so that every namespace admission,
// the audit or pre-verification asks about is seen.
func (s *Scopes) Executor(f func(ctx context.Context, namespace string) (*vouch.Executor, string)) func(ctx context.Context, namespace string) (*vouch.Executor, string) {
	return func(ctx context.Context, namespace string) (*vouch.Executor, string) {
		exec, hash := f(ctx, namespace)
		if exec != nil && hash != "" {
			s.Record(namespace, hash)
		}
		return exec, hash
	}
}

// Record notes that namespace ("" for requests that name none) decides
// under hash. A namespace seen again under the same hash, the common
// case, costs a read lock.
func (s *Scopes) Record(namespace, hash string) {
	s.mu.RLock()
	sc, ok := s.byNS[namespace]
	if ok && sc.hash == hash {
		sc.seen.Store(s.tick.Add(1))
		s.mu.RUnlock()
		return
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byNS[namespace]; !ok && len(s.byNS) >= s.max {
		s.evict()
	}
	sc = &scope{hash: hash}
	sc.seen.Store(s.tick.Add(1))
	s.byNS[namespace] = sc
}

// evict forgets the namespace seen least recently, never "". s.mu is held.
func (s *Scopes) evict() {
	oldest, at := "", uint64(0)
	for ns, sc := range s.byNS {
		if seen := sc.seen.Load(); ns != "" && (oldest == "" || seen < at) {
			oldest, at = ns, seen
		}
	}
	delete(s.byNS, oldest)
}

// Namespaces returns one namespace for each hash remembered other than the
// hash of requests that name no namespace: the namespace seen most
// recently under it, sorted by name. A job for each re-verifies an image
// under every policy scope in use.
func (s *Scopes) Namespaces() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	base := s.byNS[""]
	type pick struct {
		ns   string
		seen uint64
	}
	byHash := map[string]pick{}
	for ns, sc := range s.byNS {
		if ns == "" || (base != nil && sc.hash == base.hash) {
			continue
		}
		if p, ok := byHash[sc.hash]; !ok || sc.seen.Load() > p.seen {
			byHash[sc.hash] = pick{ns, sc.seen.Load()}
		}
	}
	out := make([]string, 0, len(byHash))
	for _, p := range byHash {
		out = append(out, p.ns)
	}
	slices.Sort(out)
	return out
}
