package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// The tests attach artifacts of these types; a VerifierFunc (a stand-in
// whose timing and answer the test controls) passes, fails or errs on them.
const (
	goodType = "application/vnd.test.good"
	badType  = "application/vnd.test.bad"
	errType  = "application/vnd.test.err"
	slowType = "application/vnd.test.slow"
)

// fixture is a registry with images carrying those artifacts, and an
// executor whose verifier counts its calls.
type fixture struct {
	host  string
	exec  *vouch.Executor
	calls atomic.Int64
	// slow holds verifications of slowType until it is closed or their
	// context ends; cancelled counts the ones whose context ended.
	slow      chan struct{}
	cancelled atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := testbed.GGCR(t, nil)
	f := &fixture{host: reg.Host, slow: make(chan struct{})}
	p := testbed.NewPusher(t, reg.Host, "eng/app")
	for _, typ := range []string{goodType, badType, errType, slowType} {
		tag := typ[strings.LastIndexByte(typ, '.')+1:]
		img := p.Image(tag, "image "+tag)
		p.Attach(img, typ, "text/plain", []byte(tag))
	}
	p.Image("bare", "no referrers")
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := vouch.VerifierFunc{VerifierName: "test", ArtifactTypes: []string{goodType, badType, errType, slowType},
		Func: func(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
			f.calls.Add(1)
			switch req.Artifact.ArtifactType {
			case badType:
				return vouch.Result{Outcome: vouch.Failed, Reason: "bad"}, nil
			case errType:
				return vouch.Result{}, errors.New("trust material unavailable")
			case slowType:
				select {
				case <-f.slow:
				case <-ctx.Done():
					f.cancelled.Add(1)
					return vouch.Result{}, ctx.Err()
				}
			}
			return vouch.Result{Outcome: vouch.Passed, Reason: "good"}, nil
		}}
	f.exec = &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{"test"})}
	return f
}

func (f *fixture) ref(tag string) string { return f.host + "/eng/app:" + tag }

func (f *fixture) engine(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	if opts.Executor == nil {
		opts.Executor = func(context.Context, string) (*vouch.Executor, string) { return f.exec, "h1" }
	}
	e, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestVerdictsAndCaching(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var verifications atomic.Int64
	e := f.engine(t, engine.Options{DenyTTL: 300 * time.Millisecond, Hooks: engine.Hooks{
		OnVerification: func(vouch.Verdict, time.Duration) { verifications.Add(1) },
	}})
	tests := []struct {
		tag     string
		verdict vouch.Verdict
		reason  string
		cached  bool
	}{
		{"good", vouch.Allowed, "test: good", true},
		{"bad", vouch.Denied, "failed: test: bad", true},
		// A denial because a check could not run may be transient.
		{"err", vouch.Denied, "trust material unavailable", false},
		{"bare", vouch.Denied, "found no referrers", true},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			for round := range 2 {
				before := verifications.Load()
				r, err := e.Verify(ctx, "", f.ref(tt.tag))
				if err != nil || r.Verdict != tt.verdict || !strings.Contains(r.Reason, tt.reason) {
					t.Fatalf("round %d: %v, %+v", round, err, r)
				}
				if r.Subject != f.ref(tt.tag) || !strings.HasPrefix(r.Reference, f.ref(tt.tag)+"@sha256:") {
					t.Fatalf("subject %q, reference %q", r.Subject, r.Reference)
				}
				want := int64(1)
				if round == 1 && tt.cached {
					want = 0
				}
				if ran := verifications.Load() - before; ran != want {
					t.Fatalf("round %d: %d verifications, want %d", round, ran, want)
				}
			}
		})
	}
	// Denials expire after DenyTTL, allowed verdicts stay.
	time.Sleep(350 * time.Millisecond)
	before := verifications.Load()
	e.Verify(ctx, "", f.ref("bad"))
	e.Verify(ctx, "", f.ref("good"))
	if ran := verifications.Load() - before; ran != 1 {
		t.Fatalf("%d verifications after the deny TTL, want 1 (bad again, good cached)", ran)
	}

	// A verdict is personal to the caller's spelling of the subject.
	r, err := e.Verify(ctx, "", strings.Replace(f.ref("good"), ":good", "@", 1)+digestOf(t, e, f.ref("good")))
	if err != nil || r.Verdict != vouch.Allowed || strings.Contains(r.Subject, ":good") {
		t.Fatalf("by digest: %v %+v", err, r)
	}
}

