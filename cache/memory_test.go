package cache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/internal/testbed"
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	clk := testbed.NewClock(time.Unix(1_000_000, 0))

	t.Run("ttl", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
		m.Set(ctx, "a", []byte("1"), time.Minute)
		m.Set(ctx, "zero", []byte("z"), 0)
		if v, ok := m.Get(ctx, "a"); !ok || string(v) != "1" {
			t.Fatalf("Get(a) = %q, %v", v, ok)
		}
		if _, ok := m.Get(ctx, "zero"); ok {
			t.Fatal("a zero TTL stored a value")
		}
		clk.Advance(time.Minute)
		if _, ok := m.Get(ctx, "a"); ok {
			t.Fatal("an expired value was returned")
		}
		if m.Len() != 0 {
			t.Fatalf("expired entry kept: Len = %d", m.Len())
		}
	})

	t.Run("least recently used goes first", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{MaxEntries: 3, Now: clk.Now})
		for _, k := range []string{"a", "b", "c"} {
			m.Set(ctx, k, []byte(k), time.Hour)
		}
		m.Get(ctx, "a") // a is now the most recently used
		m.Set(ctx, "d", []byte("d"), time.Hour)
		if _, ok := m.Get(ctx, "b"); ok {
			t.Fatal("b should have been evicted")
		}
		for _, k := range []string{"a", "c", "d"} {
			if _, ok := m.Get(ctx, k); !ok {
				t.Fatalf("%s was evicted", k)
			}
		}
	})

	t.Run("bytes bound", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{MaxBytes: 1000, Now: clk.Now})
		big := []byte(strings.Repeat("x", 240))
		for i := range 10 {
			m.Set(ctx, fmt.Sprint(i), big, time.Hour)
		}
		if m.Len() != 4 {
			t.Fatalf("Len = %d, want 4 entries of 241 bytes within 1000", m.Len())
		}
		m.Set(ctx, "huge", make([]byte, 300), time.Hour)
		if _, ok := m.Get(ctx, "huge"); ok {
			t.Fatal("a value over a quarter of MaxBytes was stored")
		}
	})

	t.Run("keeps its own copy", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
		v := []byte("abc")
		m.Set(ctx, "k", v, time.Hour)
		v[0] = 'X'
		if got, _ := m.Get(ctx, "k"); string(got) != "abc" {
			t.Fatalf("stored value changed with the caller's slice: %q", got)
		}
	})

	t.Run("replace", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
		m.Set(ctx, "k", []byte("old"), time.Hour)
		m.Set(ctx, "k", []byte("new"), time.Hour)
		if got, _ := m.Get(ctx, "k"); string(got) != "new" || m.Len() != 1 {
			t.Fatalf("got %q, Len %d", got, m.Len())
		}
	})
}

func TestReport(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(cache.MemoryOptions{})
	want := &vouch.Report{Subject: "r/a:v1", Reference: "r/a:v1@sha256:" + strings.Repeat("0", 64), Verdict: vouch.Denied, Reason: "unsigned",
		Root: &vouch.Node{Relation: vouch.RelSubject, MediaType: "application/vnd.oci.image.manifest.v1+json"}}
	cache.SetReport(ctx, m, "k", want, time.Minute)
	got, ok := cache.Report(ctx, m, "k")
	if !ok || got.Verdict != want.Verdict || got.Reason != want.Reason || got.Root == nil || got.Root.MediaType != want.Root.MediaType {
		t.Fatalf("Report = %+v, %v", got, ok)
	}
	m.Set(ctx, "junk", []byte("{not json"), time.Minute)
	m.Set(ctx, "empty", []byte("{}"), time.Minute)
	for _, k := range []string{"junk", "empty", "absent"} {
		if _, ok := cache.Report(ctx, m, k); ok {
			t.Fatalf("Report(%s) was a hit", k)
		}
	}
}

// FuzzReport feeds arbitrary cached bytes (Redis content is outside input)
// to Report: it must never panic, and a hit must carry a verdict.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`{"subject":"a","reference":"a","verdict":"allowed","reason":"ok","graph":{"relation":"subject","mediaType":"x","digest":"sha256:00","size":1}}`))
	f.Add([]byte(`{"verdict":""}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		m := cache.NewMemory(cache.MemoryOptions{})
		m.Set(ctx, "k", data, time.Minute)
		if r, ok := cache.Report(ctx, m, "k"); ok && r.Verdict == "" {
			t.Fatal("hit without a verdict")
		}
	})
}
