package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
)

// checked is a referrer checked by the verifiers whose results are given,
// its outcome summed up as the Executor does.
func checked(seed, artifactType string, results ...vouch.Result) *vouch.Node {
	n := referrer(seed, artifactType, vouch.Skipped, "no verifier handles artifact type "+artifactType)
	n.Results = results
	for _, o := range []vouch.Outcome{vouch.Failed, vouch.Errored, vouch.Passed} {
		for _, r := range results {
			if r.Outcome == o && n.Outcome == vouch.Skipped {
				n.Outcome, n.Reason = o, r.Verifier+": "+r.Reason
			}
		}
	}
	return n
}

func result(verifier string, o vouch.Outcome) vouch.Result {
	return vouch.Result{Verifier: verifier, Outcome: o, Reason: string(o) + " by " + verifier}
}

// TestAll: the composition of a cluster's policy and a tenant's, each over
// its own verifiers' results, as config.Compose builds it.
func TestAll(t *testing.T) {
	const (
		clusterNotation = "notation"
		tenantNotation  = "team-a/strict/notation"
		tenantSBOM      = "team-a/strict/sbom"
		tenantName      = "tenant VouchConfig team-a/strict"
	)
	signed := func(mode vouch.Mode) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "signed", Repositories: []string{"*"}, Mode: mode, Require: []policy.Requirement{{ArtifactType: notationType}}}}}
	}
	mustNew := func(c policy.Config, verifiers []string, opts ...policy.Option) vouch.Policy {
		p, err := policy.New(c, verifiers, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cluster := func(mode vouch.Mode) policy.Part {
		return policy.Part{Name: "cluster", Policy: mustNew(signed(mode), []string{clusterNotation}), Verifiers: []string{clusterNotation}}
	}
	tenant := func(mode vouch.Mode) policy.Part {
		return policy.Part{Name: tenantName, Policy: mustNew(signed(mode), []string{tenantNotation, tenantSBOM}, policy.AllowUncovered()), Verifiers: []string{tenantNotation, tenantSBOM}}
	}
	// The cluster's signature verifies under the cluster's trust, not the
	// tenant's; the tenant's the other way round.
	clusterSig := func(seed string) *vouch.Node {
		return checked(seed, notationType, result(clusterNotation, vouch.Passed), result(tenantNotation, vouch.Failed))
	}
	tenantSig := func(seed string) *vouch.Node {
		return checked(seed, notationType, result(clusterNotation, vouch.Failed), result(tenantNotation, vouch.Passed))
	}
	bothSig := func(seed string) *vouch.Node {
		return checked(seed, notationType, result(clusterNotation, vouch.Passed), result(tenantNotation, vouch.Passed))
	}
	pending := func(seed string) *vouch.Node { return referrer(seed, notationType, "", "") }
	badSBOM := checked("sbom", spdxType, result(tenantSBOM, vouch.Failed))
	notSettler := policy.Part{Name: "plain", Policy: vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Mode: vouch.ModeEnforce, Reason: "fine"}, nil
	}), Verifiers: []string{clusterNotation}}
	broken := policy.Part{Name: "broken", Policy: vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{}, errors.New("cannot")
	})}

	tests := []struct {
		name    string
		parts   []policy.Part
		root    *vouch.Node
		verdict vouch.Verdict
		mode    vouch.Mode
		waived  bool
		settled bool
		// reason must contain every has and none of hasNot.
		has, hasNot []string
	}{
		{"both signed", []policy.Part{cluster(""), tenant("")}, subject("a", clusterSig("c"), tenantSig("t")),
			vouch.Allowed, vouch.ModeEnforce, false, true, []string{"cluster: scope \"signed\"", tenantName + ": scope \"signed\""}, nil},
		{"one signature trusted by both", []policy.Part{cluster(""), tenant("")}, subject("a", bothSig("b")),
			vouch.Allowed, vouch.ModeEnforce, false, true, nil, nil},
		{"cluster signature only: the tenant denies", []policy.Part{cluster(""), tenant("")}, subject("a", clusterSig("c")),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{tenantName + ": scope \"signed\": no " + notationType + " verified", "failed by " + tenantNotation}, []string{"cluster:"}},
		{"tenant signature only: its trust cannot satisfy the cluster", []policy.Part{cluster(""), tenant("")}, subject("a", tenantSig("t")),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{"cluster: scope \"signed\": no " + notationType + " verified", "failed by " + clusterNotation}, []string{tenantName}},
		{"unsigned: both deny", []policy.Part{cluster(""), tenant("")}, subject("a"),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{"cluster: ", "; " + tenantName + ": "}, nil},
		{"tenant in warn mode waives its own requirement", []policy.Part{cluster(""), tenant(vouch.ModeWarn)}, subject("a", clusterSig("c")),
			vouch.Allowed, vouch.ModeWarn, true, false, []string{"cluster: scope", tenantName + ": allowed in warn mode, would deny"}, nil},
		{"tenant in warn mode does not waive the cluster's", []policy.Part{cluster(""), tenant(vouch.ModeWarn)}, subject("a", tenantSig("t")),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{"cluster: scope \"signed\""}, []string{tenantName}},
		{"tenant in audit mode does not waive the cluster's", []policy.Part{cluster(""), tenant(vouch.ModeAudit)}, subject("a"),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{"cluster: "}, []string{tenantName}},
		{"cluster in audit mode waives the cluster's part only", []policy.Part{cluster(vouch.ModeAudit), tenant("")}, subject("a", tenantSig("t")),
			vouch.Allowed, vouch.ModeAudit, true, false, []string{"cluster: allowed in audit mode, would deny"}, nil},
		{"cluster in audit mode, tenant still enforces", []policy.Part{cluster(vouch.ModeAudit), tenant("")}, subject("a"),
			vouch.Denied, vouch.ModeEnforce, false, false, []string{tenantName + ": scope"}, []string{"cluster:"}},
		{"audit and warn waivers: warn", []policy.Part{cluster(vouch.ModeAudit), tenant(vouch.ModeWarn)}, subject("a"),
			vouch.Allowed, vouch.ModeWarn, true, false, []string{"cluster: allowed in audit mode", tenantName + ": allowed in warn mode"}, nil},
		{"nothing waived: the strictest mode", []policy.Part{cluster(vouch.ModeWarn), tenant(vouch.ModeAudit)}, subject("a", bothSig("b")),
			vouch.Allowed, vouch.ModeWarn, false, true, nil, nil},
		{"tenant covers nothing here", []policy.Part{cluster(""), {Name: tenantName, Verifiers: []string{tenantNotation},
			Policy: mustNew(policy.Config{Scopes: []policy.Scope{{Name: "own", Repositories: []string{"registry.example.com/team-a/*"}, Require: []policy.Requirement{{ArtifactType: notationType}}}}}, []string{tenantNotation}, policy.AllowUncovered())}},
			subject("a", clusterSig("c")), vouch.Allowed, vouch.ModeEnforce, false, true, []string{tenantName + ": no policy scope covers"}, nil},
		{"a tenant's failure is not the cluster's default policy's", []policy.Part{{Name: "cluster", Policy: policy.Default([]string{clusterNotation}), Verifiers: []string{clusterNotation}},
			{Name: tenantName, Policy: mustNew(policy.Config{Scopes: []policy.Scope{{Name: "sbom", Repositories: []string{"*"}, Require: []policy.Requirement{{ArtifactType: spdxType}}}}}, []string{tenantSBOM}), Verifiers: []string{tenantSBOM}}},
			subject("a", clusterSig("c"), badSBOM), vouch.Denied, vouch.ModeEnforce, false, false, []string{tenantName + ": scope \"sbom\"", "failed by " + tenantSBOM}, []string{"cluster:"}},
		{"settled with a spare signature pending", []policy.Part{cluster(""), tenant("")}, subject("a", bothSig("b"), pending("p")),
			vouch.Denied, vouch.ModeEnforce, false, true, nil, nil},
		{"not settled while the tenant waits", []policy.Part{cluster(""), tenant("")}, subject("a", clusterSig("c"), pending("p")),
			vouch.Denied, vouch.ModeEnforce, false, false, nil, nil},
		{"a part that cannot settle", []policy.Part{cluster(""), notSettler}, subject("a", clusterSig("c")),
			vouch.Allowed, vouch.ModeEnforce, false, false, []string{"plain: fine"}, nil},
	}
	ctx := context.Background()
	ref := vouch.Reference{Registry: "registry.example.com", Repository: "app"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.All(tt.parts...)
			d, err := p.Decide(ctx, ref, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			// A tree with pending nodes is decided with them unchecked,
			// which is how Settled sees it; only its Settled is checked.
			hasPending := false
			tt.root.Walk(func(n *vouch.Node, _ int) {
				hasPending = hasPending || (n.Relation == vouch.RelReferrer && n.Outcome == "")
			})
			if !hasPending {
				if d.Verdict != tt.verdict || d.Mode != tt.mode || d.Waived != tt.waived {
					t.Errorf("decision %s mode %s waived %v, want %s %s %v: %s", d.Verdict, d.Mode, d.Waived, tt.verdict, tt.mode, tt.waived, d.Reason)
				}
				for _, s := range tt.has {
					if !strings.Contains(d.Reason, s) {
						t.Errorf("reason %q lacks %q", d.Reason, s)
					}
				}
				for _, s := range tt.hasNot {
					if strings.Contains(d.Reason, s) {
						t.Errorf("reason %q has %q", d.Reason, s)
					}
				}
			}
			isPending := func(n *vouch.Node) bool { return n.Outcome == "" && n.Relation == vouch.RelReferrer }
			if got := p.(vouch.Settler).Settled(ctx, ref, tt.root, isPending); got != tt.settled {
				t.Errorf("settled %v, want %v (%s)", got, tt.settled, d.Reason)
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		if _, err := policy.All().Decide(ctx, ref, subject("a")); err == nil {
			t.Error("no part: no error")
		}
		if policy.All().(vouch.Settler).Settled(ctx, ref, subject("a"), func(*vouch.Node) bool { return false }) {
			t.Error("no part: settled")
		}
		if _, err := policy.All(cluster(""), broken).Decide(ctx, ref, subject("a")); err == nil || err.Error() != "broken: cannot" {
			t.Errorf("a part's error: %v, want it named", err)
		}
	})

	t.Run("the tree is not changed", func(t *testing.T) {
		root := subject("a", clusterSig("c"), tenantSig("t"))
		if _, err := policy.All(cluster(""), tenant("")).Decide(ctx, ref, root); err != nil {
			t.Fatal(err)
		}
		for _, r := range root.Referrers {
			if len(r.Results) != 2 || r.Outcome != vouch.Failed {
				t.Fatalf("referrer changed: %+v", r)
			}
		}
	})
}
