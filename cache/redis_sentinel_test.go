package cache_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
)

// sentinelCounts are what a cache behind Sentinels reports through its
// hooks.
type sentinelCounts struct {
	errors, outages, hits, misses atomic.Int64
}

// sentinelPassword is what the Sentinels of the tests require.
const sentinelPassword = "sentinel-test-password-5e1f"

func newSentinelCache(t *testing.T, s *redistest.Sentinels, logs *syncBuffer, n *sentinelCounts) *cache.Redis {
	t.Helper()
	r, err := cache.NewRedis(cache.RedisOptions{
		SentinelAddrs:    s.Addrs,
		MasterName:       s.MasterName,
		SentinelPassword: sentinelPassword,
		KeyPrefix:        "test:",
		RetryInterval:    100 * time.Millisecond,
		Logger:           slog.New(slog.NewJSONHandler(logs, nil)),
		OnError:          func(string, error) { n.errors.Add(1) },
		OnUnavailable:    func() { n.outages.Add(1) },
		OnLookup: func(hit bool) {
			if hit {
				n.hits.Add(1)
			} else {
				n.misses.Add(1)
			}
		},
		HMACKey: testKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRedisSentinelFailover runs two caches, as two replicas of a server
// would, on a real Redis master behind three real Sentinels, and kills the
// master (SIGKILL): while the Sentinels fail over to the replica, the caches
// keep answering from their local layer, each operation within its bound,
// never with a wrong value; they count the outage; then they follow the
// Sentinels to the new master, which holds what was written before the
// crash and takes what is written after.
func TestRedisSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartSentinels(t, sentinelPassword)
	oldMaster := s.Master()
	logsA, logsB := newSyncBuffer(), newSyncBuffer()
	var na, nb sentinelCounts
	a := newSentinelCache(t, s, logsA, &na)
	b := newSentinelCache(t, s, logsB, &nb)
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The Sentinels require their password: without it, no master.
	noPassword, err := cache.NewRedis(cache.RedisOptions{SentinelAddrs: s.Addrs, MasterName: s.MasterName, HMACKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := noPassword.Ping(ctx); err == nil {
		t.Fatal("a cache without the Sentinels' password reached the master")
	}
	noPassword.Close()

	a.Set(ctx, "before", []byte("allowed"), time.Minute)
	if v, ok := b.Get(ctx, "before"); !ok || string(v) != "allowed" {
		t.Fatalf("b.Get = %q, %v; want what a wrote", v, ok)
	}
	if nb.hits.Load() != 1 {
		t.Fatalf("b counted %d Redis hits, want 1", nb.hits.Load())
	}
	// The replica has it before the master dies (replication is
	// asynchronous: WAIT for it).
	raw := redis.NewClient(&redis.Options{Addr: oldMaster, Protocol: 2, DisableIdentity: true})
	if n, err := raw.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v: the replica did not take the write", n, err)
	}
	raw.Close()

	killed := s.KillMaster()
	if killed != oldMaster {
		t.Fatalf("killed %s, the master was %s", killed, oldMaster)
	}
	start := time.Now()
	failedOver := make(chan string, 1)
	go func() {
		addr, err := s.WaitFailover(oldMaster, 25*time.Second)
		if err != nil {
			t.Error(err)
		}
		failedOver <- addr
	}()

	// Drive both caches through the failover and after it, until both use
	// Redis again: every operation bounded, every answer right.
	var newMaster string
	var ops, slow int
	var longest time.Duration
	deadline := start.Add(30 * time.Second)
	for i := 0; newMaster == "" || !a.Available() || !b.Available(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: new master %q, available a=%v b=%v\nlogs a:\n%s", newMaster, a.Available(), b.Available(), logsA.String())
		}
		select {
		case newMaster = <-failedOver:
			t.Logf("the sentinels named %s master %v after the kill", newMaster, time.Since(start).Round(time.Millisecond))
		default:
		}
		opStart := time.Now()
		key := fmt.Sprintf("during-%d", i)
		a.Set(ctx, key, []byte(key), time.Minute)
		if v, ok := a.Get(ctx, key); !ok || string(v) != key {
			t.Fatalf("a lost %s: %q, %v", key, v, ok)
		}
		if v, ok := b.Get(ctx, key); ok && string(v) != key {
			t.Fatalf("b read %q under %s", v, key)
		}
		if v, ok := b.Get(ctx, "before"); !ok || string(v) != "allowed" {
			t.Fatalf("b lost its copy of before during the failover: %q, %v", v, ok)
		}
		ops += 4
		// Each operation is bounded by the Redis timeout (250 ms); a hang
		// would show as seconds. The bound is loose: the machine is shared.
		if d := time.Since(opStart); d > longest {
			longest = d
		}
		if d := time.Since(opStart); d > 4*cache.DefaultRedisTimeout+time.Second {
			slow++
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("both caches used Redis again %v after the kill; %d operations meanwhile, the slowest round of 4 took %v",
		time.Since(start).Round(time.Millisecond), ops, longest.Round(time.Millisecond))
	if slow > 0 {
		t.Fatalf("%d rounds of 4 operations took over %v: an operation was not bounded by the Redis timeout", slow, 4*cache.DefaultRedisTimeout+time.Second)
	}
	if na.errors.Load() == 0 || nb.errors.Load() == 0 || na.outages.Load() == 0 || nb.outages.Load() == 0 {
		t.Fatalf("the outage was not counted: errors a=%d b=%d, outages a=%d b=%d", na.errors.Load(), nb.errors.Load(), na.outages.Load(), nb.outages.Load())
	}
	for name, l := range map[string]string{"a": logsA.String(), "b": logsB.String()} {
		if !strings.Contains(l, "redis unavailable") || !strings.Contains(l, "redis available again") || !strings.Contains(l, s.MasterName) {
			t.Fatalf("%s did not log the outage and the recovery, naming the master:\n%s", name, l)
		}
		if strings.Contains(l, sentinelPassword) {
			t.Fatalf("%s logged the Sentinels' password:\n%s", name, l)
		}
	}

	// A cache with an empty local layer (a replica started after the
	// failover) reads from the new master what was written before the
	// crash, and what a writes now.
	var nc sentinelCounts
	c := newSentinelCache(t, s, newSyncBuffer(), &nc)
	if v, ok := c.Get(ctx, "before"); !ok || string(v) != "allowed" {
		t.Fatalf("the value written before the crash is lost: %q, %v", v, ok)
	}
	a.Set(ctx, "after", []byte("denied"), time.Minute)
	if v, ok := c.Get(ctx, "after"); !ok || string(v) != "denied" {
		t.Fatalf("c.Get(after) = %q, %v", v, ok)
	}
	if nc.hits.Load() != 2 || nc.errors.Load() != 0 {
		t.Fatalf("c counted %d hits and %d errors, want 2 and 0", nc.hits.Load(), nc.errors.Load())
	}
	raw = redis.NewClient(&redis.Options{Addr: newMaster, Protocol: 2, DisableIdentity: true})
	defer raw.Close()
	if n, err := raw.Exists(ctx, "test:after", "test:before").Result(); err != nil || n != 2 {
		t.Fatalf("the new master %s holds %d of the two keys (%v)", newMaster, n, err)
	}
}

// TestRedisTargetOptions checks that NewRedis takes one Redis server or a
// master behind Sentinels, and says what is wrong otherwise.
func TestRedisTargetOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts cache.RedisOptions
		want string // "" for no error
	}{
		{"addr", cache.RedisOptions{Addr: "127.0.0.1:1"}, ""},
		{"sentinels", cache.RedisOptions{SentinelAddrs: []string{"127.0.0.1:1", "[::1]:2"}, MasterName: "m"}, ""},
		{"neither", cache.RedisOptions{}, "Addr (or SentinelAddrs and MasterName) is required"},
		{"both", cache.RedisOptions{Addr: "127.0.0.1:1", SentinelAddrs: []string{"127.0.0.1:2"}, MasterName: "m"}, "exclude each other"},
		{"no master name", cache.RedisOptions{SentinelAddrs: []string{"127.0.0.1:2"}}, "needs MasterName"},
		{"master name without sentinels", cache.RedisOptions{Addr: "127.0.0.1:1", MasterName: "m"}, "need SentinelAddrs"},
		{"no port", cache.RedisOptions{SentinelAddrs: []string{"sentinel"}, MasterName: "m"}, `"sentinel" is not HOST:PORT`},
		{"bad port", cache.RedisOptions{SentinelAddrs: []string{"sentinel:http"}, MasterName: "m"}, `"sentinel:http" is not HOST:PORT`},
		{"no host", cache.RedisOptions{SentinelAddrs: []string{":26379"}, MasterName: "m"}, `":26379" is not HOST:PORT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.HMACKey = testKey
			r, err := cache.NewRedis(tc.opts)
			if r != nil {
				r.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
