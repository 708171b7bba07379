package vouch_test

import (
	"testing"

	"github.com/vouch-project/vouch"
)

// TestRestrict: a node keeps the results of the verifiers kept, and its
// outcome is summed up from them; nodes without results are copied as
// they are; the original tree is untouched.
func TestRestrict(t *testing.T) {
	res := func(v string, o vouch.Outcome) vouch.Result {
		return vouch.Result{Verifier: v, Outcome: o, Reason: string(o)}
	}
	sig := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "sig", Outcome: vouch.Failed, Reason: "b: failed",
		Results: []vouch.Result{res("a", vouch.Passed), res("b", vouch.Failed)}}
	only := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "sbom", Outcome: vouch.Failed, Reason: "b: failed",
		Results: []vouch.Result{res("b", vouch.Failed)}}
	broken := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "x", Outcome: vouch.Errored, Reason: "fetch manifest: too big"}
	pending := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "sig"}
	plat := &vouch.Node{Relation: vouch.RelManifest, Referrers: []*vouch.Node{pending}}
	root := &vouch.Node{Relation: vouch.RelSubject, Referrers: []*vouch.Node{sig, only, broken}, Manifests: []*vouch.Node{plat}}

	view, orig := root.Restrict(func(v string) bool { return v == "a" })
	want := []struct {
		outcome vouch.Outcome
		reason  string
	}{{vouch.Passed, "a: passed"}, {vouch.Skipped, "no verifier handles artifact type sbom"}, {vouch.Errored, "fetch manifest: too big"}}
	for i, w := range want {
		n := view.Referrers[i]
		if n.Outcome != w.outcome || n.Reason != w.reason || orig[n] != root.Referrers[i] {
			t.Errorf("referrer %d: %s %q, want %s %q", i, n.Outcome, n.Reason, w.outcome, w.reason)
		}
	}
	if len(view.Referrers[0].Results) != 1 || view.Referrers[0].Results[0].Verifier != "a" {
		t.Errorf("results %+v, want a's only", view.Referrers[0].Results)
	}
	p := view.Manifests[0].Referrers[0]
	if p == pending || p.Outcome != "" || orig[p] != pending || orig[view] != root {
		t.Errorf("pending node %+v not copied as it is", p)
	}
	if sig.Outcome != vouch.Failed || len(sig.Results) != 2 || only.Outcome != vouch.Failed {
		t.Error("the original tree changed")
	}
}
