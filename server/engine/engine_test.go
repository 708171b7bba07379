package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
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
		opts.Executor = func(string) (*vouch.Executor, string) { return f.exec, "h1" }
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
		Executor: func(ns string) (*vouch.Executor, string) {
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

// TestTagCache: a tag is resolved once per TagTTL, also by Resolve.
func TestTagCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var lookups, hits atomic.Int64
	e := f.engine(t, engine.Options{TagTTL: 200 * time.Millisecond, Hooks: engine.Hooks{OnCache: func(kind string, hit bool) {
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
