// Package reload swaps the configuration of a running server without ever
// half-applying it. A Source (Poll watches files; a Kubernetes controller
// would watch resources) builds each new configuration completely, as a
// Generation: verifiers with their trust material read, the policy, the
// executors of every namespace and the hash their verdicts are cached
// under. The Holder swaps it in with one atomic pointer store: a request
// pins the generation that served when it arrived (Holder.Pin) and is
// decided under it to the end; later requests see the new one. A change
// that does not build is rejected: the last good generation keeps serving
// and the Holder says why, once per distinct failure (a log line and
// Hooks, for metrics).
//
// The verdict cache needs no flush: verdicts are cached under the policy
// hash (engine.ExecutorFunc), which covers the content of every trust file,
// so a generation built from other trust material never finds a verdict of
// another.
package reload

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/engine"
)

// Generation is one configuration, built completely; it never changes.
type Generation struct {
	// Executors decide in each namespace, with the policy hash their
	// verdicts are cached under. Required.
	Executors *engine.NamespaceExecutors
	// PolicyHash is the hash Executors were built with: it identifies the
	// effective configuration, trust material included. Required.
	PolicyHash string
	// Verifiers names the verifiers, for the log. Optional.
	Verifiers []string
	// Loaded is when the generation was built. Optional; Holder.Swap sets
	// it when zero.
	Loaded time.Time
}

// Hooks report what the Holder does, for metrics. Every field is optional;
// none may block.
type Hooks struct {
	// OnServe is called with each generation that starts serving, the
	// first one included.
	OnServe func(g *Generation)
	// OnReload is called once per change a Source reports: err nil when
	// its generation serves now (after OnServe), else why the last good
	// one still does. A failure reported again (same fingerprint, same
	// error) is not reported twice.
	OnReload func(err error)
}

// HolderOptions configure a Holder.
type HolderOptions struct {
	// Hooks report swaps and rejected changes. Optional.
	Hooks Hooks
	// Logger logs swaps and rejected changes. Optional; default
	// slog.Default().
	Logger *slog.Logger
}

// Holder holds the generation that serves and swaps in new ones. Its
// Executor method is the engine's ExecutorFunc. It is safe for concurrent
// use.
type Holder struct {
	opts HolderOptions
	cur  atomic.Pointer[Generation]

	mu          sync.Mutex
	lastFailure failure
}

// failure identifies a rejected change, so that it is reported once.
type failure struct{ fingerprint, msg string }

// NewHolder returns a Holder serving first. A nil first starts it empty:
// until the first Swap, Executor answers no executor (the engine then
// cannot decide, and callers fail closed) and Current is nil. A Source
// that may have no valid configuration at start (the Kubernetes source,
// whose status says why) starts it so, and the server is not ready until
// a generation serves.
func NewHolder(first *Generation, opts HolderOptions) (*Holder, error) {
	if first != nil {
		if err := check(first); err != nil {
			return nil, err
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Holder{opts: opts}
	if first != nil {
		h.store(first)
	}
	return h, nil
}

func check(g *Generation) error {
	if g == nil || g.Executors == nil || g.PolicyHash == "" {
		return errors.New("reload: a Generation needs Executors and PolicyHash")
	}
	return nil
}

func (h *Holder) store(g *Generation) {
	if g.Loaded.IsZero() {
		g.Loaded = time.Now()
	}
	h.cur.Store(g)
	if f := h.opts.Hooks.OnServe; f != nil {
		f(g)
	}
}

// Current returns the generation that serves new requests; nil before
// the first one of a Holder started empty.
func (h *Holder) Current() *Generation { return h.cur.Load() }

type pinKey struct{}

// Pin returns ctx with the current generation pinned: Executor, asked
// with ctx or a context derived from it, answers from that generation even
// after a swap. It is the server's Options.RequestContext.
func (h *Holder) Pin(ctx context.Context) context.Context {
	return context.WithValue(ctx, pinKey{}, h.cur.Load())
}

// generation returns the generation pinned in ctx, else the current one.
func (h *Holder) generation(ctx context.Context) *Generation {
	if g, ok := ctx.Value(pinKey{}).(*Generation); ok && g != nil {
		return g
	}
	return h.cur.Load()
}

// Executor returns the executor of namespace and the hash its verdicts are
// cached under, both from one generation: the one pinned in ctx, else the
// current one. It is an engine.ExecutorFunc.
// Before the first generation of a Holder started empty, it returns no
// executor.
func (h *Holder) Executor(ctx context.Context, namespace string) (*vouch.Executor, string) {
	g := h.generation(ctx)
	if g == nil {
		return nil, ""
	}
	return g.Executors.Executor(namespace)
}

// Swap makes g serve new requests; requests that pinned the generation
// before finish under it. An invalid g (no executors, no hash) is
// rejected instead.
func (h *Holder) Swap(g *Generation) {
	if err := check(g); err != nil {
		h.Reject("", err)
		return
	}
	old := h.cur.Load()
	h.store(g)
	h.mu.Lock()
	h.lastFailure = failure{}
	h.mu.Unlock()
	previous := ""
	if old != nil {
		previous = Short(old.PolicyHash)
	}
	h.opts.Logger.Info("configuration reloaded", "policyHash", Short(g.PolicyHash), "previous", previous, "verifiers", g.Verifiers)
	if f := h.opts.Hooks.OnReload; f != nil {
		f(nil)
	}
}

// Reject reports a change that did not build (fingerprint identifies what
// the Source saw, "" when it could not tell): the current generation keeps
// serving. The same failure reported again in a row is logged and counted
// once.
func (h *Holder) Reject(fingerprint string, err error) {
	if err == nil {
		return
	}
	f := failure{fingerprint, err.Error()}
	h.mu.Lock()
	again := f == h.lastFailure
	h.lastFailure = f
	h.mu.Unlock()
	if again {
		return
	}
	if cur := h.cur.Load(); cur != nil {
		h.opts.Logger.Error("configuration change rejected; still serving the last good configuration",
			"error", err.Error(), "fingerprint", Short(fingerprint), "policyHash", Short(cur.PolicyHash))
	} else {
		h.opts.Logger.Error("configuration rejected; no configuration serves yet (not ready)",
			"error", err.Error(), "fingerprint", Short(fingerprint))
	}
	if f := h.opts.Hooks.OnReload; f != nil {
		f(err)
	}
}

// Short returns the prefix of a hash that logs and metrics show: 12 hex
// digits.
func Short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// Source builds configurations from where they come from and hands each
// change to h: Swap for a generation that built, Reject for one that did
// not, until ctx ends. Poll is the Source of files.
type Source interface {
	Start(ctx context.Context, h *Holder) error
}
