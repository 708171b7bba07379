package engine_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/server/engine"
)

// TestVerifyLocal checks that VerifyLocal answers exactly what VerifyCached
// would for a cached image by digest, and declines, without a hook call,
// whatever needs more: a tag, a verdict not cached or expired, a verdict
// cached under another policy, credentials of the request's own.
func TestVerifyLocal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clk := newClock()
	var answers, lookups []string
	hooks := engine.Hooks{
		OnAnswer: func(a string) { answers = append(answers, a) },
		OnCache: func(kind string, hit bool) {
			lookups = append(lookups, map[bool]string{true: kind + " hit", false: kind + " miss"}[hit])
		},
	}
	hash := "h1"
	e := f.engine(t, engine.Options{
		Executor: func(context.Context, string) (*vouch.Executor, string) { return f.exec, hash },
		Cache:    cache.NewMemory(cache.MemoryOptions{Now: clk.Now}),
		Now:      clk.Now, AllowTTL: time.Minute, DenyTTL: time.Minute,
		Hooks: hooks, Logger: slog.New(slog.DiscardHandler),
	})
	pinned := func(tag string) string {
		ref, err := e.Resolve(ctx, "", f.ref(tag))
		if err != nil {
			t.Fatal(err)
		}
		return ref.Name() + "@" + ref.Digest.String()
	}
	good, bad := pinned("good"), pinned("bad")
	declines := func(what, image string) {
		t.Helper()
		answers, lookups = nil, nil
		if r, _, ok := e.VerifyLocal(ctx, "", image); ok {
			t.Fatalf("%s: VerifyLocal answered %s", what, r.Verdict)
		}
		if answers != nil || lookups != nil {
			t.Fatalf("%s: VerifyLocal declined but reported %v %v", what, answers, lookups)
		}
	}
	declines("not cached yet", good)
	declines("a tag", f.ref("good"))
	declines("malformed", "NOT A REFERENCE")
	ids := map[string]uint64{}
	for _, image := range []string{good, bad} {
		want, wantID, err := e.VerifyCached(ctx, "", image)
		ids[image] = wantID
		if err != nil {
			t.Fatal(err)
		}
		answers, lookups = nil, nil
		got, id, ok := e.VerifyLocal(ctx, "", image)
		if !ok {
			t.Fatalf("%s: cached, but VerifyLocal declined", image)
		}
		if id != wantID || id == 0 || got.Subject != want.Subject || got.Reference != want.Reference || got.Verdict != want.Verdict || got.Reason != want.Reason || got.Root != want.Root {
			t.Fatalf("%s: VerifyLocal %+v (id %d), VerifyCached %+v (id %d)", image, got, id, want, wantID)
		}
		if len(answers) != 1 || answers[0] != string(want.Verdict) || len(lookups) != 1 || lookups[0] != "verdict hit" {
			t.Fatalf("%s: hooks saw answers %v, lookups %v", image, answers, lookups)
		}
	}
	declines("a tag, its verdict cached", f.ref("good"))
	hash = "h2"
	declines("cached under another policy", good)
	hash = "h1"
	clk.Advance(2 * time.Minute)
	declines("expired", good)
	// Verified again: a new verdict, with a new id, which VerifyLocal
	// answers from then on.
	again, id, err := e.VerifyCached(ctx, "", good)
	if err != nil || id == 0 || id == ids[good] {
		t.Fatalf("verified again: id %d (was %d), %v", id, ids[good], err)
	}
	if got, gotID, ok := e.VerifyLocal(ctx, "", good); !ok || gotID != id || got.Verdict != again.Verdict || got.Root != again.Root {
		t.Fatalf("after a new verdict: VerifyLocal %v id %d, want id %d", ok, gotID, id)
	}

	scoped := f.engine(t, engine.Options{
		Cache: cache.NewMemory(cache.MemoryOptions{}), CredentialScope: func(context.Context, string) string { return "" },
		Logger: slog.New(slog.DiscardHandler),
	})
	if _, _, err := scoped.VerifyCached(ctx, "", good); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := scoped.VerifyLocal(ctx, "", good); ok {
		t.Fatal("VerifyLocal answered with credentials per request, which it cannot check")
	}
}
