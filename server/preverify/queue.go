// Package preverify verifies images before admission asks about them, so
// that admission finds their verdicts cached: images named by registry
// events (the distribution registry's notifications, a CI call after
// signing; events.go) and by new or changed workload templates (with
// -tags kubernetes, server/kube's Watcher). Every source feeds one
// bounded Queue, which never blocks its caller, drops what does not fit
// (and counts it), and verifies at a bounded rate with a bounded
// concurrency per registry, through the server's engine and its cache
// (docs/pre-verification.md).
package preverify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/vouch-project/vouch"
)

// Defaults of QueueOptions.
const (
	DefaultMaxQueued   = 1024
	DefaultRate        = 10.0
	DefaultPerRegistry = 2
	DefaultMaxWorkers  = 8
	DefaultTimeout     = time.Minute
	// awaitAttempts and awaitDelay bound the wait for a job's Await tag:
	// 100 ms doubling, about 3 s in all.
	awaitAttempts = 5
	awaitDelay    = 100 * time.Millisecond
)

// Job is one image to verify ahead of admission.
type Job struct {
	// Namespace is the Kubernetes namespace whose policy applies ("" for
	// the policy of requests that name none). Optional.
	Namespace string
	// Image is the image reference, by tag or digest. Required.
	Image string
	// Registry is the registry host the job reaches, for its concurrency
	// bound. Optional; default the host of Image.
	Registry string
	// Source names where the job comes from, for metrics and logs:
	// "registry", "subjects", "workload". Optional.
	Source string
	// Await, when set, is a reference by tag that must resolve to
	// AwaitDigest before the job runs: a registry notifies of a push
	// before it moves the tag. The job waits for it (QueueOptions.Resolve)
	// a few times, then runs anyway. Optional.
	Await, AwaitDigest string
	// UseCache verifies with QueueOptions.VerifyCached, which answers
	// from the cache when it can, instead of Verify: for workload
	// templates, whose images may well be cached already. Optional.
	UseCache bool

	attempt int
}

func (j Job) key() string {
	if j.UseCache {
		return "cached\x00" + j.Namespace + "\x00" + j.Image
	}
	return j.Namespace + "\x00" + j.Image
}

// Results of Enqueue.
const (
	Queued    = "queued"    // the job waits its turn
	Duplicate = "duplicate" // the same job waits already
	Dropped   = "dropped"   // the queue is full
)