func digestOf(t *testing.T, e *engine.Engine, image string) string {
	t.Helper()
	ref, err := e.Resolve(context.Background(), "", image)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Digest.String()
}

func TestUndecided(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	e := f.engine(t, engine.Options{})
	for image, want := range map[string]string{
		"Not/A:Ref!!":                    "invalid image reference",
		"oci-layout:/etc:passwd":         "OCI layout references are not served",
		f.ref("missing"):                 "not found",
		"127.0.0.1:1/nothing/listens:v1": "could not decide",
		f.host + "/eng/app@sha256:" + strings.Repeat("0", 64): "not found",
	} {
		r, err := e.Verify(ctx, "", image)
		if err == nil || r == nil || r.Verdict != vouch.Undecided || !strings.Contains(r.Reason, want) {
			t.Fatalf("%s: %v, %+v; want undecided saying %q", image, err, r, want)
		}
	}
	if _, err := e.Resolve(ctx, "", "oci-layout:/etc:x"); !errors.Is(err, engine.ErrInvalidReference) {
		t.Fatalf("Resolve of a layout: %v", err)
	}
	if _, err := engine.New(engine.Options{}); err == nil {
		t.Fatal("New without an executor succeeded")
	}
}

// TestCoalescing: concurrent requests for one subject share one
// verification.
func TestCoalescing(t *testing.T) {
	f := newFixture(t)
	var verifications atomic.Int64
	e := f.engine(t, engine.Options{Hooks: engine.Hooks{OnVerification: func(vouch.Verdict, time.Duration) { verifications.Add(1) }}})
	var wg sync.WaitGroup
	results := make([]*vouch.Report, 20)
	for i := range results {
		wg.Go(func() {
			results[i], _ = e.Verify(context.Background(), "", f.ref("slow"))
		})
	}
	time.Sleep(200 * time.Millisecond) // every caller is waiting
	if n := e.InFlight(); n != 1 {
		t.Fatalf("%d verifications in flight, want 1", n)
	}
	close(f.slow)
	wg.Wait()
	for _, r := range results {
		if r == nil || r.Verdict != vouch.Allowed {
			t.Fatalf("a caller got %+v", r)
		}
	}
	if n := verifications.Load(); n != 1 || f.calls.Load() != 1 {
		t.Fatalf("%d verifications, %d verifier calls for 20 concurrent requests", n, f.calls.Load())
	}
}

// TestCancellation: a verification ends when its last caller gives up;
// with Linger it goes on, and its verdict waits in the cache for a retry.
func TestCancellation(t *testing.T) {
	t.Run("cancelled with the last caller", func(t *testing.T) {
		f := newFixture(t)
		e := f.engine(t, engine.Options{})
		ctx1, cancel1 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel1()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel2()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []context.Context{ctx1, ctx2} {
			wg.Go(func() { _, errs[i] = e.Verify(c, "", f.ref("slow")) })
		}
		time.Sleep(200 * time.Millisecond)
		if f.cancelled.Load() != 0 {
			t.Fatal("the verification was cancelled while a caller still waited")
		}
		wg.Wait()
		for _, err := range errs {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v", err)
			}
		}
		deadline := time.Now().Add(2 * time.Second)
		for f.cancelled.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the verification went on after its last caller left")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("linger", func(t *testing.T) {
		f := newFixture(t)
		var verifications atomic.Int64
		e := f.engine(t, engine.Options{Linger: 5 * time.Second, Hooks: engine.Hooks{OnVerification: func(vouch.Verdict, time.Duration) { verifications.Add(1) }}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if r, err := e.Verify(ctx, "", f.ref("slow")); !errors.Is(err, context.DeadlineExceeded) || r.Verdict != vouch.Undecided || !strings.Contains(r.Reason, "in time") {
			t.Fatalf("first try: %v %+v", err, r)
		}
		close(f.slow) // the registry answers after the caller gave up
		deadline := time.Now().Add(2 * time.Second)
		for verifications.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the lingering verification did not finish")
			}
			time.Sleep(10 * time.Millisecond)
		}
		r, err := e.Verify(context.Background(), "", f.ref("slow"))
		if err != nil || r.Verdict != vouch.Allowed || verifications.Load() != 1 || f.cancelled.Load() != 0 {
			t.Fatalf("retry: %v %+v after %d verifications", err, r, verifications.Load())
		}
	})
}

