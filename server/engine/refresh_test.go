package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/engine"
)

// TestRefresh: a denial cached before a signature arrives is replaced by
// Refresh, and a tag moved since it was pinned is pinned again; the next
// Verify answers from the cache.
func TestRefresh(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var hits int
	e := f.engine(t, engine.Options{DenyTTL: time.Hour, TagTTL: time.Hour, TagMaxStale: 2 * time.Hour, Hooks: engine.Hooks{
		OnCache: func(kind string, hit bool) {
			if kind == "verdict" && hit {
				hits++
			}
		},
	}})
	p := testbed.NewPusher(t, f.host, "eng/app")
	img := p.Image("late", "signed late")

	verdict := func(fn func(context.Context, string, string) (*vouch.Report, error), image string) *vouch.Report {
		t.Helper()
		r, err := fn(ctx, "", image)
		if err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		return r
	}
	if r := verdict(e.Verify, f.ref("late")); r.Verdict != vouch.Denied {
		t.Fatalf("unsigned: %s (%s)", r.Verdict, r.Reason)
	}
	p.Attach(img, goodType, "text/plain", []byte("good"))
	if r := verdict(e.Verify, f.ref("late")); r.Verdict != vouch.Denied {
		t.Fatalf("the cached denial should still answer before Refresh: %s", r.Verdict)
	}
	if r := verdict(e.Refresh, f.host+"/eng/app@"+img.Digest.String()); r.Verdict != vouch.Allowed {
		t.Fatalf("Refresh after the signature: %s (%s)", r.Verdict, r.Reason)
	}
	before := hits
	if r := verdict(e.Verify, f.ref("late")); r.Verdict != vouch.Allowed || hits != before+1 {
		t.Fatalf("after Refresh: %s, cache hits %d → %d", r.Verdict, before, hits)
	}

	// The tag moves to an image with a bad artifact: Verify keeps the
	// cached pin (an hour), Refresh pins it again.
	moved := p.Image("late", "moved")
	p.Attach(moved, badType, "text/plain", []byte("bad"))
	if r := verdict(e.Verify, f.ref("late")); !strings.HasSuffix(r.Reference, "@"+img.Digest.String()) {
		t.Fatalf("before Refresh the cached pin serves: %s", r.Reference)
	}
	r := verdict(e.Refresh, f.ref("late"))
	if r.Verdict != vouch.Denied || !strings.HasSuffix(r.Reference, "@"+moved.Digest.String()) {
		t.Fatalf("Refresh of the moved tag: %s %s", r.Verdict, r.Reference)
	}
	if r := verdict(e.Verify, f.ref("late")); r.Verdict != vouch.Denied || !strings.HasSuffix(r.Reference, "@"+moved.Digest.String()) {
		t.Fatalf("after Refresh: %s %s", r.Verdict, r.Reference)
	}
}
