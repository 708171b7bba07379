// Package engine answers the servers' one question, "may this image run?",
// fast enough for an admission deadline: it pins the image to its digest
// (tags cached, and refreshed in the background while in use), looks the
// verdict up in a cache keyed by the digest and the policy, runs vouch's
// Executor on a miss, and lets concurrent requests for the same image share
// one verification. Each cached verdict has an id (VerifyCached), under
// which endpoints keep their encoding of it.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
)

// Defaults of Options.
const (
	DefaultAllowTTL         = 5 * time.Minute
	DefaultDenyTTL          = 30 * time.Second
	DefaultTagTTL           = 10 * time.Second
	DefaultTagMaxStale      = 5 * time.Minute
	DefaultMaxVerifications = 64
	DefaultVerifyTimeout    = time.Minute
)

// ErrInvalidReference is matched (errors.Is) by the errors about an image
// reference the engine will not look up: malformed, or naming an OCI layout
// on the server's disk.
var ErrInvalidReference = errors.New("invalid image reference")

// ExecutorFunc returns the executor that decides in a Kubernetes namespace
// ("" when the request names none) and a hash of everything its verdicts
// depend on: policy, verifiers, trust material, limits. Verdicts are cached
// under that hash, so a change of any of them must change it.
type ExecutorFunc func(namespace string) (exec *vouch.Executor, policyHash string)

// Hooks report what the engine does, for metrics. Every field is optional;
// none may block.
type Hooks struct {
	// OnCache is called for each cache lookup: kind is "verdict" or "tag".
	OnCache func(kind string, hit bool)
	// OnVerification is called after each run of the executor (not for
	// answers from the cache or shared with another request).
	OnVerification func(verdict vouch.Verdict, elapsed time.Duration)
	// OnAnswer is called for each Verify call with what the caller got:
	// "allowed", "denied", "undecided", "timeout" or "invalid".
	OnAnswer func(answer string)
	// OnTagRefresh is called after each background refresh of a tag whose
	// cached digest was past TagTTL, with its error (nil: refreshed).
	OnTagRefresh func(err error)
}

// Options configure an Engine.
type Options struct {
	// Executor gives the executor and policy hash of a namespace. Required.
	Executor ExecutorFunc
	// Cache holds verdicts and tag resolutions. Optional; default a
	// cache.Memory with its default bounds.
	Cache cache.Cache
	// AllowTTL is how long an allowed verdict is cached. Optional; default
	// DefaultAllowTTL; negative: not cached.
	AllowTTL time.Duration
	// DenyTTL is how long a definitive denial is cached: one whose graph
	// has no node that vouch failed to check. Optional; default
	// DefaultDenyTTL; negative: not cached. Undecided verdicts are never
	// cached.
	DenyTTL time.Duration
	// TagTTL is how long a tag's cached digest is used as it is. Optional;
	// default DefaultTagTTL; negative: tags are not cached, every request
	// resolves its tag.
	TagTTL time.Duration
	// TagMaxStale is the age (since it was resolved) up to which a cached
	// tag digest past TagTTL is still used, while the tag is resolved
	// again in the background, once at a time per tag and at most once
	// per TagTTL while that fails: requests for a hot tag do not wait for
	// the registry. An older digest is never used: the request resolves
	// the tag itself, and fails if the registry cannot answer. Optional;
	// default DefaultTagMaxStale; negative, or not above TagTTL: a digest
	// past TagTTL is never used.
	TagMaxStale time.Duration
	// MaxVerifications bounds the executor runs in progress at once; more
	// wait their turn within their callers' deadlines. Optional; default
	// DefaultMaxVerifications.
	MaxVerifications int
	// VerifyTimeout bounds one executor run, whoever waits for it.
	// Optional; default DefaultVerifyTimeout.
	VerifyTimeout time.Duration
	// Linger keeps a verification running for this long after the last
	// caller waiting for it gave up (its deadline passed), so that its
	// verdict is cached for the caller's retry. Optional; default 0: the
	// verification is cancelled with its last caller. Under load that the
	// registry cannot keep up with, lingering verifications delay the ones
	// callers wait for (docs/performance.md, B4).
	Linger time.Duration
	// Hooks report to metrics. Optional.
	Hooks Hooks
	// Logger logs verifications that could not decide. Optional; default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock that dates tag resolutions. Optional; default
	// time.Now (tests set it, with the cache's clock).
	Now func() time.Time
}

