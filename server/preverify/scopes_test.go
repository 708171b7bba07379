package preverify

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
)

// TestScopes: one namespace per policy hash other than the default's, the
// most recently seen; the bound forgets the least recently seen, never
// the default.
func TestScopes(t *testing.T) {
	s := NewScopes(4)
	exec := &vouch.Executor{}
	record := s.Executor(func(_ context.Context, ns string) (*vouch.Executor, string) {
		switch ns {
		case "", "plain":
			return exec, "H0"
		case "broken":
			return nil, "H0/ns=broken"
		}
		return exec, "H0/ns=" + ns[:1]
	})
	for _, ns := range []string{"", "plain", "a1", "b1", "a2", "broken"} {
		record(context.Background(), ns)
	}
	// Full (4) when a2 came: it forgot the least recently seen other
	// than "": "plain", whose hash is the default's anyway. a1 and a2
	// share a hash: a2 was seen last. "broken" has no executor and is
	// not recorded.
	if got := s.Namespaces(); !slices.Equal(got, []string{"a2", "b1"}) {
		t.Fatalf("Namespaces %q, want [a2 b1]", got)
	}
	record(context.Background(), "c1") // forgets a1
	if got := s.Namespaces(); !slices.Equal(got, []string{"a2", "b1", "c1"}) {
		t.Fatalf("Namespaces %q, want [a2 b1 c1]", got)
	}
	record(context.Background(), "a2") // seen again
	record(context.Background(), "d1") // forgets b1
	record(context.Background(), "e1") // forgets c1
	if got := s.Namespaces(); !slices.Equal(got, []string{"a2", "d1", "e1"}) {
		t.Fatalf("Namespaces %q, want [a2 d1 e1]", got)
	}
	if _, ok := s.byNS[""]; !ok || len(s.byNS) != 4 {
		t.Fatalf("remembered %d namespaces, default kept %v", len(s.byNS), ok)
	}
	// Before any request without a namespace, nothing is excluded.
	s2 := NewScopes(0)
	s2.Record("x", "H0")
	if got := s2.Namespaces(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("Namespaces %q, want [x]", got)
	}
}

// TestQueueScopes: a job that names no namespace is queued again, by the
// digest it was pinned to, for each namespace of Scopes whose policy has
// a verdict on it cached; a job that names a namespace, or a workload's
// (UseCache), is not. The Verify and Cached functions stand in for the
// engine, whose own tests cover them; cmd/vouch's
// TestServeRegistryEventsNamespaces runs the whole path against a real
// registry.
func TestQueueScopes(t *testing.T) {
	const pinned = "r.example/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	var mu sync.Mutex
	var calls, asked []string
	done := make(chan struct{}, 16)
	verify := func(_ context.Context, ns, image string) (*vouch.Report, error) {
		mu.Lock()
		calls = append(calls, ns+"|"+image)
		mu.Unlock()
		done <- struct{}{}
		return &vouch.Report{Verdict: vouch.Allowed, Reference: "r.example/app:v1@" + pinned[len("r.example/app@"):]}, nil
	}
	q, err := NewQueue(QueueOptions{Verify: verify, Rate: 1000,
		Scopes: func() []string { return []string{"team-a", "team-b"} },
		Cached: func(_ context.Context, ns, image string) bool {
			mu.Lock()
			asked = append(asked, ns+"|"+image)
			mu.Unlock()
			return ns == "team-a"
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = q.Start(ctx) }()
	defer func() { cancel(); <-stopped }()
	wait := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("waited for %d verifications; calls %q", n, calls)
			}
		}
	}
	q.Enqueue(Job{Image: "r.example/app:v1", Source: "registry"})
	wait(2)
	q.Enqueue(Job{Namespace: "team-c", Image: "r.example/app:v1", Source: "subjects"})
	q.Enqueue(Job{Namespace: "team-d", Image: "r.example/app:v1", Source: "workload", UseCache: true})
	wait(2)
	for deadline := time.Now().Add(10 * time.Second); q.Len() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// The first two in this order; the last two run at once.
	slices.Sort(calls[2:])
	want := []string{"|r.example/app:v1", "team-a|" + pinned, "team-c|r.example/app:v1", "team-d|r.example/app:v1"}
	if !slices.Equal(calls, want) {
		t.Fatalf("verifications %q\nwant %q", calls, want)
	}
	if !slices.Equal(asked, []string{"team-a|" + pinned, "team-b|" + pinned}) {
		t.Fatalf("Cached asked %q", asked)
	}
}

// BenchmarkScopesRecord is what remembering the namespace costs each
// admission request (a namespace seen before, under the same hash), from
// parallel callers. Run with -bench ScopesRecord.
func BenchmarkScopesRecord(b *testing.B) {
	s := NewScopes(0)
	namespaces := make([]string, 64)
	for i := range namespaces {
		namespaces[i] = "team-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		s.Record(namespaces[i], "H")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			s.Record(namespaces[i%len(namespaces)], "H")
		}
	})
}
