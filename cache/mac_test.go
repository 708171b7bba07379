package cache_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
)

// authed is a Redis cache under test with what it rejected and logged.
type authed struct {
	*cache.Redis
	logs *syncBuffer

	mu      sync.Mutex
	reasons []string
}

func (a *authed) rejected() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reasons...)
}

// TestRedisAuthenticated writes entries with one cache and reads them with
// others, on a real redis-server, and forges, copies, cuts and re-keys
// entries behind their backs with a raw client: only entries sealed for
// their key by a replica with the same (or the previous) key are read; the
// others are misses, counted with their reason and logged once.
func TestRedisAuthenticated(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { raw.Close() })
	prefix := "test:" + t.Name() + ":"
	open := func(t *testing.T, mod func(*cache.RedisOptions)) *authed {
		t.Helper()
		a := &authed{logs: newSyncBuffer()}
		opts := cache.RedisOptions{
			Addr:       srv.Addr,
			KeyPrefix:  prefix,
			Logger:     slog.New(slog.NewJSONHandler(a.logs, nil)),
			HMACKey:    testKey,
			OnRejected: func(reason string) { a.mu.Lock(); a.reasons = append(a.reasons, reason); a.mu.Unlock() },
		}
		if mod != nil {
			mod(&opts)
		}
		r, err := cache.NewRedis(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		a.Redis = r
		return a
	}
	rawGet := func(t *testing.T, key string) []byte {
		t.Helper()
		v, err := raw.Get(ctx, prefix+key).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rawSet := func(t *testing.T, key string, v []byte) {
		t.Helper()
		if err := raw.Set(ctx, prefix+key, v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	const allowed = `{"verdict":"allowed","subject":{"reference":"r.example/b@sha256:00"},"graph":"SECRET-PAYLOAD"}`
	// wantRejected checks that every Get of key by r misses, that each is
	// counted with reason, and that one line was logged for them all,
	// with neither the keys nor the entry beyond its first bytes.
	wantRejected := func(t *testing.T, r *authed, key, reason string) {
		t.Helper()
		for range 20 {
			if v, ok := r.Get(ctx, key); ok {
				t.Fatalf("Get(%s) = %q: a %s entry was read", key, v, reason)
			}
		}
		got := r.rejected()
		if len(got) != 20 || got[0] != reason || got[19] != reason || r.Rejected() != 20 {
			t.Fatalf("rejections %v (Rejected %d), want 20 × %q", got, r.Rejected(), reason)
		}
		logs := r.logs.String()
		if n := strings.Count(logs, "failed authentication"); n != 1 || !strings.Contains(logs, `"reason":"`+reason+`"`) {
			t.Fatalf("want one line with reason %s, got:\n%s", reason, logs)
		}
		for _, secret := range []string{string(testKey), string(otherKey), "SECRET-PAYLOAD"} {
			if strings.Contains(logs, secret) {
				t.Fatalf("the log shows %q:\n%s", secret, logs)
			}
		}
	}

	t.Run("shared", func(t *testing.T) {
		a, b := open(t, nil), open(t, nil)
		a.Set(ctx, "verdict:a", []byte(allowed), time.Minute)
		if v, ok := b.Get(ctx, "verdict:a"); !ok || string(v) != allowed {
			t.Fatalf("b.Get = %q, %v; want what a wrote", v, ok)
		}
		if string(rawGet(t, "verdict:a")) == allowed {
			t.Fatal("the entry went to Redis without a MAC")
		}
		if b.Rejected() != 0 || b.logs.String() != "" {
			t.Fatalf("rejected %d; logs:\n%s", b.Rejected(), b.logs.String())
		}
	})

	t.Run("forged", func(t *testing.T) {
		b := open(t, nil)
		b.Set(ctx, "verdict:local", []byte("mine"), time.Minute)
		rawSet(t, "verdict:forged", []byte(allowed))
		wantRejected(t, b, "verdict:forged", cache.RejectUnsigned)
		if v, ok := b.Get(ctx, "verdict:local"); !ok || string(v) != "mine" {
			t.Fatalf("the local layer lost an entry: %q, %v", v, ok)
		}
		// The replica's own verdict replaces the forged one.
		b.Set(ctx, "verdict:forged", []byte("denied"), time.Minute)
		if v, ok := open(t, nil).Get(ctx, "verdict:forged"); !ok || string(v) != "denied" {
			t.Fatalf("after a Set: %q, %v", v, ok)
		}
	})

	t.Run("copied", func(t *testing.T) {
		a, b := open(t, nil), open(t, nil)
		a.Set(ctx, "verdict:image-a", []byte(allowed), time.Minute)
		rawSet(t, "verdict:image-b", rawGet(t, "verdict:image-a"))
		wantRejected(t, b, "verdict:image-b", cache.RejectMAC)
		if _, ok := b.Get(ctx, "verdict:image-a"); !ok {
			t.Fatal("the original no longer reads")
		}
	})

	t.Run("another prefix", func(t *testing.T) {
		a := open(t, nil)
		b := open(t, func(o *cache.RedisOptions) { o.KeyPrefix = prefix + "other:" })
		a.Set(ctx, "verdict:x", []byte(allowed), time.Minute)
		rawSet(t, "other:verdict:x", rawGet(t, "verdict:x"))
		wantRejected(t, b, "verdict:x", cache.RejectMAC)
	})

	t.Run("tampered", func(t *testing.T) {
		a := open(t, nil)
		a.Set(ctx, "verdict:t", []byte(allowed), time.Minute)
		sealed := rawGet(t, "verdict:t")
		for _, tc := range []struct {
			name, reason string
			entry        []byte
		}{
			{"truncated seal", cache.RejectTruncated, sealed[:20]},
			{"truncated value", cache.RejectMAC, sealed[:len(sealed)-1]},
			{"value changed", cache.RejectMAC, []byte(strings.Replace(string(sealed), "allowed", "ALLOWED", 1))},
			{"expiry changed", cache.RejectMAC, append(append(append([]byte(nil), sealed[:5]...), sealed[5]+1), sealed[6:]...)},
			{"version", cache.RejectVersion, append([]byte("vch2"), sealed[4:]...)},
			{"empty", cache.RejectUnsigned, []byte{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := "verdict:" + tc.name
				rawSet(t, key, tc.entry)
				wantRejected(t, open(t, nil), key, tc.reason)
			})
		}
	})

	t.Run("keys", func(t *testing.T) {
		old := open(t, func(o *cache.RedisOptions) { o.HMACKey = otherKey })
		old.Set(ctx, "verdict:old", []byte("written with the old key"), time.Minute)
		rolled := open(t, func(o *cache.RedisOptions) { o.HMACPreviousKey = otherKey })
		if v, ok := rolled.Get(ctx, "verdict:old"); !ok || string(v) != "written with the old key" {
			t.Fatalf("the previous key does not read: %q, %v", v, ok)
		}
		// What the rolled replica writes, the old one cannot read (the
		// previous key never signs), a new one can.
		rolled.Set(ctx, "verdict:new", []byte("new"), time.Minute)
		if _, ok := open(t, nil).Get(ctx, "verdict:new"); !ok {
			t.Fatal("a replica with the new key cannot read a rolled replica's entry")
		}
		wantRejected(t, old, "verdict:new", cache.RejectMAC)
		// A replica with another key entirely rejects both.
		stranger := open(t, func(o *cache.RedisOptions) { o.HMACKey = []byte(strings.Repeat("s", cache.MinHMACKeyBytes)) })
		wantRejected(t, stranger, "verdict:old", cache.RejectMAC)
	})

	t.Run("expiry", func(t *testing.T) {
		a, b := open(t, nil), open(t, nil)
		a.Set(ctx, "verdict:short", []byte(allowed), 300*time.Millisecond)
		// Whoever can write to Redis keeps the entry longer; the replicas
		// still drop it when its writer said.
		if err := raw.Expire(ctx, prefix+"verdict:short", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Get(ctx, "verdict:short"); !ok {
			t.Fatal("b did not read the entry")
		}
		c := open(t, nil)
		time.Sleep(400 * time.Millisecond)
		if v, ok := b.Get(ctx, "verdict:short"); ok {
			t.Fatalf("b kept %q past its TTL", v)
		}
		if v, ok := c.Get(ctx, "verdict:short"); ok {
			t.Fatalf("c read %q past its sealed expiry", v)
		}
		if c.Rejected() != 0 {
			t.Fatal("an expired entry was counted as rejected")
		}
	})

	t.Run("insecure", func(t *testing.T) {
		insecure := open(t, func(o *cache.RedisOptions) { o.HMACKey, o.InsecureUnauthenticated = nil, true })
		insecure.Set(ctx, "verdict:plain", []byte(allowed), time.Minute)
		if string(rawGet(t, "verdict:plain")) != allowed {
			t.Fatal("InsecureUnauthenticated changed what is written")
		}
		rawSet(t, "verdict:plain-forged", []byte(allowed))
		if _, ok := open(t, func(o *cache.RedisOptions) { o.HMACKey, o.InsecureUnauthenticated = nil, true }).Get(ctx, "verdict:plain-forged"); !ok {
			t.Fatal("InsecureUnauthenticated does not read what it trusts")
		}
		wantRejected(t, open(t, nil), "verdict:plain", cache.RejectUnsigned)
	})
}

func TestNewRedisKeys(t *testing.T) {
	short := []byte(strings.Repeat("k", cache.MinHMACKeyBytes-1))
	for _, tc := range []struct {
		name string
		opts cache.RedisOptions
		want string
	}{
		{"no key", cache.RedisOptions{}, "HMACKey is required"},
		{"short key", cache.RedisOptions{HMACKey: short}, "want at least 32"},
		{"short previous key", cache.RedisOptions{HMACKey: testKey, HMACPreviousKey: short}, "HMACPreviousKey has 31 bytes"},
		{"previous key alone", cache.RedisOptions{HMACPreviousKey: testKey}, "needs HMACKey"},
		{"key and insecure", cache.RedisOptions{HMACKey: testKey, InsecureUnauthenticated: true}, "exclude each other"},
		{"key", cache.RedisOptions{HMACKey: testKey, HMACPreviousKey: otherKey}, ""},
		{"insecure", cache.RedisOptions{InsecureUnauthenticated: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Addr = "127.0.0.1:1"
			r, err := cache.NewRedis(tc.opts)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "":
				r.Close()
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			case strings.Contains(err.Error(), string(short)):
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

func TestReadHMACKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := strings.Repeat("0123456789abcdef", 3)
	got, err := cache.ReadHMACKey(write("key", "\n  "+key+"\n"))
	if err != nil || string(got) != key {
		t.Fatalf("ReadHMACKey = %q, %v; want the content without white space", got, err)
	}
	shortKey := "  not-quite-thirty-two-bytes-long \n"
	_, err = cache.ReadHMACKey(write("short", shortKey))
	if err == nil || !strings.Contains(err.Error(), "31 bytes of key material") || strings.Contains(err.Error(), "thirty") {
		t.Fatalf("short key: %v", err)
	}
	_, err = cache.ReadHMACKey(write("huge", strings.Repeat("k", 5000)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge file: %v", err)
	}
	if _, err := cache.ReadHMACKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
