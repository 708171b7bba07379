package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/preverify"
)

// newPreverify returns the queue of pre-verification, verifying through
// eng's Refresh under each policy scope that scopes saw, each job bounded
// by timeout (--timeout) as well, and, with --events-token-file, the
// events endpoints that feed it.
func newPreverify(sf *serveFlags, eng *engine.Engine, scopes *preverify.Scopes, timeout time.Duration, metrics *server.Metrics, logger *slog.Logger) (*preverify.Queue, *preverify.Handler, error) {
	logger = logger.With("component", "preverify")
	queue, err := preverify.NewQueue(preverify.QueueOptions{
		Verify:       eng.Refresh,
		VerifyCached: eng.Verify,
		Resolve:      eng.ResolveUncached,
		Scopes:       scopes.Namespaces,
		Cached:       eng.HasVerdict,
		Timeout:      min(timeout, preverify.DefaultTimeout),
		MaxQueued:    sf.preverifyQueue,
		Rate:         sf.preverifyRate,
		PerRegistry:  sf.preverifyPerRegistry,
		OnEnqueue:    metrics.PreverifyEvent,
		OnDone:       metrics.Preverified,
		Logger:       logger,
	})
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	metrics.PreverifyQueue(queue.Len)
	if sf.eventsTokenFile == "" {
		return queue, nil, nil
	}
	token, err := preverify.ReadToken(sf.eventsTokenFile)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: fmt.Errorf("--events-token-file: %w", err)}
	}
	h, err := preverify.NewHandler(preverify.HandlerOptions{Queue: queue, Token: token, OnEvent: metrics.PreverifyEvent, Logger: logger})
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	return queue, h, nil
}