// Engine decides on images for the Gatekeeper provider and the admission
// webhook. It is safe for concurrent use.
type Engine struct {
	opts     Options
	cache    cache.Cache
	sem      chan struct{}
	inFlight atomic.Int64

	verdicts flight[verified]
	tags     flight[digest.Digest]
	memo     reportMemo

	refreshMu sync.Mutex
	// refreshing holds, per tag key, the time before which no background
	// refresh starts: far ahead while one runs, TagTTL after one failed.
	refreshing map[string]time.Time
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

// memoEntry is one verdict key's report. It never changes.
type memoEntry struct {
	raw []byte
	r   *vouch.Report
	id  uint64
}

// report returns the memo entry of the report cached under key, decoding
// the report only when its bytes changed.
func (m *reportMemo) report(ctx context.Context, c cache.Cache, key string) (*memoEntry, bool) {
	data, ok := c.Get(ctx, key)
	if !ok {
		return nil, false
	}
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

// New returns an Engine for opts.
func New(opts Options) (*Engine, error) {
	if opts.Executor == nil {
		return nil, errors.New("engine: Options.Executor is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.AllowTTL, DefaultAllowTTL)
	def(&opts.DenyTTL, DefaultDenyTTL)
	def(&opts.TagTTL, DefaultTagTTL)
	def(&opts.TagMaxStale, DefaultTagMaxStale)
	def(&opts.VerifyTimeout, DefaultVerifyTimeout)
	if opts.MaxVerifications <= 0 {
		opts.MaxVerifications = DefaultMaxVerifications
	}
	if opts.Linger < 0 {
		opts.Linger = 0
	}
	if opts.Cache == nil {
		opts.Cache = cache.NewMemory(cache.MemoryOptions{})
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{opts: opts, cache: opts.Cache, sem: make(chan struct{}, opts.MaxVerifications), refreshing: map[string]time.Time{}}, nil
}

// InFlight returns the number of executor runs in progress.
func (e *Engine) InFlight() int64 { return e.inFlight.Load() }

// Verify returns the verdict on image (a registry reference, by tag or
// digest) under the policy of namespace, with its report. The report's
// Reference is pinned to the digest.
//
// An error means vouch could not decide, and the report, when there is one,
// says why with verdict Undecided: a malformed reference (ErrInvalidReference),
// an unreachable registry, or ctx ending first (the error then matches
// context.DeadlineExceeded or context.Canceled). Callers fail closed.
func (e *Engine) Verify(ctx context.Context, namespace, image string) (*vouch.Report, error) {
	report, _, err := e.VerifyCached(ctx, namespace, image)
	return report, err
}

// VerifyCached is Verify that also returns the id of the cached verdict the
// report comes from: every call that returns the same id returns the same
// report but for its Subject and Reference, so that an endpoint can keep
// what it derives from the report (its encoding of the answer) under the
// id, and derive it once per cached verdict. A verdict that changes (it
// expired and was verified again, or another replica cached another) has a
// new id. The id is 0 when the verdict is not cached: it was not cached
// before this call and could not be cached by it, or err is not nil.
func (e *Engine) VerifyCached(ctx context.Context, namespace, image string) (*vouch.Report, uint64, error) {
	report, id, err := e.verify(ctx, namespace, image)
	if h := e.opts.Hooks.OnAnswer; h != nil {
		h(answer(report, err))
	}
	return report, id, err
}

func answer(r *vouch.Report, err error) string {
	switch {
	case errors.Is(err, ErrInvalidReference):
		return "invalid"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return "timeout"
	case err != nil || r == nil:
		return string(vouch.Undecided)
	}
	return string(r.Verdict)
}

func (e *Engine) verify(ctx context.Context, namespace, image string) (*vouch.Report, uint64, error) {
	ref, err := parse(image)
	if err != nil {
		return undecided(image, image, err), 0, err
	}
	exec, hash := e.opts.Executor(namespace)
	if exec == nil {
		err := fmt.Errorf("no executor for namespace %q", namespace)
		return undecided(ref.String(), ref.String(), err), 0, err
	}
	pinned, err := e.pin(ctx, exec, ref)
	if err != nil {
		return undecided(ref.String(), ref.String(), err), 0, err
	}
	key := "verdict:" + hash + ":" + pinned.Name() + "@" + pinned.Digest.String()
	if m, ok := e.memo.report(ctx, e.cache, key); ok {
		e.hook("verdict", true)
		return personal(m.r, ref, pinned), m.id, nil
	}
	e.hook("verdict", false)
	v, err := e.verdicts.do(ctx, key, e.opts.Linger, func(ctx context.Context) (verified, error) {
		return e.run(ctx, exec, key, pinned)
	})
	if err != nil && v.r == nil {
		return undecided(ref.String(), pinned.String(), err), 0, err
	}
	if err != nil {
		return personal(v.r, ref, pinned), 0, err
	}
	return personal(v.r, ref, pinned), v.id, nil
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

// pin returns ref pinned to its digest, resolving (and caching) its tag. A
// cached digest is used as it is for TagTTL, then up to TagMaxStale while a
// background refresh resolves the tag again; after that the tag is
// resolved on the request's path.
func (e *Engine) pin(ctx context.Context, exec *vouch.Executor, ref vouch.Reference) (vouch.Reference, error) {
	if ref.Digest != "" {
		return ref, nil
	}
	key := "tag:" + ref.Name() + ":" + ref.Tag
	if data, ok := e.cache.Get(ctx, key); ok {
		if d, at, ok := parseTagEntry(data); ok {
			age := e.opts.Now().Sub(at)
			switch {
			case age < e.opts.TagTTL:
				e.hook("tag", true)
				return ref.WithDigest(d), nil
			case age < e.opts.TagMaxStale:
				e.hook("tag", true)
				e.refresh(ctx, exec, ref, key)
				return ref.WithDigest(d), nil
			}
		}
	}
	e.hook("tag", false)
	d, err := e.resolve(ctx, exec, ref, key)
	if err != nil {
		return ref, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return ref.WithDigest(d), nil
}

// resolve resolves ref's tag at the registry and caches the digest under
// key, dated. Concurrent resolutions of one tag share one request.
func (e *Engine) resolve(ctx context.Context, exec *vouch.Executor, ref vouch.Reference, key string) (digest.Digest, error) {
	return e.tags.do(ctx, key, 0, func(ctx context.Context) (digest.Digest, error) {
		ctx, cancel := context.WithTimeout(ctx, e.opts.VerifyTimeout)
		defer cancel()
		at := e.opts.Now()
		repo, err := exec.Store.Repository(ctx, ref)
		if err != nil {
			return "", err
		}
		desc, err := repo.Resolve(ctx, ref.Tag)
		if err != nil {
			return "", err
		}
		if err := desc.Digest.Validate(); err != nil {
			return "", fmt.Errorf("registry returned a bad digest for %s: %w", ref, err)
		}
		if e.opts.TagTTL > 0 {
			e.cache.Set(ctx, key, tagEntry(desc.Digest, at), max(e.opts.TagTTL, e.opts.TagMaxStale))
		}
		return desc.Digest, nil
	})
}

// refresh resolves ref's tag again in the background, unless a refresh of
// it runs already or failed less than TagTTL ago. The refresh keeps ctx's
// values (the request id, for logs), not its deadline.
func (e *Engine) refresh(ctx context.Context, exec *vouch.Executor, ref vouch.Reference, key string) {
	now := e.opts.Now()
	e.refreshMu.Lock()
	if next, ok := e.refreshing[key]; ok && now.Before(next) {
		e.refreshMu.Unlock()
		return
	}
	if len(e.refreshing) >= maxMemoEntries {
		// Forget failures; running refreshes finish unhindered and at
		// worst one more starts for their tags.
		clear(e.refreshing)
	}
	e.refreshing[key] = now.Add(e.opts.VerifyTimeout) // it ends by then
	e.refreshMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.VerifyTimeout)
		defer cancel()
		_, err := e.resolve(ctx, exec, ref, key)
		e.refreshMu.Lock()
		if err == nil {
			delete(e.refreshing, key)
		} else {
			e.refreshing[key] = e.opts.Now().Add(e.opts.TagTTL)
		}
		e.refreshMu.Unlock()
		if err != nil {
			e.opts.Logger.WarnContext(ctx, "could not refresh a cached tag; its digest is used until it is too old", "reference", ref.String(), "error", err.Error())
		}
		if h := e.opts.Hooks.OnTagRefresh; h != nil {
			h(err)
		}
	}()
}

// tagEntry is the cached form of a tag's digest resolved at at:
// "<digest> <unix milliseconds>".
func tagEntry(d digest.Digest, at time.Time) []byte {
	return strconv.AppendInt([]byte(d.String()+" "), at.UnixMilli(), 10)
}

// parseTagEntry reads a tagEntry; anything else (corrupt, or written by an
// older vouch without the date) is a miss.
func parseTagEntry(data []byte) (digest.Digest, time.Time, bool) {
	ds, ms, ok := strings.Cut(string(data), " ")
	if !ok {
		return "", time.Time{}, false
	}
	d, err := digest.Parse(ds)
	if err != nil {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return d, time.UnixMilli(n), true
}

// Resolve returns image pinned to its digest under the registry settings of
// namespace: for the mutating endpoints. A reference that already names a
// digest is returned as it is, without I/O.
func (e *Engine) Resolve(ctx context.Context, namespace, image string) (vouch.Reference, error) {
	ref, err := parse(image)
	if err != nil {
		return vouch.Reference{}, err
	}
	exec, _ := e.opts.Executor(namespace)
	if exec == nil {
		return vouch.Reference{}, fmt.Errorf("no executor for namespace %q", namespace)
	}
	return e.pin(ctx, exec, ref)
}

func (e *Engine) hook(kind string, hit bool) {
	if h := e.opts.Hooks.OnCache; h != nil {
		h(kind, hit)
	}
}

// parse parses a registry reference. OCI layout references are refused: a
// request must not make the server read its own disk.
func parse(image string) (vouch.Reference, error) {
	if strings.HasPrefix(image, vouch.LayoutPrefix) {
		return vouch.Reference{}, fmt.Errorf("%w %q: OCI layout references are not served", ErrInvalidReference, image)
	}
	ref, err := vouch.ParseReference(image)
	if err != nil {
		return vouch.Reference{}, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	return ref, nil
}

// personal returns a copy of the shared report r as the caller named the
// subject.
func personal(r *vouch.Report, ref, pinned vouch.Reference) *vouch.Report {
	c := *r
	c.Subject, c.Reference = ref.String(), pinned.String()
	return &c
}

func undecided(subject, reference string, err error) *vouch.Report {
	reason := "could not decide: " + err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		reason = "could not decide in time: " + err.Error()
	case errors.Is(err, ErrInvalidReference):
		reason = err.Error()
	}
	return &vouch.Report{Subject: subject, Reference: reference, Verdict: vouch.Undecided, Reason: reason}
}

// hasErrors reports whether some node of the graph could not be checked:
// a denial then may be transient, and is not cached.
func hasErrors(root *vouch.Node) bool {
	found := false
	if root != nil {
		root.Walk(func(n *vouch.Node, _ int) { found = found || n.Outcome == vouch.Errored })
	}
	return found
}

// flight runs one function per key at a time and shares its result with
// every caller that asks for the key meanwhile. The function runs under a
// context of its own, cancelled when the last waiting caller gives up (after
// linger) and detached from each caller's cancellation otherwise.
type flight[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
}

func (f *flight[T]) do(ctx context.Context, key string, linger time.Duration, fn func(context.Context) (T, error)) (T, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*call[T]{}
	}
	c, ok := f.calls[key]
	if !ok {
		// The work keeps the first caller's values (its request id for
		// logs), not its deadline.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call[T]{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		go func() {
			defer cancel()
			c.val, c.err = fn(wctx)
			f.mu.Lock()
			if f.calls[key] == c {
				delete(f.calls, key)
			}
			f.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	f.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
	}
	f.mu.Lock()
	c.waiters--
	if c.waiters == 0 {
		if linger <= 0 {
			f.abandon(key, c)
		} else {
			// A retry within linger joins the call and keeps it alive.
			time.AfterFunc(linger, func() {
				f.mu.Lock()
				if c.waiters == 0 {
					f.abandon(key, c)
				}
				f.mu.Unlock()
			})
		}
	}
	f.mu.Unlock()
	var zero T
	return zero, ctx.Err()
}

// abandon cancels c, which no caller waits for any more; later callers
// start afresh rather than join it. f.mu is held.
func (f *flight[T]) abandon(key string, c *call[T]) {
	if f.calls[key] == c {
		delete(f.calls, key)
	}
	c.cancel()
}
