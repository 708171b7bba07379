package vouch_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

const notationType = "application/vnd.cncf.notary.signature"

// blobVerifier stands in for a signature verifier (the real ones are tested
// with real signatures in their packages and in cmd/vouch): it reads each
// signature's blob from the registry and passes it when the blob says
// "good". calls counts the verifications.
func blobVerifier(calls *atomic.Int64) vouch.Verifier {
	return vouch.VerifierFunc{VerifierName: "blob", ArtifactTypes: []string{notationType}, Func: func(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
		calls.Add(1)
		data, err := req.Repository.Fetch(ctx, req.Manifest.Layers[0])
		if err != nil {
			return vouch.Result{}, err
		}
		if bytes.HasPrefix(data, []byte("good")) {
			return vouch.Result{Outcome: vouch.Passed, Reason: "good"}, nil
		}
		return vouch.Result{Outcome: vouch.Failed, Reason: "bad signature"}, nil
	}}
}

// settledPolicy allows once a direct referrer passed, and says so early.
type settledPolicy struct{ vouch.PolicyFunc }

func (p settledPolicy) Settled(ctx context.Context, ref vouch.Reference, root *vouch.Node, _ func(*vouch.Node) bool) bool {
	d, err := p.Decide(ctx, ref, root)
	return err == nil && d.Verdict == vouch.Allowed
}

// TestSettleStopsVerifying: with 40 signatures and a policy that needs one,
// verification stops soon after the first passes; the rest are reported
// skipped as not needed, most never fetched. A policy that cannot settle,
// or VerifyAll, still checks every one.
func TestSettleStopsVerifying(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "settle/app")
			img := p.Image("v1", "settle")
			const sigs = 40
			for i := 0; i < sigs; i++ {
				p.Attach(img, notationType, "application/jose+json", fmt.Appendf(nil, "good %d", i))
			}
			run := func(pol vouch.Policy, verifyAll bool) (*vouch.Report, int64, int64) {
				var calls, requests atomic.Int64
				st, err := registry.New(registry.Options{PlainHTTP: true, OnResponse: func(string, string, int) { requests.Add(1) }})
				if err != nil {
					t.Fatal(err)
				}
				e := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{blobVerifier(&calls)}, Policy: pol, VerifyAll: verifyAll, Concurrency: 4}
				rep, err := e.Verify(context.Background(), mustRef(t, reg.Host+"/settle/app:v1"))
				if err != nil {
					t.Fatal(err)
				}
				if rep.Verdict != vouch.Allowed {
					t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
				}
				if len(rep.Root.Referrers) != sigs {
					t.Fatalf("%d referrers in the report, want %d", len(rep.Root.Referrers), sigs)
				}
				return rep, calls.Load(), requests.Load()
			}
			rep, calls, early := run(settledPolicy{allowIfAnyPassed}, false)
			passed, skipped := 0, 0
			for _, r := range rep.Root.Referrers {
				switch {
				case r.Outcome == vouch.Passed:
					passed++
				case r.Outcome == vouch.Skipped && strings.Contains(r.Reason, "not needed"):
					skipped++
				default:
					t.Errorf("referrer %s: %s %q", r.Digest, r.Outcome, r.Reason)
				}
			}
			// The first signature goes alone; it passes and settles it.
			if passed != 1 || skipped != sigs-1 || calls != 1 {
				t.Fatalf("settled early: %d passed, %d skipped, %d verifications; want the first passed and verified, the rest skipped", passed, skipped, calls)
			}
			_, allCalls, all := run(settledPolicy{allowIfAnyPassed}, true)
			_, plainCalls, _ := run(allowIfAnyPassed, false)
			if allCalls != sigs || plainCalls != sigs {
				t.Fatalf("verifications: %d with VerifyAll, %d with a policy that cannot settle; want %d", allCalls, plainCalls, sigs)
			}
			// A registry that lists the signatures' artifact type (the
			// referrers tag on distribution) saves a manifest and a blob per
			// skipped signature; go-containerregistry's lists the config
			// media type, so the manifests are read to learn it and only the
			// blobs are saved.
			if early > all-(sigs-4) {
				t.Fatalf("registry requests: %d settling early, %d verifying all; want at least a blob per skipped signature saved", early, all)
			}
			t.Logf("%d signatures: %d verified and %d registry requests settling early; %d requests verifying all", sigs, calls, early, all)
		})
	}
}

// TestSettleIgnoresBadSignatures: bad signatures do not stop the search;
// checked one at a time, every signature before the good one is verified
// and reported failed, and the good one settles the verdict.
func TestSettleIgnoresBadSignatures(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "settle/bad")
	img := p.Image("v1", "bad first")
	for i := 0; i < 12; i++ {
		p.Attach(img, notationType, "application/jose+json", fmt.Appendf(nil, "bad %d", i))
	}
	p.Attach(img, notationType, "application/jose+json", []byte("good"))
	var calls atomic.Int64
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{blobVerifier(&calls)}, Policy: settledPolicy{allowIfAnyPassed}, Concurrency: 1}
	rep, err := e.Verify(context.Background(), mustRef(t, reg.Host+"/settle/bad:v1"))
	if err != nil {
		t.Fatal(err)
	}
	failed, passed, skipped := 0, 0, 0
	for _, r := range rep.Root.Referrers {
		switch r.Outcome {
		case vouch.Failed:
			failed++
		case vouch.Passed:
			passed++
		case vouch.Skipped:
			skipped++
		}
	}
	if rep.Verdict != vouch.Allowed || passed != 1 || failed+passed != int(calls.Load()) || failed+passed+skipped != 13 {
		t.Fatalf("verdict %s (%s), %d passed, %d failed, %d skipped, %d verifications", rep.Verdict, rep.Reason, passed, failed, skipped, calls.Load())
	}
	t.Logf("%d verifications to find the good signature among 13", calls.Load())
}
