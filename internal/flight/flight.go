// Package flight holds Group, which runs one call per key at a time and
// shares its result with every caller that asks for the key meanwhile
// ("single flight"), under a context of its own: the call outlives a
// caller that gives up while others still wait, and is cancelled when the
// last one gives up, after an optional linger that lets a retry find it
// still running.
package flight

import (
	"context"
	"sync"
	"time"
)

// Group runs one function per key at a time and shares its result with
// every caller that asks for the key meanwhile. The function runs under a
// context of its own, which keeps the first caller's values (a request id,
// for logs) but not its deadline: it is cancelled when the last waiting
// caller gives up (after the linger that caller passed) and is detached
// from each caller's cancellation otherwise. The zero Group is ready to
// use; a Group must not be copied after first use.
type Group[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

// call is one run of a function, with the callers waiting for it.
type call[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Do returns what fn returns for key, starting fn unless a call for key
// runs already, in which case it waits for that call's result. When ctx
// ends first, Do returns ctx's error at once, and the call goes on for the
// other callers waiting for it; when none is left, it is cancelled linger
// later (at once when linger is not positive), unless another caller
// joined it meanwhile. A caller arriving after the call was cancelled
// starts a new one.
func (g *Group[T]) Do(ctx context.Context, key string, linger time.Duration, fn func(context.Context) (T, error)) (T, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call[T]{}
	}
	c, ok := g.calls[key]
	if !ok {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call[T]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			defer cancel()
			c.val, c.err = fn(wctx)
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()
	return g.wait(ctx, key, linger, c)
}

// Join waits for the call for key that runs already, as Do would, and
// reports whether there was one; it starts nothing.
func (g *Group[T]) Join(ctx context.Context, key string, linger time.Duration) (T, error, bool) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		g.mu.Unlock()
		var zero T
		return zero, nil, false
	}
	c.waiters++
	g.mu.Unlock()
	v, err := g.wait(ctx, key, linger, c)
	return v, err, true
}

// wait waits for c, which the caller was counted a waiter of, or for ctx.
func (g *Group[T]) wait(ctx context.Context, key string, linger time.Duration, c *call[T]) (T, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	c.waiters--
	if c.waiters == 0 {
		if linger <= 0 {
			g.abandon(key, c)
		} else {
			// A retry within linger joins the call and keeps it alive.
			time.AfterFunc(linger, func() {
				g.mu.Lock()
				if c.waiters == 0 {
					g.abandon(key, c)
				}
				g.mu.Unlock()
			})
		}
	}
	g.mu.Unlock()
	var zero T
	return zero, ctx.Err()
}

// abandon cancels c, which no caller waits for any more; later callers
// start afresh rather than join it. g.mu is held.
func (g *Group[T]) abandon(key string, c *call[T]) {
	if g.calls[key] == c {
		delete(g.calls, key)
	}
	c.cancel()
}
