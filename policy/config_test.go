package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
)

func withResults(n *vouch.Node, results ...vouch.Result) *vouch.Node {
	n.Results = results
	return n
}

func TestConfigPolicy(t *testing.T) {
	sig := func(seed string, o vouch.Outcome, nested ...*vouch.Node) *vouch.Node {
		return referrer(seed, notationType, o, "notation: "+string(o), nested...)
	}
	sbom := func(o vouch.Outcome, nested ...*vouch.Node) *vouch.Node {
		return referrer("sbom", spdxType, o, "sbom: "+string(o), nested...)
	}
	signature := policy.Requirement{ArtifactType: notationType}
	allSignatures := policy.Requirement{ArtifactType: notationType, Match: policy.MatchAll}
	signedSBOM := policy.Requirement{ArtifactType: spdxType, Require: []policy.Requirement{signature}}
	scope := func(mode vouch.Mode, reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "all", Repositories: []string{"*"}, Mode: mode, Require: reqs}}}
	}

	tests := []struct {
		name   string
		config policy.Config
		root   *vouch.Node
		want   vouch.Verdict
		reason string
	}{
		{"signed", scope("", signature), subject("a", sig("s1", vouch.Passed)), vouch.Allowed, notationType + " verified"},
		{"unsigned", scope("", signature), subject("a"), vouch.Denied, "no " + notationType + " found"},
		{"any of two, one trusted", scope("", signature), subject("a", sig("s1", vouch.Failed), sig("s2", vouch.Passed)), vouch.Allowed, ""},
		{"all of two, one trusted", scope("", allSignatures), subject("a", sig("s1", vouch.Failed), sig("s2", vouch.Passed)), vouch.Denied, "1 of 2 do not"},
		{"only untrusted", scope("", signature), subject("a", sig("s1", vouch.Failed)), vouch.Denied, "failed: notation: failed"},
		{"errored signature is no pass", scope("", signature), subject("a", sig("s1", vouch.Errored)), vouch.Denied, "could not be checked"},
		{"signed SBOM", scope("", signature, signedSBOM), subject("a", sig("s1", vouch.Passed), sbom(vouch.Passed, sig("s2", vouch.Passed))), vouch.Allowed, "with " + notationType},
		{"unsigned SBOM", scope("", signature, signedSBOM), subject("a", sig("s1", vouch.Passed), sbom(vouch.Passed)), vouch.Denied, "(no " + notationType + " found)"},
		{"SBOM that fails its check", scope("", signedSBOM), subject("a", sbom(vouch.Failed, sig("s2", vouch.Passed))), vouch.Denied, "sbom: failed"},
		{"unchecked SBOM vouched for by its signature", scope("", signedSBOM), subject("a", sbom(vouch.Skipped, sig("s2", vouch.Passed))), vouch.Allowed, ""},
		{"unchecked SBOM without signature", scope("", signedSBOM), subject("a", sbom(vouch.Skipped)), vouch.Denied, "no " + notationType + " found"},
		{"unchecked leaf never passes", scope("", policy.Requirement{ArtifactType: spdxType}), subject("a", sbom(vouch.Skipped)), vouch.Denied, "not checked"},
		{"any of two types, one present", scope("", policy.Requirement{AnyOf: []policy.Requirement{{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json"}, signature}}),
			subject("a", sig("s1", vouch.Passed)), vouch.Allowed, "one of ("},
		{"any of two types, none verified", scope("", policy.Requirement{AnyOf: []policy.Requirement{{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json"}, signature}}),
			subject("a", sig("s1", vouch.Failed)), vouch.Denied, "none of the alternatives is met"},
		{"optional absent", scope("", signature, policy.Requirement{ArtifactType: sarifType, Optional: true}), subject("a", sig("s1", vouch.Passed)), vouch.Allowed, ""},
		{"warn allows but says why", scope(vouch.ModeWarn, signature), subject("a"), vouch.Allowed, "allowed in warn mode, would deny"},
		{"audit allows", scope(vouch.ModeAudit, signature), subject("a"), vouch.Allowed, "audit"},
		{"named verifier", scope("", policy.Requirement{ArtifactType: notationType, Verifiers: []string{"release"}}),
			subject("a", withResults(sig("s1", vouch.Passed), vouch.Result{Verifier: "dev", Outcome: vouch.Passed})), vouch.Denied, "not verified by release"},
		{"named verifier passes", scope("", policy.Requirement{ArtifactType: notationType, Verifiers: []string{"release"}}),
			subject("a", withResults(sig("s1", vouch.Failed), vouch.Result{Verifier: "release", Outcome: vouch.Passed}, vouch.Result{Verifier: "dev", Outcome: vouch.Failed})), vouch.Allowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(tt.config, []string{"release", "dev"})
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q", d.Verdict, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestConfigScopes(t *testing.T) {
	req := []policy.Requirement{{ArtifactType: notationType}}
	c := policy.Config{Scopes: []policy.Scope{
		{Name: "default", Repositories: []string{"*"}, Require: req},
		{Name: "team", Repositories: []string{"r.io/team/*"}, Require: req},
		{Name: "team-app", Repositories: []string{"r.io/team/app"}, Require: req},
		{Name: "sub", Repositories: []string{"r.io/team/sub/*"}, Require: req},
		{Name: "layouts", Repositories: []string{"oci-layout:*"}, Require: req},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"r.io/team/app:v1":         "team-app",
		"r.io/team/other:v1":       "team",
		"r.io/team/sub/x:v1":       "sub",
		"r.io/elsewhere:v1":        "default",
		"r.io/team:v1":             "default",
		"oci-layout:/tmp/l:v1":     "layouts",
		"docker.io/library/alpine": "default",
	} {
		got := c.Scope(testbed.Ref(t, ref))
		if got == nil || got.Name != want {
			t.Errorf("%s: scope %v, want %s", ref, got, want)
		}
	}

	narrow := policy.Config{Scopes: []policy.Scope{{Name: "only", Repositories: []string{"r.io/app"}, Require: req}}}
	p, err := policy.New(narrow, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := p.Decide(context.Background(), testbed.Ref(t, "r.io/other:v1"), subject("x"))
	if d.Verdict != vouch.Denied || !strings.Contains(d.Reason, "no policy scope covers r.io/other") {
		t.Fatalf("uncovered subject: %+v", d)
	}
}

func TestConfigPlatformsEach(t *testing.T) {
	req := []policy.Requirement{{ArtifactType: notationType}}
	c := policy.Config{Scopes: []policy.Scope{{Name: "each", Repositories: []string{"*"}, Platforms: policy.PlatformsEach, Require: req}}}
	p, err := policy.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := func(seed string, refs ...*vouch.Node) *vouch.Node {
		return &vouch.Node{Relation: vouch.RelManifest, MediaType: imageType, Digest: digest.FromString(seed), Referrers: refs}
	}
	root := subject("index", referrer("isig", notationType, vouch.Passed, ""))
	root.Manifests = []*vouch.Node{m("amd", referrer("asig", notationType, vouch.Passed, "")), m("arm")}
	d, _ := p.Decide(context.Background(), testbed.Ref(t, "r.io/app:v1"), root)
	if d.Verdict != vouch.Denied || !strings.Contains(d.Reason, short("arm")) {
		t.Fatalf("unsigned platform manifest not named: %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	req := []policy.Requirement{{ArtifactType: notationType}}
	tests := []struct {
		c    policy.Config
		want string
	}{
		{policy.Config{}, "policy.scopes: at least one"},
		{policy.Config{Scopes: []policy.Scope{{Repositories: []string{"*"}, Require: req}}}, "policy.scopes[0].name: required"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Require: req}}}, "policy.scopes[0].repositories"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"r.io/*/x"}, Require: req}}}, "policy.scopes[0].repositories[0]"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Mode: "loud", Require: req}}}, "policy.scopes[0].mode"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}}}}, "policy.scopes[0].require: at least one"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{ArtifactType: "x", Require: []policy.Requirement{{Match: "some"}}}}}}}, "policy.scopes[0].require[0].require[0].artifactType"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{ArtifactType: "x", AnyOf: req}}}}}, "policy.scopes[0].require[0].anyOf: a requirement with anyOf has no other fields"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: req}, {Name: "b", Repositories: []string{"*"}, Require: req}}}, `pattern "*" is in both`},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{Kind: "provenance"}}}}}, `policy.scopes[0].require[0].kind: "provenance" is not signature or attestation`},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{Kind: "signature", PredicateType: slsaV1}}}}}, "policy.scopes[0].require[0].predicateType: a signature has no predicate type"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{PredicateType: "slsaprovenance1"}}}}}, `policy.scopes[0].require[0].predicateType: "slsaprovenance1" is not a URI`},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{Kind: "signature", AnyOf: req}}}}}, "anyOf: a requirement with anyOf has no other fields"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{SLSABuildLevel: 4}}}}}, "policy.scopes[0].require[0].slsaBuildLevel: 4 is not an SLSA Build level"},
		{policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{Kind: "signature", SLSABuildLevel: 2}}}}}, "slsaBuildLevel: a signature shows no SLSA Build level"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
	_, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{"*"}, Require: []policy.Requirement{{ArtifactType: "x", Verifiers: []string{"ghost"}}}}}}, []string{"notation"})
	if err == nil || !strings.Contains(err.Error(), `no verifier is named "ghost"`) {
		t.Fatalf("unknown verifier: %v", err)
	}
}

