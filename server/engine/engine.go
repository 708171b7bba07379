// Package engine answers the servers' one question, "may this image run?",
// fast enough for an admission deadline: it pins the image to its digest
// (tags cached, and refreshed in the background while in use), looks the
// verdict up in a cache keyed by the digest and the policy, runs vouch's
// Executor on a miss, and lets concurrent requests for the same image share
// one verification. Each cached verdict has an id (VerifyCached), under
// which endpoints keep their encoding of it; VerifyLocal answers an image
// by digest whose verdict is in memory without I/O or waiting, and parsed
// references are kept, so that a hot image costs no parsing and no
// allocation.
package engine

import (
	"context"
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
	"github.com/vouch-project/vouch/internal/flight"
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
// under that hash, so a change of any of them must change it. ctx is the
// caller's: a configuration that is reloaded while the server runs can pin,
// in the request's context, the configuration its request started under
// (reload.Holder).
type ExecutorFunc func(ctx context.Context, namespace string) (exec *vouch.Executor, policyHash string)

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
	// CredentialScope, when set, says that requests may carry registry
	// credentials of their own (in the admission webhook, the Pod's pull
	// secrets, in its context), and returns the identity of those a
	// request uses for a registry ("" for the credentials every request
	// shares; registry.Scope is one). Tag resolutions are then cached per
	// scope, and a reference by digest is resolved too, per scope (cached
	// like a tag), before its verdict is looked up: a request is answered
	// only for an image it could read itself. Verdicts stay cached by
	// digest and policy alone: they are about the content, which is the
	// same whoever reads it (docs/kubernetes.md, Registry credentials).
	// Optional; default nil: every request shares one set of credentials.
	CredentialScope func(ctx context.Context, registry string) string
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

	verdicts flight.Group[verified]
	tags     flight.Group[digest.Digest]
	memo     reportMemo
	refs     references

	refreshMu sync.Mutex
	// refreshing holds, per tag key, the time before which no background
	// refresh starts: far ahead while one runs, TagTTL after one failed.
	refreshing map[string]time.Time
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

// VerifyLocal is VerifyCached for the images the engine can answer at
// once, from memory, without I/O or waiting: an image by digest (when
// requests share one set of credentials) whose verdict is in the local
// cache (cache.Local), or that no policy scope covers. For any other image
// it returns false having done nothing, not even reported to Hooks: call
// VerifyCached then. A caller answers the keys VerifyLocal answers in its
// own goroutine and spreads only the others over goroutines. The report
// may be the one an earlier call returned: callers must not modify it.
func (e *Engine) VerifyLocal(ctx context.Context, namespace, image string) (*vouch.Report, uint64, bool) {
	local, ok := e.cache.(cache.Local)
	if !ok || e.opts.CredentialScope != nil {
		return nil, 0, false
	}
	p, err := e.refs.parse(image)
	if err != nil || p.ref.Digest == "" {
		return nil, 0, false
	}
	exec, hash := e.opts.Executor(ctx, namespace)
	if exec == nil {
		return nil, 0, false
	}
	var report *vouch.Report
	var id uint64
	if r, ok := exec.Screen(ctx, p.ref); ok {
		report = r
	} else {
		key := p.verdictKey(hash)
		data, ok := local.GetLocal(key)
		if !ok {
			return nil, 0, false
		}
		m, ok := e.memo.entry(key, data)
		if !ok {
			return nil, 0, false
		}
		e.hook("verdict", true)
		report, id = m.personal(p.str, p.ref), m.id
	}
	if h := e.opts.Hooks.OnAnswer; h != nil {
		h(answer(report, nil))
	}
	return report, id, true
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
	p, err := e.refs.parse(image)
	if err != nil {
		return undecided(image, image, err), 0, err
	}
	ref := p.ref
	exec, hash := e.opts.Executor(ctx, namespace)
	if exec == nil {
		err := fmt.Errorf("no executor for namespace %q", namespace)
		return undecided(p.str, p.str, err), 0, err
	}
	// A subject that no scope covers is decided before any request: the
	// image name is the Pod author's, and so is the host it names.
	if r, ok := exec.Screen(ctx, ref); ok {
		return r, 0, nil
	}
	// A reference by digest is pinned already, unless requests carry
	// credentials of their own (pin then checks this one's).
	pinned := ref
	if ref.Digest == "" || e.opts.CredentialScope != nil {
		if pinned, err = e.pin(ctx, exec, ref); err != nil {
			return undecided(p.str, p.str, err), 0, err
		}
	}
	var key string
	if pinned == ref {
		key = p.verdictKey(hash)
	} else {
		key = verdictKey(hash, pinned)
	}
	if m, ok := e.memo.report(ctx, e.cache, key); ok {
		e.hook("verdict", true)
		return personal(m.r, p.str, ref, pinned), m.id, nil
	}
	e.hook("verdict", false)
	// A pre-verification of the image that runs (Refresh) knows more
	// than a verification started now would: wait for it.
	v, err, joined := e.verdicts.Join(ctx, "refresh:"+key, e.opts.Linger)
	if !joined {
		v, err = e.verdicts.Do(ctx, key, e.opts.Linger, func(ctx context.Context) (verified, error) {
			return e.run(ctx, exec, key, pinned)
		})
	}
	if err != nil && v.r == nil {
		return undecided(p.str, pinned.String(), err), 0, err
	}
	if err != nil {
		return personal(v.r, p.str, ref, pinned), 0, err
	}
	return personal(v.r, p.str, ref, pinned), v.id, nil
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
// subject (ref, whose String is subject).
func personal(r *vouch.Report, subject string, ref, pinned vouch.Reference) *vouch.Report {
	c := *r
	c.Subject, c.Reference = subject, subject
	if pinned != ref {
		c.Reference = pinned.String()
	}
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