// TestPolicyHash: verdicts are cached per policy hash, so namespaces with
// different policies do not share them, and namespaces with the same do.
func TestPolicyHash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var verifications atomic.Int64
	e := f.engine(t, engine.Options{
		Executor: func(_ context.Context, ns string) (*vouch.Executor, string) {
			if ns == "strict" {
				return f.exec, "h-strict"
			}
			return f.exec, "h-default"
		},
		Hooks: engine.Hooks{OnVerification: func(vouch.Verdict, time.Duration) { verifications.Add(1) }},
	})
	for _, ns := range []string{"", "team-a", "strict", "team-b", "strict"} {
		if _, err := e.Verify(ctx, ns, f.ref("good")); err != nil {
			t.Fatal(err)
		}
	}
	if n := verifications.Load(); n != 2 {
		t.Fatalf("%d verifications for two policy hashes", n)
	}
}

// TestTagCache: without a stale window, a tag is resolved once per
// TagTTL, also by Resolve.
func TestTagCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var lookups, hits atomic.Int64
	e := f.engine(t, engine.Options{TagTTL: 200 * time.Millisecond, TagMaxStale: -1, Hooks: engine.Hooks{OnCache: func(kind string, hit bool) {
		if kind == "tag" {
			lookups.Add(1)
			if hit {
				hits.Add(1)
			}
		}
	}}})
	first, err := e.Resolve(ctx, "", f.ref("good"))
	if err != nil {
		t.Fatal(err)
	}
	e.Verify(ctx, "", f.ref("good"))
	second, _ := e.Resolve(ctx, "ns", f.ref("good"))
	if first.Digest != second.Digest || lookups.Load() != 3 || hits.Load() != 2 {
		t.Fatalf("lookups %d, hits %d", lookups.Load(), hits.Load())
	}
	time.Sleep(250 * time.Millisecond)
	e.Resolve(ctx, "", f.ref("good"))
	if hits.Load() != 2 {
		t.Fatal("the tag stayed cached past TagTTL")
	}
	// A digest needs no lookup.
	byDigest, err := e.Resolve(ctx, "", f.host+"/eng/app@"+first.Digest.String())
	if err != nil || byDigest.Digest != first.Digest || lookups.Load() != 4 {
		t.Fatalf("by digest: %v, lookups %d", err, lookups.Load())
	}
}

func newClock() *testbed.Clock {
	return testbed.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

// flakyRegistry is a registry whose requests are counted and which can be
// made to answer 503 to everything, as a registry that is down.
type flakyRegistry struct {
	*testbed.Registry
	requests atomic.Int64
	down     atomic.Bool
}

func newFlakyRegistry(t *testing.T) *flakyRegistry {
	t.Helper()
	r := &flakyRegistry{}
	r.Registry = testbed.GGCR(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/v2/" {
				r.requests.Add(1)
			}
			if r.down.Load() {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, req)
		})
	})
	return r
}

