package engine_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// TestColdTagOneManifestRequest: a request for a tag nothing has cached
// reads the subject's manifest once, by tag (the GET that resolves it);
// the verification that follows finds it in the store, instead of a HEAD
// by tag and a GET by digest, one round trip apart. A background refresh
// of the tag is a HEAD: it reads no manifest.
func TestColdTagOneManifestRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var mu sync.Mutex
	var seen []string
	reg := testbed.GGCR(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				mu.Lock()
				seen = append(seen, r.Method+" "+r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	p := testbed.NewPusher(t, reg.Host, "cold/app")
	img := p.Image("v1", "cold")
	p.Attach(img, goodType, "text/plain", []byte("good"))
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	exec := *f.exec
	exec.Store = st
	e := f.engine(t, engine.Options{Executor: func(context.Context, string) (*vouch.Executor, string) { return &exec, "h1" }})
	mu.Lock()
	seen = nil // the pushes
	mu.Unlock()
	r, err := e.Verify(ctx, "", reg.Host+"/cold/app:v1")
	if err != nil || r.Verdict != vouch.Allowed {
		t.Fatalf("verify: %v %+v", err, r)
	}
	mu.Lock()
	defer mu.Unlock()
	var subject []string
	for _, s := range seen {
		if s == "GET v1" || s == "HEAD v1" || strings.HasSuffix(s, " "+img.Digest.String()) {
			subject = append(subject, s)
		}
	}
	if len(subject) != 1 || subject[0] != "GET v1" {
		t.Fatalf("requests for the subject's manifest: %q; want one GET by tag (all manifest requests: %q)", subject, seen)
	}
}
