package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
)

// syncBuffer is a log sink that tests read while the cache writes.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// testKey and otherKey are HMAC keys of MinHMACKeyBytes.
var (
	testKey  = []byte("test-hmac-key-0123456789abcdefghij")
	otherKey = []byte("other-hmac-key-0123456789abcdefghi")
)

func newRedis(t *testing.T, addr string, logs *syncBuffer, errs *atomic.Int64) *cache.Redis {
	t.Helper()
	r, err := cache.NewRedis(cache.RedisOptions{
		Addr:          addr,
		KeyPrefix:     "test:" + t.Name() + ":",
		RetryInterval: 100 * time.Millisecond,
		Logger:        slog.New(slog.NewJSONHandler(logs, nil)),
		OnError:       func(string, error) { errs.Add(1) },
		HMACKey:       testKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRedisShared runs two caches, as two replicas of a server would, on one
// real redis-server: what one writes the other reads, with the TTL that is
// left; with Redis killed both keep answering from their local layer, count
// the failures and log the change once; when Redis is back, so are they.
func TestRedisShared(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	logsA, logsB := newSyncBuffer(), newSyncBuffer()
	var errsA, errsB atomic.Int64
	a := newRedis(t, srv.Addr, logsA, &errsA)
	b := newRedis(t, srv.Addr, logsB, &errsB)

	a.Set(ctx, "verdict", []byte("allowed"), 2*time.Second)
	if v, ok := b.Get(ctx, "verdict"); !ok || string(v) != "allowed" {
		t.Fatalf("b.Get = %q, %v; want what a wrote", v, ok)
	}
	if _, ok := b.Get(ctx, "absent"); ok {
		t.Fatal("a miss was a hit")
	}
	a.Set(ctx, "short", []byte("x"), 300*time.Millisecond)
	if _, ok := b.Get(ctx, "short"); !ok {
		t.Fatal("b did not find short")
	}
	time.Sleep(400 * time.Millisecond)
	if _, ok := b.Get(ctx, "short"); ok {
		t.Fatal("b kept a value past the TTL Redis had left on it")
	}
	if errsA.Load()+errsB.Load() != 0 || !a.Available() || !b.Available() {
		t.Fatalf("errors while Redis was up: %d, %d", errsA.Load(), errsB.Load())
	}

	srv.Kill()
	start := time.Now()
	for i := range 50 {
		// Both still answer what they hold locally, quickly.
		if v, ok := b.Get(ctx, "verdict"); !ok || string(v) != "allowed" {
			t.Fatalf("round %d: b lost its local copy with Redis down", i)
		}
		a.Set(ctx, "during-outage", []byte("local"), time.Minute)
		if _, ok := a.Get(ctx, "during-outage"); !ok {
			t.Fatalf("round %d: a cannot cache locally with Redis down", i)
		}
		b.Get(ctx, "only-in-redis")
		time.Sleep(10 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("50 rounds with Redis down took %v: the outage slows every request", elapsed)
	}
	if errsA.Load() == 0 || errsB.Load() == 0 || a.Available() || b.Available() {
		t.Fatalf("outage not noticed: errors a=%d b=%d, available a=%v b=%v", errsA.Load(), errsB.Load(), a.Available(), b.Available())
	}
	// One retry per RetryInterval (100ms) over ~0.5s, not one per request.
	if n := errsB.Load(); n > 15 {
		t.Fatalf("b tried Redis %d times in 50 requests: retries are not throttled", n)
	}
	if n := strings.Count(logsA.String(), "redis unavailable"); n != 1 {
		t.Fatalf("a logged the outage %d times, want once:\n%s", n, logsA.String())
	}

	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for !b.Available() || !a.Available() {
		if time.Now().After(deadline) {
			t.Fatal("the caches did not notice Redis was back")
		}
		b.Get(ctx, "probe")
		a.Get(ctx, "probe")
		time.Sleep(20 * time.Millisecond)
	}
	a.Set(ctx, "after", []byte("back"), time.Minute)
	if v, ok := b.Get(ctx, "after"); !ok || string(v) != "back" {
		t.Fatalf("after the restart b.Get = %q, %v", v, ok)
	}
	if n := strings.Count(logsB.String(), "redis available again"); n != 1 {
		t.Fatalf("b logged the recovery %d times, want once:\n%s", n, logsB.String())
	}
	for _, l := range []string{logsA.String(), logsB.String()} {
		if strings.Count(l, "\n") != 2 {
			t.Fatalf("want exactly two state-change lines, got:\n%s", l)
		}
	}
}

func TestRedisOversizedStaysLocal(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	mk := func() *cache.Redis {
		r, err := cache.NewRedis(cache.RedisOptions{Addr: srv.Addr, MaxValueBytes: 10, HMACKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	a, b := mk(), mk()
	a.Set(ctx, "big", []byte("more than ten bytes"), time.Minute)
	if _, ok := a.Get(ctx, "big"); !ok {
		t.Fatal("a lost its local copy")
	}
	if _, ok := b.Get(ctx, "big"); ok {
		t.Fatal("a value over MaxValueBytes went to Redis")
	}
	if _, err := cache.NewRedis(cache.RedisOptions{}); err == nil {
		t.Fatal("NewRedis without Addr succeeded")
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRedisClaimAndGetShared: of two caches on one real redis-server, one
// claims a key until its ttl passes; GetShared reads what the other wrote
// even when an older value is cached locally. With Redis gone, every
// caller holds a claim (it works alone).
func TestRedisClaimAndGetShared(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	var errs atomic.Int64
	a, b := newRedis(t, srv.Addr, newSyncBuffer(), &errs), newRedis(t, srv.Addr, newSyncBuffer(), &errs)
	if !a.Claim(ctx, "k", 300*time.Millisecond) {
		t.Fatal("first claim refused")
	}
	if b.Claim(ctx, "k", 300*time.Millisecond) || a.Claim(ctx, "k", 300*time.Millisecond) {
		t.Fatal("a second claim within the ttl was granted")
	}
	time.Sleep(400 * time.Millisecond)
	if !b.Claim(ctx, "k", time.Second) {
		t.Fatal("claim refused after the ttl passed")
	}

	a.Set(ctx, "v", []byte("old"), time.Minute)
	if v, ok := b.Get(ctx, "v"); !ok || string(v) != "old" {
		t.Fatalf("b reads %q %v", v, ok)
	}
	a.Set(ctx, "v", []byte("new"), time.Minute)
	if v, _ := b.Get(ctx, "v"); string(v) != "old" {
		t.Fatalf("b's local layer answers %q, want the old value (the test needs it)", v)
	}
	if v, ok := b.GetShared(ctx, "v"); !ok || string(v) != "new" {
		t.Fatalf("GetShared: %q %v, want the new value", v, ok)
	}
	if v, _ := b.Get(ctx, "v"); string(v) != "new" {
		t.Fatalf("after GetShared b answers %q, want it kept locally", v)
	}
	if errs.Load() != 0 {
		t.Fatalf("%d Redis errors", errs.Load())
	}

	srv.Kill()
	if !a.Claim(ctx, "k2", time.Second) || !b.Claim(ctx, "k2", time.Second) {
		t.Fatal("with Redis gone a claim was refused")
	}
}