// TestTagStaleWhileRevalidate: a cached tag digest is used as it is for
// TagTTL; then, up to TagMaxStale, it is still used while one background
// refresh resolves the tag again (a re-pointed tag is seen after it); a
// refresh that fails keeps the digest in use until TagMaxStale, and after
// that the request resolves the tag itself and fails closed.
func TestTagStaleWhileRevalidate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	reg := newFlakyRegistry(t)
	p := testbed.NewPusher(t, reg.Host, "swr/app")
	first := p.Image("v1", "first")
	st, err := registry.New(registry.Options{PlainHTTP: true, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	exec := *f.exec
	exec.Store = st
	clk := newClock()
	refreshes := make(chan error, 10)
	e := f.engine(t, engine.Options{
		Executor:    func(context.Context, string) (*vouch.Executor, string) { return &exec, "h1" },
		Cache:       cache.NewMemory(cache.MemoryOptions{Now: clk.Now}),
		Now:         clk.Now,
		TagTTL:      10 * time.Second,
		TagMaxStale: time.Minute,
		Hooks:       engine.Hooks{OnTagRefresh: func(err error) { refreshes <- err }},
		Logger:      slog.New(slog.DiscardHandler),
	})
	image := reg.Host + "/swr/app:v1"
	resolve := func() (string, error) {
		t.Helper()
		ref, err := e.Resolve(ctx, "", image)
		return ref.Digest.String(), err
	}
	mustResolve := func(want ocispec.Descriptor, what string) {
		t.Helper()
		if d, err := resolve(); err != nil || d != want.Digest.String() {
			t.Fatalf("%s: %s, %v; want %s", what, d, err, want.Digest)
		}
	}
	refreshed := func(ok bool) {
		t.Helper()
		select {
		case err := <-refreshes:
			if (err == nil) != ok {
				t.Fatalf("refresh: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no background refresh")
		}
	}

	reg.requests.Store(0) // the pushes
	mustResolve(first, "first resolution")
	if n := reg.requests.Load(); n != 1 {
		t.Fatalf("%d registry requests to resolve a tag, want 1", n)
	}
	// Within TagTTL: no registry request.
	clk.Advance(9 * time.Second)
	mustResolve(first, "within TagTTL")
	if r, err := e.Verify(ctx, "", image); err != nil || r.Reference != image+"@"+first.Digest.String() {
		t.Fatalf("verify: %v %+v", err, r)
	}
	before := reg.requests.Load()
	mustResolve(first, "within TagTTL")
	if n := reg.requests.Load(); n != before {
		t.Fatalf("%d registry requests within TagTTL, want none", n-before)
	}

	// The tag moves. Past TagTTL the old digest is still answered, once
	// more, while the tag is resolved again in the background.
	second := p.Image("v1", "second")
	clk.Advance(2 * time.Second)
	before = reg.requests.Load()
	mustResolve(first, "past TagTTL, before the refresh")
	refreshed(true)
	mustResolve(second, "after the refresh")
	mustResolve(second, "after the refresh")
	if n := reg.requests.Load() - before; n != 1 {
		t.Fatalf("%d registry requests for a refresh, want 1", n)
	}
	select {
	case err := <-refreshes:
		t.Fatalf("a second refresh: %v", err)
	default:
	}

	// The registry goes down. A failed refresh keeps the digest in use
	// up to TagMaxStale after it was resolved, and is retried once per
	// TagTTL.
	reg.down.Store(true)
	clk.Advance(15 * time.Second)
	mustResolve(second, "past TagTTL, registry down")
	refreshed(false)
	before = reg.requests.Load()
	mustResolve(second, "just after a failed refresh")
	if n := reg.requests.Load() - before; n != 0 {
		t.Fatalf("%d registry requests just after a failed refresh, want 0", n)
	}
	clk.Advance(11 * time.Second)
	mustResolve(second, "after a failed refresh, registry down")
	refreshed(false)

	// Past TagMaxStale the cached digest is not used: the request resolves
	// the tag, and with the registry down vouch cannot decide.
	clk.Advance(35 * time.Second) // 61 s after the last resolution
	if d, err := resolve(); err == nil {
		t.Fatalf("past TagMaxStale with the registry down: %s, want an error", d)
	}
	if r, err := e.Verify(ctx, "", image); err == nil || r.Verdict != vouch.Undecided {
		t.Fatalf("verify past TagMaxStale with the registry down: %v %+v", err, r)
	}

	reg.down.Store(false)
	mustResolve(second, "registry back")
}

// TestVerifyCached: an endpoint that keeps its encoding of a cached verdict
// under the verdict's id (as the Gatekeeper provider does) encodes it once:
// later answers from the cache encode nothing and are the same bytes as a
// fresh encoding of a fresh verification; each verdict key has its own id,
// and each encoding its own entry; when the report behind a key changes, so
// does its id, hence its encoding.
func TestVerifyCached(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := testbed.NewPusher(t, f.host, "enc/app")
	img := p.Image("v1", "encoded")
	p.Attach(img, goodType, "text/plain", []byte("good"))
	clk := newClock()
	e := f.engine(t, engine.Options{
		Cache:    cache.NewMemory(cache.MemoryOptions{Now: clk.Now}),
		Now:      clk.Now,
		AllowTTL: time.Minute,
		Logger:   slog.New(slog.DiscardHandler),
	})
	var encodes atomic.Int64
	// encode is the endpoint's encoding: of the report without the fields
	// personal to the caller.
	encode := func(r *vouch.Report) ([]byte, error) {
		encodes.Add(1)
		c := *r
		c.Subject, c.Reference = "", ""
		return json.Marshal(&c)
	}
	// kept is the endpoint's memo of encodings, by verdict id and encoding
	// name; a verdict with id 0 is not cached, and its encoding not kept.
	type keptKey struct {
		id       uint64
		encoding string
	}
	kept := map[keptKey][]byte{}
	verifyEncoded := func(image, encoding string) (*vouch.Report, []byte, error) {
		r, id, err := e.VerifyCached(ctx, "", image)
		if err != nil {
			return r, nil, err
		}
		if data, ok := kept[keptKey{id, encoding}]; ok && id != 0 {
			// The id's promise: the same report but for the caller's
			// fields.
			c := *r
			c.Subject, c.Reference = "", ""
			if now, _ := json.Marshal(&c); string(now) != string(data) {
				t.Errorf("%s: verdict %d was\n%s\nand is now\n%s", image, id, data, now)
			}
			return r, data, nil
		}
		data, err := encode(r)
		if err == nil && id != 0 {
			kept[keptKey{id, encoding}] = data
		}
		return r, data, err
	}
	// fresh verifies image anew, without the engine, and encodes it (for
	// images with one referrer: with more, the executor may skip some once
	// the policy is satisfied, and reports differ from run to run).
	fresh := func(image string) []byte {
		t.Helper()
		ref, err := e.Resolve(ctx, "", image)
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.exec.Verify(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		r.Subject, r.Reference = "", ""
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	answer := func(image, encoding string, wantEncodes int64) (*vouch.Report, []byte) {
		t.Helper()
		before := encodes.Load()
		r, data, err := verifyEncoded(image, encoding)
		if err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		if n := encodes.Load() - before; n != wantEncodes {
			t.Fatalf("%s, %s: %d encodings, want %d", image, encoding, n, wantEncodes)
		}
		return r, data
	}

	image := f.host + "/enc/app:v1"
	byDigest := f.host + "/enc/app@" + img.Digest.String()
	_, first := answer(image, "a", 1) // verified now
	want := fresh(image)
	if string(first) != string(want) {
		t.Fatalf("first answer:\n%s\nfresh encoding:\n%s", first, want)
	}
	for _, im := range []string{image, byDigest} {
		r, again := answer(im, "a", 0) // from the cache, same key
		if string(again) != string(want) || r.Subject != im || r.Verdict != vouch.Allowed {
			t.Fatalf("%s cached: %+v\n%s", im, r, again)
		}
	}
	// Another encoding of the same verdict, made once.
	answer(image, "b", 1)
	answer(image, "b", 0)
	// Another key: its own encoding.
	_, bad := answer(f.ref("bad"), "a", 1)
	if _, again := answer(f.ref("bad"), "a", 0); string(bad) == string(first) || string(again) != string(bad) || string(bad) != string(fresh(f.ref("bad"))) {
		t.Fatalf("bad: %s\n%s", bad, again)
	}
	// A verdict that is not cached is encoded on every answer.
	answer(f.ref("err"), "a", 1)
	answer(f.ref("err"), "a", 1)

	// The image gets a failing artifact; once its verdict expires, the
	// new report is encoded, and then kept.
	p.Attach(img, badType, "text/plain", []byte("bad"))
	if _, again := answer(image, "a", 0); string(again) != string(first) {
		t.Fatal("the cached verdict changed before it expired")
	}
	clk.Advance(2 * time.Minute)
	r, changed := answer(image, "a", 1)
	r.Subject, r.Reference = "", ""
	if want, _ := json.Marshal(r); string(changed) == string(first) || string(changed) != string(want) {
		t.Fatalf("after the change: %s\nwant %s", changed, want)
	}
	if _, again := answer(image, "a", 0); string(again) != string(changed) {
		t.Fatalf("cached after the change:\n%s\nwant\n%s", again, changed)
	}
}

// TestPolicyHashChange: when the policy hash changes (a configuration
// reloaded with other trust material), the verdict cached under the old
// hash is not used: the image is verified again and its verdict has a new
// id, so that nothing derived from the old verdict under its id (the
// decoded report, an endpoint's encoding) is served under the new hash;
// the old hash still finds its own verdict.
func TestPolicyHashChange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var hash atomic.Value
	hash.Store("old")
	var verifications atomic.Int64
	e := f.engine(t, engine.Options{
		Executor: func(context.Context, string) (*vouch.Executor, string) { return f.exec, hash.Load().(string) },
		Hooks:    engine.Hooks{OnVerification: func(vouch.Verdict, time.Duration) { verifications.Add(1) }},
	})
	ids := map[string]uint64{}
	for _, h := range []string{"old", "old", "new", "new", "old"} {
		hash.Store(h)
		_, id, err := e.VerifyCached(ctx, "", f.ref("good"))
		if err != nil || id == 0 {
			t.Fatalf("hash %s: id %d, %v", h, id, err)
		}
		if prev, ok := ids[h]; ok && prev != id {
			t.Fatalf("hash %s: id %d, then %d", h, prev, id)
		}
		ids[h] = id
	}
	if ids["old"] == ids["new"] {
		t.Fatalf("the same verdict id %d under both hashes", ids["old"])
	}
	if n := verifications.Load(); n != 2 {
		t.Fatalf("%d verifications, want one per hash", n)
	}
}