func TestConfigNamespaces(t *testing.T) {
	sig := []policy.Requirement{{ArtifactType: notationType}}
	sbomReq := []policy.Requirement{{ArtifactType: spdxType}}
	c := policy.Config{Scopes: []policy.Scope{
		{Name: "default", Repositories: []string{"*"}, Require: sig},
		{Name: "team-a", Repositories: []string{"*"}, Namespaces: []string{"team-a"}, Mode: vouch.ModeWarn, Require: sbomReq},
		{Name: "team-b-prod", Repositories: []string{"r.io/prod/*"}, Namespaces: []string{"team-b"}, Require: sbomReq},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ref := testbed.Ref(t, "r.io/prod/app:v1")
	for ns, want := range map[string]string{"": "default", "team-a": "team-a", "team-b": "team-b-prod", "other": "default"} {
		view := c.ForNamespace(ns)
		if got := view.Scope(ref); got == nil || got.Name != want {
			t.Errorf("namespace %q: scope %v, want %s", ns, got, want)
		}
	}
	p, err := policy.New(c, nil, policy.InNamespace("team-a"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := p.Decide(context.Background(), ref, subject("x"))
	if d.Verdict != vouch.Allowed || d.Mode != vouch.ModeWarn {
		t.Fatalf("team-a warns: %+v", d)
	}
	dup := c
	dup.Scopes = append(dup.Scopes, policy.Scope{Name: "team-a-again", Repositories: []string{"*"}, Namespaces: []string{"team-a"}, Require: sig})
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "for namespace team-a") {
		t.Fatalf("duplicate namespace scope: %v", err)
	}
}

func TestConfigSettled(t *testing.T) {
	ref, err := vouch.ParseReference("127.0.0.1:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	signature := policy.Requirement{ArtifactType: notationType}
	allSignatures := policy.Requirement{ArtifactType: notationType, Match: policy.MatchAll}
	scope := func(mode vouch.Mode, reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "all", Repositories: []string{"*"}, Mode: mode, Require: reqs}}}
	}
	pendingSig := func() *vouch.Node { return referrer("p", notationType, "", "") }
	tests := []struct {
		name   string
		config policy.Config
		root   *vouch.Node
		want   bool
	}{
		{"any signature, one passed", scope("", signature), subject("a", referrer("s", notationType, vouch.Passed, "ok"), pendingSig()), true},
		{"any signature, none passed yet", scope("", signature), subject("a", pendingSig()), false},
		{"all signatures, one pending", scope("", allSignatures), subject("a", referrer("s", notationType, vouch.Passed, "ok"), pendingSig()), false},
		{"SBOM still pending", scope("", signature, policy.Requirement{ArtifactType: spdxType}), subject("a", referrer("s", notationType, vouch.Passed, "ok"), referrer("b", spdxType, "", "")), false},
		{"warn mode waiving is not settled", scope(vouch.ModeWarn, signature), subject("a", pendingSig()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(tt.config, []string{"notation"})
			if err != nil {
				t.Fatal(err)
			}
			s, ok := p.(vouch.Settler)
			if !ok {
				t.Fatal("the config policy is not a vouch.Settler")
			}
			if got := s.Settled(context.Background(), ref, tt.root, func(n *vouch.Node) bool { return n.Outcome == "" }); got != tt.want {
				t.Fatalf("Settled = %v, want %v", got, tt.want)
			}
		})
	}
}

const (
	bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	attType    = "application/vnd.dev.cosign.artifact.att.v1+json"
	slsaV1     = "https://slsa.dev/provenance/v1"
	spdxDoc    = "https://spdx.dev/Document"
)

// TestConfigClaims: requirements on a kind of claim (a signature, an
// attestation of a predicate type) count the claims the verifiers report,
// not artifact types, so that one artifact type carrying both (Sigstore
// bundles) or one manifest carrying several (cosign's .att) is judged by
// what each claims.
func TestConfigClaims(t *testing.T) {
	claim := func(kind vouch.ClaimKind, pt string, o vouch.Outcome, reason string) vouch.Claim {
		return vouch.Claim{Kind: kind, PredicateType: pt, Outcome: o, Reason: reason}
	}
	node := func(seed, artifactType string, results ...vouch.Result) *vouch.Node {
		n := referrer(seed, artifactType, "", "", nil...)
		n.Results = results
		for _, r := range results {
			if n.Outcome == "" || r.Outcome == vouch.Failed {
				n.Outcome, n.Reason = r.Outcome, r.Verifier+": "+r.Reason
			}
		}
		return n
	}
	cosignResult := func(o vouch.Outcome, claims ...vouch.Claim) vouch.Result {
		return vouch.Result{Verifier: "release", Outcome: o, Reason: "cosign " + string(o), Claims: claims}
	}
	sigBundle := func(seed string, o vouch.Outcome) *vouch.Node {
		return node(seed, bundleType, cosignResult(o, claim(vouch.ClaimSignature, "", o, "signature "+string(o))))
	}
	slsaBundle := func(seed string, o vouch.Outcome) *vouch.Node {
		return node(seed, bundleType, cosignResult(o, claim(vouch.ClaimAttestation, slsaV1, o, "provenance "+string(o))))
	}
	notation := func(seed string, o vouch.Outcome) *vouch.Node {
		return node(seed, notationType, vouch.Result{Verifier: "dev", Outcome: o, Reason: "notation " + string(o)})
	}
	// unsigned is an attestation that a verifier read but could not check
	// (BuildKit's, which are not signed).
	unsigned := func(referrers ...*vouch.Node) *vouch.Node {
		n := node("bk", "application/vnd.in-toto+json", vouch.Result{Verifier: "release", Outcome: vouch.Skipped, Reason: "unsigned", Claims: []vouch.Claim{claim(vouch.ClaimAttestation, slsaV1, vouch.Skipped, "unsigned")}})
		n.Referrers = referrers
		return n
	}
	signature := policy.Requirement{Kind: "signature"}
	provenance := policy.Requirement{PredicateType: slsaV1}
	leveled := func(seed string, o vouch.Outcome, level int) *vouch.Node {
		return node(seed, bundleType, cosignResult(o, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: slsaV1, Outcome: o, Reason: "provenance " + string(o), SLSABuildLevel: level}))
	}
	scope := func(reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "all", Repositories: []string{"*"}, Require: reqs}}}
	}
	tests := []struct {
		name   string
		config policy.Config
		root   *vouch.Node
		want   vouch.Verdict
		reason string
	}{
		{"signature and provenance", scope(signature, provenance), subject("a", sigBundle("s", vouch.Passed), slsaBundle("p", vouch.Passed)), vouch.Allowed, "signature verified, attestation of predicate type " + slsaV1 + " verified"},
		{"a signature bundle is no provenance", scope(signature, provenance), subject("a", sigBundle("s", vouch.Passed)), vouch.Denied, "no attestation of predicate type " + slsaV1 + " found"},
		{"a provenance bundle is no signature", scope(signature, provenance), subject("a", slsaBundle("p", vouch.Passed)), vouch.Denied, "no signature found"},
		{"untrusted provenance", scope(signature, provenance), subject("a", sigBundle("s", vouch.Passed), slsaBundle("p", vouch.Failed)), vouch.Denied, "failed: release: provenance failed"},
		{"a Notary signature is a signature", scope(signature, provenance), subject("a", notation("n", vouch.Passed), slsaBundle("p", vouch.Passed)), vouch.Allowed, ""},
		{"an untrusted Notary signature is no pass", scope(signature), subject("a", notation("n", vouch.Failed)), vouch.Denied, "no signature verified"},
		{"any attestation", scope(policy.Requirement{Kind: "attestation"}), subject("a", sigBundle("s", vouch.Passed), slsaBundle("p", vouch.Passed)), vouch.Allowed, "attestation verified"},
		{"claims of one .att manifest each count", scope(provenance),
			subject("a", node("att", attType, cosignResult(vouch.Passed, claim(vouch.ClaimAttestation, spdxDoc, vouch.Passed, "sbom ok"), claim(vouch.ClaimAttestation, slsaV1, vouch.Failed, "no matching key")))),
			vouch.Denied, "no matching key"},
		{"packaging narrowed by artifact type", scope(policy.Requirement{PredicateType: slsaV1, ArtifactType: attType}), subject("a", slsaBundle("p", vouch.Passed)), vouch.Denied, "no attestation of predicate type " + slsaV1 + " (" + attType + ") found"},
		{"skipped provenance never passes", scope(provenance), subject("a", slsaBundle("p", vouch.Skipped)), vouch.Denied, "not checked"},
		{"unchecked provenance without a signature of its own", scope(policy.Requirement{PredicateType: slsaV1, Require: []policy.Requirement{signature}}),
			subject("a", unsigned(), sigBundle("s", vouch.Passed)), vouch.Denied, "(no signature found)"},
		{"unchecked provenance vouched for by its signature", scope(policy.Requirement{PredicateType: slsaV1, Require: []policy.Requirement{signature}}),
			subject("a", unsigned(sigBundle("s", vouch.Passed))), vouch.Allowed, "with signature verified"},
		{"named verifier", scope(policy.Requirement{Kind: "signature", Verifiers: []string{"dev"}}), subject("a", sigBundle("s", vouch.Passed)), vouch.Denied, "no signature found"},
		{"all signatures, one a pending bundle", scope(policy.Requirement{Kind: "signature", Match: policy.MatchAll}), subject("a", sigBundle("s", vouch.Passed), referrer("pending", bundleType, "", "")), vouch.Denied, "1 of 2 do not"},
		{"all attestations, one unreadable", scope(policy.Requirement{Kind: "attestation", Match: policy.MatchAll}), subject("a", slsaBundle("p", vouch.Passed), referrer("broken", attType, vouch.Errored, "manifest too large")), vouch.Denied, "could not be checked: manifest too large"},
		{"level 2 shown", scope(policy.Requirement{SLSABuildLevel: 2}), subject("a", leveled("p", vouch.Passed, 2)), vouch.Allowed, "SLSA Build level 2 provenance verified"},
		{"level 1 is not 2", scope(policy.Requirement{SLSABuildLevel: 2}), subject("a", leveled("p", vouch.Skipped, 1)), vouch.Denied, "shows SLSA Build level 1, want 2"},
		{"an unsigned provenance shows level 1", scope(policy.Requirement{SLSABuildLevel: 1}), subject("a", leveled("p", vouch.Skipped, 1)), vouch.Allowed, ""},
		{"the best of two provenances counts", scope(policy.Requirement{SLSABuildLevel: 3}),
			subject("a", node("two", attType, cosignResult(vouch.Passed, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: "https://slsa.dev/provenance/v0.2", Outcome: vouch.Passed, SLSABuildLevel: 2}, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: slsaV1, Outcome: vouch.Passed, SLSABuildLevel: 3}))),
			vouch.Allowed, ""},
		{"an SBOM shows no level", scope(policy.Requirement{SLSABuildLevel: 1}), subject("a", node("s", attType, cosignResult(vouch.Passed, claim(vouch.ClaimAttestation, spdxDoc, vouch.Passed, "ok")))), vouch.Denied, "no SLSA Build level 1 provenance found"},
		{"an unchecked SBOM is no attestation", scope(policy.Requirement{Kind: "attestation", Match: policy.MatchAll}), subject("a", slsaBundle("p", vouch.Passed), referrer("sbom", spdxType, vouch.Skipped, "no verifier handles it")), vouch.Allowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(tt.config, []string{"release", "dev"})
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q", d.Verdict, d.Reason, tt.want, tt.reason)
			}
		})
	}
}
