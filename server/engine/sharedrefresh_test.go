package engine_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// TestTagRefreshSharedAcrossReplicas: three replicas sharing a real Redis
// hold the same tag past TagTTL; the tag has moved. One of them resolves
// it again (one registry request for the three), and the other two take
// its result from Redis: each answers the new digest soon after, none
// resolving the tag itself.
func TestTagRefreshSharedAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	reg := newFlakyRegistry(t)
	p := testbed.NewPusher(t, reg.Host, "shared/app")
	first := p.Image("v1", "first")
	st, err := registry.New(registry.Options{PlainHTTP: true, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	exec := *f.exec
	exec.Store = st
	srv := redistest.Start(t)
	const ttl = 2 * time.Second
	var refreshes atomic.Int64
	var replicas []*engine.Engine
	for range 3 {
		c, err := cache.NewRedis(cache.RedisOptions{Addr: srv.Addr, HMACKey: []byte("0123456789abcdef0123456789abcdef"), KeyPrefix: "shared:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		replicas = append(replicas, f.engine(t, engine.Options{
			Executor:    func(context.Context, string) (*vouch.Executor, string) { return &exec, "h1" },
			Cache:       c,
			TagTTL:      ttl,
			TagMaxStale: time.Minute,
			Hooks:       engine.Hooks{OnTagRefresh: func(error) { refreshes.Add(1) }},
			Logger:      slog.New(slog.DiscardHandler),
		}))
	}
	image := reg.Host + "/shared/app:v1"
	resolve := func(e *engine.Engine) string {
		t.Helper()
		ref, err := e.Resolve(ctx, "", image)
		if err != nil {
			t.Fatal(err)
		}
		return ref.Digest.String()
	}

	reg.requests.Store(0) // the pushes
	for i, e := range replicas {
		if d := resolve(e); d != first.Digest.String() {
			t.Fatalf("replica %d: %s, want %s", i, d, first.Digest)
		}
	}
	if n := reg.requests.Load(); n != 1 {
		t.Fatalf("%d registry requests for three replicas to resolve one tag, want 1 (the others read Redis)", n)
	}

	second := p.Image("v1", "second")
	time.Sleep(ttl + 100*time.Millisecond)
	reg.requests.Store(0)
	start := time.Now()
	for i, e := range replicas {
		for resolve(e) != second.Digest.String() {
			if time.Since(start) > ttl {
				t.Fatalf("replica %d still answers the old digest %v after the refresh", i, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n, r := reg.requests.Load(), refreshes.Load(); n != 1 || r != 1 {
		t.Fatalf("%d registry requests and %d refreshes for three replicas past TagTTL, want 1 and 1", n, r)
	}
}
