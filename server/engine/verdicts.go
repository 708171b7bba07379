package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
)

// This file holds the rules of the verdict cache: which verdicts are
// cached and how long, and the memo of the reports decoded from it.

// verdictKey is the cache key of the verdict on pinned under the policy
// whose hash is policyHash.
func verdictKey(policyHash string, pinned vouch.Reference) string {
	// One concatenation: pinned.Name() spelled out (no layout reference
	// gets here).
	return "verdict:" + policyHash + ":" + pinned.Registry + "/" + pinned.Repository + "@" + string(pinned.Digest)
}

// verified is the result of one executor run: the report, and the id of
// its memo entry when the verdict was cached (else 0).
type verified struct {
	r  *vouch.Report
	id uint64
}

// run verifies pinned with exec and caches the verdict.
func (e *Engine) run(ctx context.Context, exec *vouch.Executor, key string, pinned vouch.Reference) (verified, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.VerifyTimeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return verified{}, ctx.Err()
	}
	defer func() { <-e.sem }()
	e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	start := time.Now()
	r, err := exec.Verify(ctx, pinned)
	if h := e.opts.Hooks.OnVerification; h != nil && r != nil {
		h(r.Verdict, time.Since(start))
	}
	if err != nil {
		if ctx.Err() == nil {
			e.opts.Logger.WarnContext(ctx, "could not decide", "reference", pinned.String(), "error", err.Error())
		}
		return verified{r: r}, err
	}
	ttl := time.Duration(0)
	switch {
	case r.Verdict == vouch.Allowed:
		ttl = e.opts.AllowTTL
	case r.Verdict == vouch.Denied && !hasErrors(r.Root):
		ttl = e.opts.DenyTTL
	}
	if ttl <= 0 {
		return verified{r: r}, nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return verified{r: r}, nil
	}
	e.cache.Set(ctx, key, data, ttl)
	// The report as the cache will give it back (a JSON round trip), so
	// that the first answer is the same as the cached ones.
	var cached vouch.Report
	if err := json.Unmarshal(data, &cached); err != nil {
		return verified{r: r}, nil
	}
	return verified{r: &cached, id: e.memo.add(key, data, &cached).id}, nil
}

// Bounds of the report memo: entries, and the bytes of their cached forms
// (the decoded reports count as much again).
const (
	maxMemoEntries = 4096
	maxMemoBytes   = 64 << 20
)

// reportMemo keeps, per verdict key, the report decoded from the cache's
// bytes, with the bytes it comes from. A cache hit then costs a byte
// comparison instead of a JSON decode (a quarter of the server's CPU on
// cached requests). The byte cache stays the truth: an entry is used only
// while the cache returns the same bytes. Each entry has an id of its own,
// which VerifyCached returns, so that callers can keep what they derive
// from a cached report (an endpoint's encoding) under it.
type reportMemo struct {
	mu    sync.Mutex
	m     map[string]*memoEntry
	bytes int
	last  uint64 // the id of the latest entry
}

// memoEntry is one verdict key's report. It never changes, but for last.
type memoEntry struct {
	raw []byte
	r   *vouch.Report
	id  uint64
	// last is the report VerifyLocal last answered from this entry, as
	// its caller named the subject: answered again while the subject is
	// the same, without an allocation.
	last atomic.Pointer[subjectReport]
}

// subjectReport is a report personal to a caller's name of its subject.
type subjectReport struct {
	subject string
	r       *vouch.Report
}

// personal returns the entry's report as the caller named the subject,
// ref (by digest, whose String is subject).
func (e *memoEntry) personal(subject string, ref vouch.Reference) *vouch.Report {
	if l := e.last.Load(); l != nil && l.subject == subject {
		return l.r
	}
	r := personal(e.r, subject, ref, ref)
	e.last.Store(&subjectReport{subject, r})
	return r
}

// report returns the memo entry of the report cached under key, decoding
// the report only when its bytes changed.
func (m *reportMemo) report(ctx context.Context, c cache.Cache, key string) (*memoEntry, bool) {
	data, ok := c.Get(ctx, key)
	if !ok {
		return nil, false
	}
	return m.entry(key, data)
}

// entry returns the memo entry of data, the report cached under key.
func (m *reportMemo) entry(key string, data []byte) (*memoEntry, bool) {
	m.mu.Lock()
	e, ok := m.m[key]
	m.mu.Unlock()
	if ok && bytes.Equal(e.raw, data) {
		return e, true
	}
	var r vouch.Report
	if err := json.Unmarshal(data, &r); err != nil || r.Verdict == "" {
		return nil, false
	}
	return m.add(key, data, &r), true
}

// add records r, cached under key as data, and returns its entry, with a
// new id.
func (m *reportMemo) add(key string, data []byte, r *vouch.Report) *memoEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last++
	e := &memoEntry{raw: data, r: r, id: m.last}
	if old, ok := m.m[key]; ok {
		m.bytes -= old.size()
	}
	if m.m == nil || len(m.m) >= maxMemoEntries || m.bytes >= maxMemoBytes {
		m.m, m.bytes = make(map[string]*memoEntry), 0
	}
	m.m[key] = e
	m.bytes += e.size()
	return e
}

// size is what the memo counts for e: its cached bytes twice (the decoded
// report is about as big).
func (e *memoEntry) size() int { return 2 * len(e.raw) }

// hasErrors reports whether some node of the graph could not be checked:
// a denial then may be transient, and is not cached.
func hasErrors(root *vouch.Node) bool {
	found := false
	if root != nil {
		root.Walk(func(n *vouch.Node, _ int) { found = found || n.Outcome == vouch.Errored })
	}
	return found
}