// QueueOptions configure a Queue.
type QueueOptions struct {
	// Verify verifies a job's image, ignoring what is cached, and caches
	// the verdict: the engine's Refresh. Required.
	Verify func(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// VerifyCached verifies the images of jobs with UseCache, answering
	// from the cache when it can: the engine's Verify. Optional; default
	// Verify.
	VerifyCached func(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// MaxQueued bounds the jobs waiting; more are dropped. Optional;
	// default DefaultMaxQueued.
	MaxQueued int
	// Rate bounds the verifications started per second, all registries
	// together. Optional; default DefaultRate.
	Rate float64
	// PerRegistry bounds the verifications in progress at once against
	// one registry. Optional; default DefaultPerRegistry.
	PerRegistry int
	// MaxWorkers bounds the verifications in progress at once in all.
	// Optional; default DefaultMaxWorkers.
	MaxWorkers int
	// Resolve resolves a reference by tag at the registry, uncached (the
	// engine's ResolveUncached), for jobs that await a tag. Optional;
	// without it they do not wait.
	Resolve func(ctx context.Context, namespace, image string) (string, error)
	// Timeout bounds one verification. Optional; default DefaultTimeout.
	Timeout time.Duration
	// OnEnqueue is called for each Enqueue with its source and result.
	// Optional; it must not block.
	OnEnqueue func(source, result string)
	// OnDone is called after each verification with its source and the
	// engine's verdict ("undecided" on an error). Optional; it must not
	// block.
	OnDone func(source string, verdict vouch.Verdict)
	// Scopes returns namespaces whose verdicts are cached under a policy
	// other than that of requests that name no namespace, one per policy
	// (Scopes.Namespaces). After a job that names no namespace (a registry
	// event, a /subjects request without one) is verified, its image (by
	// digest) is queued again for each of these namespaces under whose
	// policy Cached finds a verdict on it: an event replaces the verdict
	// of every policy scope that has one cached, a tenant's as well as the
	// default. Optional; with Cached.
	Scopes func() []string
	// Cached reports whether a verdict on image, a reference by digest, is
	// cached under namespace's policy (the engine's HasVerdict), without
	// registry requests. Optional; with Scopes.
	Cached func(ctx context.Context, namespace, image string) bool
	// Logger logs verifications that could not decide. Optional; default
	// slog.Default().
	Logger *slog.Logger
}

// Queue holds the jobs waiting to be verified, per registry. It is safe
// for concurrent use; Start runs it.
type Queue struct {
	opts    QueueOptions
	limiter *rate.Limiter

	mu      sync.Mutex
	ctx     context.Context // set by Start; nil until then
	pending map[string]bool // keys of the jobs waiting
	hosts   map[string]*hostQueue
	queued  int // jobs waiting, all hosts
	workers int // goroutines verifying
	wg      sync.WaitGroup
}

// hostQueue is one registry's waiting jobs and the workers on it.
type hostQueue struct {
	jobs    []Job
	running int
}

// NewQueue returns the Queue for opts.
func NewQueue(opts QueueOptions) (*Queue, error) {
	if opts.Verify == nil {
		return nil, errors.New("preverify: QueueOptions.Verify is required")
	}
	if opts.VerifyCached == nil {
		opts.VerifyCached = opts.Verify
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.PerRegistry <= 0 {
		opts.PerRegistry = DefaultPerRegistry
	}
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = DefaultMaxWorkers
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Queue{
		opts:    opts,
		limiter: rate.NewLimiter(rate.Limit(opts.Rate), 1),
		pending: map[string]bool{},
		hosts:   map[string]*hostQueue{},
	}, nil
}

// Len returns the number of jobs waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

// Enqueue adds j unless the same job waits already or the queue is full,
// and returns Queued, Duplicate or Dropped. It never blocks on
// verification. A job whose verification runs already is queued again:
// what changed may have changed after it started.
func (q *Queue) Enqueue(j Job) string {
	if j.Registry == "" {
		j.Registry = registryOf(j.Image)
	}
	q.mu.Lock()
	result := q.enqueue(j)
	q.mu.Unlock()
	if q.opts.OnEnqueue != nil {
		q.opts.OnEnqueue(j.Source, result)
	}
	return result
}

func (q *Queue) enqueue(j Job) string {
	key := j.key()
	switch {
	case q.pending[key]:
		return Duplicate
	case q.queued >= q.opts.MaxQueued:
		return Dropped
	}
	q.pending[key] = true
	q.queued++
	h := q.hosts[j.Registry]
	if h == nil {
		h = &hostQueue{}
		q.hosts[j.Registry] = h
	}
	h.jobs = append(h.jobs, j)
	q.spawn(j.Registry, h)
	return Queued
}

// spawn starts a worker on host when its bounds allow and Start runs.
// q.mu is held.
func (q *Queue) spawn(host string, h *hostQueue) {
	if q.ctx == nil || q.ctx.Err() != nil || h.running >= q.opts.PerRegistry || q.workers >= q.opts.MaxWorkers {
		return
	}
	h.running++
	q.workers++
	q.wg.Add(1)
	go q.work(q.ctx, host)
}

// Start runs the queue's workers until ctx ends, then waits for the
// verifications in progress (each bounded by Timeout) and drops the jobs
// still waiting.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	q.ctx = ctx
	for host, h := range q.hosts {
		for range h.jobs {
			q.spawn(host, h)
		}
	}
	q.mu.Unlock()
	<-ctx.Done()
	q.wg.Wait()
	return nil
}

// work verifies host's jobs, then another host's that waits for a
// worker, until none is left.
func (q *Queue) work(ctx context.Context, host string) {
	defer q.wg.Done()
	for {
		j, ok := q.next(host)
		if !ok {
			q.mu.Lock()
			q.release(host)
			// Another registry's jobs may wait for a worker that
			// MaxWorkers kept from starting.
			next := ""
			for other, h := range q.hosts {
				if len(h.jobs) > 0 && h.running < q.opts.PerRegistry {
					next = other
					break
				}
			}
			if next == "" || ctx.Err() != nil {
				q.workers--
				q.mu.Unlock()
				return
			}
			q.hosts[next].running++
			host = next
			q.mu.Unlock()
			continue
		}
		if err := q.limiter.Wait(ctx); err != nil {
			q.mu.Lock()
			q.release(host)
			q.workers--
			q.mu.Unlock()
			return
		}
		if q.awaiting(ctx, j) {
			continue
		}
		q.verify(ctx, j)
	}
}

// awaiting reports whether j's Await tag does not resolve to its
// AwaitDigest yet, and if so queues j again after a delay, up to
// awaitAttempts times; after that j runs as it is.
func (q *Queue) awaiting(ctx context.Context, j Job) bool {
	if j.Await == "" || q.opts.Resolve == nil || j.attempt >= awaitAttempts {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, q.opts.Timeout)
	d, err := q.opts.Resolve(rctx, j.Namespace, j.Await)
	cancel()
	if err == nil && d == j.AwaitDigest {
		return false
	}
	j.attempt++
	time.AfterFunc(awaitDelay<<(j.attempt-1), func() {
		if ctx.Err() == nil {
			q.mu.Lock()
			q.enqueue(j)
			q.mu.Unlock()
		}
	})
	return true
}

// next pops host's next job.
func (q *Queue) next(host string) (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hosts[host]
	if h == nil || len(h.jobs) == 0 {
		return Job{}, false
	}
	j := h.jobs[0]
	h.jobs[0] = Job{}
	h.jobs = h.jobs[1:]
	q.queued--
	delete(q.pending, j.key())
	return j, true
}

// release ends a worker's turn on host. q.mu is held.
func (q *Queue) release(host string) {
	h := q.hosts[host]
	if h == nil {
		return
	}
	h.running--
	if h.running <= 0 && len(h.jobs) == 0 {
		delete(q.hosts, host)
	}
}

func (q *Queue) verify(ctx context.Context, j Job) {
	ctx, cancel := context.WithTimeout(ctx, q.opts.Timeout)
	defer cancel()
	verify := q.opts.Verify
	if j.UseCache {
		verify = q.opts.VerifyCached
	}
	r, err := verify(ctx, j.Namespace, j.Image)
	verdict := vouch.Undecided
	if err == nil && r != nil {
		verdict = r.Verdict
	}
	if err != nil && ctx.Err() == nil {
		q.opts.Logger.Warn("pre-verification could not decide", "image", j.Image, "namespace", j.Namespace, "source", j.Source, "error", err.Error())
	}
	if q.opts.OnDone != nil {
		q.opts.OnDone(j.Source, verdict)
	}
	if err == nil && r != nil && j.Namespace == "" && !j.UseCache {
		q.scopes(ctx, j, r)
	}
}

// scopes queues j's image again, by digest, for each namespace of
// QueueOptions.Scopes under whose policy a verdict on it is cached: j
// named no namespace, and replaced the verdict of requests that name none
// only. Each such job counts in OnEnqueue as any.
func (q *Queue) scopes(ctx context.Context, j Job, r *vouch.Report) {
	if q.opts.Scopes == nil || q.opts.Cached == nil {
		return
	}
	// The digest the verification pinned (a tag that moved names a new
	// one), else the job's own when it names one.
	pinned, err := vouch.ParseReference(r.Reference)
	if err != nil || pinned.Digest == "" {
		if pinned, err = vouch.ParseReference(j.Image); err != nil || pinned.Digest == "" {
			return
		}
	}
	image := pinned.Name() + "@" + pinned.Digest.String()
	for _, ns := range q.opts.Scopes() {
		if ctx.Err() != nil {
			return
		}
		if q.opts.Cached(ctx, ns, image) {
			q.Enqueue(Job{Namespace: ns, Image: image, Registry: j.Registry, Source: j.Source})
		}
	}
}

// registryOf returns the registry host of image, or image itself when it
// does not parse (the engine then refuses it).
func registryOf(image string) string {
	ref, err := vouch.ParseReference(image)
	if err != nil {
		return image
	}
	return ref.Registry
}
