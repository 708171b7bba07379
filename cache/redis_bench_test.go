package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
)

// BenchmarkRedis measures one Set and one Get that reaches Redis (the local
// layer holds one entry and the keys alternate, so every Get misses it), on
// a value the size of a typical cached report, with entries authenticated
// (mac) and not (insecure).
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	value := bytes.Repeat([]byte(`{"verdict":"allowed"}`), 100) // 2.1 KB
	for _, mode := range []string{"mac", "insecure"} {
		b.Run(mode, func(b *testing.B) {
			opts := cache.RedisOptions{
				Addr:      srv.Addr,
				KeyPrefix: mode + ":",
				Local:     cache.NewMemory(cache.MemoryOptions{MaxEntries: 1}),
				Logger:    slog.New(slog.DiscardHandler),
			}
			if mode == "mac" {
				opts.HMACKey = testKey
			} else {
				opts.InsecureUnauthenticated = true
			}
			r, err := cache.NewRedis(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			keys := []string{"verdict:a", "verdict:b"}
			b.Run("Set", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					r.Set(ctx, "verdict:"+strconv.Itoa(i%64), value, time.Minute)
				}
			})
			for _, k := range keys {
				r.Set(ctx, k, value, time.Minute)
			}
			b.Run("Get", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if _, ok := r.Get(ctx, keys[i%2]); !ok {
						b.Fatal("miss")
					}
				}
			})
		})
	}
}
