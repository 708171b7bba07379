// Package engine answers the servers' one question, "may this image run?",
// fast enough for an admission deadline: it pins the image to its digest,
// looks the verdict up in a cache keyed by the digest and the policy, runs
// vouch's Executor on a miss, and lets concurrent requests for the same
// image share one verification.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// TagTTL is how long a tag's digest is cached. Optional; default
	// DefaultTagTTL; negative: every request resolves the tag.
	TagTTL time.Duration
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
	// verification is cancelled with its last caller.
	Linger time.Duration
	// Hooks report to metrics. Optional.
	Hooks Hooks
	// Logger logs verifications that could not decide. Optional; default
	// slog.Default().
	Logger *slog.Logger
}

// Engine decides on images for the Gatekeeper provider and the admission
// webhook. It is safe for concurrent use.
type Engine struct {
	opts     Options
	cache    cache.Cache
	sem      chan struct{}
	inFlight atomic.Int64

	verdicts flight[*vouch.Report]
	tags     flight[digest.Digest]
	decoded  decodedReports
}

// maxDecoded bounds the decoded reports an Engine keeps.
const maxDecoded = 4096

// decodedReports keeps the last decoded report of each verdict key with the
// bytes it was decoded from, so that a cache hit costs a byte comparison
// instead of a JSON decode (which took about a quarter of the server's CPU
// on cached requests). The byte cache stays the truth: an entry is used only
// while the cache returns the same bytes.
type decodedReports struct {
	mu sync.Mutex
	m  map[string]decodedReport
}

type decodedReport struct {
	raw []byte
	r   *vouch.Report
}

// report returns the report cached under key, decoding it only when its
// bytes changed.
func (d *decodedReports) report(ctx context.Context, c cache.Cache, key string) (*vouch.Report, bool) {
	data, ok := c.Get(ctx, key)
	if !ok {
		return nil, false
	}
	d.mu.Lock()
	e, ok := d.m[key]
	d.mu.Unlock()
	if ok && bytes.Equal(e.raw, data) {
		return e.r, true
	}
	var r vouch.Report
	if err := json.Unmarshal(data, &r); err != nil || r.Verdict == "" {
		return nil, false
	}
	d.mu.Lock()
	if d.m == nil || len(d.m) >= maxDecoded {
		d.m = make(map[string]decodedReport)
	}
	d.m[key] = decodedReport{raw: data, r: &r}
	d.mu.Unlock()
	return &r, true
}

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
	return &Engine{opts: opts, cache: opts.Cache, sem: make(chan struct{}, opts.MaxVerifications)}, nil
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
	report, err := e.verify(ctx, namespace, image)
	if h := e.opts.Hooks.OnAnswer; h != nil {
		h(answer(report, err))
	}
	return report, err
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

func (e *Engine) verify(ctx context.Context, namespace, image string) (*vouch.Report, error) {
	ref, err := parse(image)
	if err != nil {
		return undecided(image, image, err), err
	}
	exec, hash := e.opts.Executor(namespace)
	if exec == nil {
		err := fmt.Errorf("no executor for namespace %q", namespace)
		return undecided(ref.String(), ref.String(), err), err
	}
	pinned, err := e.pin(ctx, exec, ref)
	if err != nil {
		return undecided(ref.String(), ref.String(), err), err
	}
	key := "verdict:" + hash + ":" + pinned.Name() + "@" + pinned.Digest.String()
	if r, ok := e.decoded.report(ctx, e.cache, key); ok {
		e.hook("verdict", true)
		return personal(r, ref, pinned), nil
	}
	e.hook("verdict", false)
	r, err := e.verdicts.do(ctx, key, e.opts.Linger, func(ctx context.Context) (*vouch.Report, error) {
		return e.run(ctx, exec, key, pinned)
	})
	if err != nil && r == nil {
		return undecided(ref.String(), pinned.String(), err), err
	}
	return personal(r, ref, pinned), err
}

// run verifies pinned with exec and caches the verdict.
func (e *Engine) run(ctx context.Context, exec *vouch.Executor, key string, pinned vouch.Reference) (*vouch.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.VerifyTimeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
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
		return r, err
	}
	switch {
	case r.Verdict == vouch.Allowed:
		cache.SetReport(ctx, e.cache, key, r, e.opts.AllowTTL)
	case r.Verdict == vouch.Denied && !hasErrors(r.Root):
		cache.SetReport(ctx, e.cache, key, r, e.opts.DenyTTL)
	}
	return r, nil
}

// pin returns ref pinned to its digest, resolving (and caching) its tag.
func (e *Engine) pin(ctx context.Context, exec *vouch.Executor, ref vouch.Reference) (vouch.Reference, error) {
	if ref.Digest != "" {
		return ref, nil
	}
	key := "tag:" + ref.Name() + ":" + ref.Tag
	if data, ok := e.cache.Get(ctx, key); ok {
		if d, err := digest.Parse(string(data)); err == nil {
			e.hook("tag", true)
			return ref.WithDigest(d), nil
		}
	}
	e.hook("tag", false)
	d, err := e.tags.do(ctx, key, 0, func(ctx context.Context) (digest.Digest, error) {
		ctx, cancel := context.WithTimeout(ctx, e.opts.VerifyTimeout)
		defer cancel()
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
			e.cache.Set(ctx, key, []byte(desc.Digest.String()), e.opts.TagTTL)
		}
		return desc.Digest, nil
	})
	if err != nil {
		return ref, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return ref.WithDigest(d), nil
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
