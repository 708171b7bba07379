package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// TestListedReportCaching: a verdict whose report carries the sbom
// verifier's full package listing (listPackages on a 6,000-component
// SBOM, cut to its bounds) is cached like any other while it fits the
// cache's value limit. Over Redis's MaxValueBytes it stays in the
// replica's local cache only: the verdict is the same, each other replica
// verifies again; nothing fails closed. A real registry and a real Redis.
func TestListedReportCaching(t *testing.T) {
	ctx := context.Background()
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "listing/app")
	img := p.Image("v1", "listed")
	var comps []string
	for i := range 6000 {
		comps = append(comps, fmt.Sprintf(`{"type":"library","name":"lib%d","version":"1.%d.0","purl":"pkg:npm/%%40scope/lib%d@1.%d.0","licenses":[{"expression":"MIT"}]}`, i, i, i, i))
	}
	p.Attach(img, sbom.MediaTypeCycloneDX, sbom.MediaTypeCycloneDX,
		[]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[`+strings.Join(comps, ",")+`]}`))
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sbom.New("sbom", sbom.Config{ListPackages: true})
	if err != nil {
		t.Fatal(err)
	}
	exec := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{"sbom"})}
	srv := redistest.Start(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	replica := func(maxValue int) (*engine.Engine, *atomic.Int64) {
		c, err := cache.NewRedis(cache.RedisOptions{Addr: srv.Addr, HMACKey: key, MaxValueBytes: maxValue, KeyPrefix: fmt.Sprintf("t%d:", maxValue)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		var runs atomic.Int64
		e, err := engine.New(engine.Options{Cache: c,
			Executor: func(context.Context, string) (*vouch.Executor, string) { return exec, "h1" },
			Hooks:    engine.Hooks{OnVerification: func(vouch.Verdict, time.Duration) { runs.Add(1) }}})
		if err != nil {
			t.Fatal(err)
		}
		return e, &runs
	}
	ref := reg.Host + "/listing/app:v1"
	for _, tc := range []struct {
		name     string
		maxValue int
		shared   bool
	}{
		{"within Redis's default limit", cache.DefaultMaxValueBytes, true},
		{"over an operator's smaller limit", 512 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, runsA := replica(tc.maxValue)
			b, runsB := replica(tc.maxValue)
			for round := range 2 {
				r, err := a.Verify(ctx, "", ref)
				if err != nil || r.Verdict != vouch.Allowed {
					t.Fatalf("round %d: %v %+v", round, err, r)
				}
				if round == 0 {
					data, _ := json.Marshal(r)
					res := r.Root.Referrers[0].Results[0]
					t.Logf("report %d bytes; %d packages listed, %v more", len(data), len(res.Details["packageList"].([]any)), res.Details["morePackageList"])
					if len(data) > cache.DefaultMaxValueBytes {
						t.Fatalf("a report of %d bytes, over Redis's default limit", len(data))
					}
				}
			}
			if n := runsA.Load(); n != 1 {
				t.Fatalf("replica a verified %d times, want once: the local cache keeps the verdict", n)
			}
			if r, err := b.Verify(ctx, "", ref); err != nil || r.Verdict != vouch.Allowed {
				t.Fatalf("replica b: %v %+v", err, r)
			}
			want := int64(1)
			if tc.shared {
				want = 0
			}
			if n := runsB.Load(); n != want {
				t.Fatalf("replica b verified %d times, want %d", n, want)
			}
		})
	}
}
