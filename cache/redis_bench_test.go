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
// a value the size of a typical cached report.
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	value := bytes.Repeat([]byte(`{"verdict":"allowed"}`), 100) // 2.1 KB
	r, err := cache.NewRedis(cache.RedisOptions{
		Addr:   srv.Addr,
		Local:  cache.NewMemory(cache.MemoryOptions{MaxEntries: 1}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	keys := []string{"verdict:a", "verdict:b"}
	b.Run("Set", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r.Set(ctx, keys[i%2]+strconv.Itoa(i%64), value, time.Minute)
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
}
