// Package cache keeps verification results and tag resolutions for a while:
// in process (Memory: bounded, with TTLs) and shared by the replicas of a
// server through Redis (Redis: a Memory in front of a Redis server, which
// keeps working on the Memory alone while Redis is unavailable). Entries
// in Redis carry an HMAC under a key the replicas share, bound to their key
// and expiry: whoever can write to Redis cannot make vouch read a verdict
// no replica wrote.
//
// A cache is an optimisation, never a source of truth: every method is best
// effort, and a cache that cannot answer answers "miss".
package cache

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vouch-project/vouch"
)

// Cache stores byte values under string keys for a time. Implementations
// are safe for concurrent use.
type Cache interface {
	// Get returns the value stored under key and true, or false when there
	// is none, it expired, or the cache cannot be reached. The caller must
	// not modify the value.
	Get(ctx context.Context, key string) ([]byte, bool)
	// Set stores value under key for ttl; a ttl <= 0 stores nothing. The
	// cache keeps its own copy of value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration)
}

// Local is a Cache that can answer from the process's memory alone.
type Local interface {
	Cache
	// GetLocal is Get without I/O: false when the value is not in memory
	// (Get might still find it elsewhere).
	GetLocal(key string) ([]byte, bool)
}

// Shared is implemented by a Cache whose entries other processes share (the
// replicas of a server, through Redis): for work that one replica does on
// behalf of all, such as refreshing a cached tag.
type Shared interface {
	Cache
	// GetShared returns the value stored under key in the shared layer,
	// skipping the local one, and keeps it locally for the time it has
	// left; false as Get would answer it. For an entry that another
	// process may have written anew since this one cached it locally.
	GetShared(ctx context.Context, key string) ([]byte, bool)
	// Claim claims key for ttl among the processes that share the cache:
	// true for the one caller that claimed it, until ttl has passed; false
	// while another holds it. It is a lease, not a lock: a holder that
	// dies holds it until ttl passes, and a holder slower than ttl may
	// find that another claimed it after it. A cache that cannot reach the
	// shared layer answers true: its caller works alone.
	Claim(ctx context.Context, key string, ttl time.Duration) bool
}

// Report returns the report stored under key by SetReport. A value that is
// not a report (corrupt, or written by an incompatible version) is a miss.
func Report(ctx context.Context, c Cache, key string) (*vouch.Report, bool) {
	data, ok := c.Get(ctx, key)
	if !ok {
		return nil, false
	}
	var r vouch.Report
	if err := json.Unmarshal(data, &r); err != nil || r.Verdict == "" {
		return nil, false
	}
	return &r, true
}

// SetReport stores r as JSON under key for ttl.
func SetReport(ctx context.Context, c Cache, key string, r *vouch.Report, ttl time.Duration) {
	if ttl <= 0 || r == nil {
		return
	}
	data, err := json.Marshal(r)
	if err != nil {
		return
	}
	c.Set(ctx, key, data, ttl)
}
