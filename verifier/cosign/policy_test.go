package cosign_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// TestRequireSignatureAndProvenance: under a policy that requires "a
// signature" and, separately, "an SLSA provenance attestation", each must
// be met by an artifact that is what it asks for, whatever packaging
// carried it (cosign v3's Sigstore bundles, which share one artifact type,
// cosign v2's .sig and .att tags, and mixtures of the two). A signature
// bundle never stands in for provenance, and provenance signed by an
// untrusted key never counts. Signatures are made in the test with
// sigstore-go's and the standard library's code, on both registry kinds.
func TestRequireSignatureAndProvenance(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v, err := cosign.New("cosign", inDir(f.dir, cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{"ecdsa.pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{
			PredicateTypes: []string{"spdxjson"},
			Predicates:     []cosign.Predicate{{Type: "slsaprovenance1", Fields: map[string]string{"runDetails.builder.id": "https://builder.test/v1"}}},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	scope := func(reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "release", Repositories: []string{"*"}, Require: reqs}}}
	}
	signature := policy.Requirement{Kind: "signature"}
	provenance := policy.Requirement{PredicateType: cosign.PredicateSLSAv1}
	// byType is how a user following docs/verifiers/cosign.md wrote the same
	// policy before requirements could name a kind: both requirements name
	// the bundle type, and any verified bundle meets both.
	byType := scope(policy.Requirement{ArtifactType: cosign.BundleV03Type}, policy.Requirement{ArtifactType: cosign.BundleV03Type})
	byClaim := scope(signature, provenance)

	provenanceOf := func(builder string) map[string]any {
		return map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": builder}}, "buildDefinition": map[string]any{"buildType": "https://builder.test/type"}}
	}
	spdx := map[string]any{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app"}
	// Pushers of one artifact each, onto img.
	sigBundle := func(k *keyPair) func(*testing.T, *testbed.Pusher, ocispec.Descriptor) {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
			stmt := statement(t, cosign.PredicateCosignSign, img.Digest, map[string]any{})
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateCosignSign, f.sigstore.dsseBundle(t, stmt, bundleOptions{key: k}))
		}
	}
	attBundle := func(k *keyPair, predicateType string, predicate any) func(*testing.T, *testbed.Pusher, ocispec.Descriptor) {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
			stmt := statement(t, predicateType, img.Digest, predicate)
			pushBundle(t, p, img, cosign.BundleV03Type, predicateType, f.sigstore.dsseBundle(t, stmt, bundleOptions{key: k}))
		}
	}
	sigTag := func(k *keyPair) func(*testing.T, *testbed.Pusher, ocispec.Descriptor) {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
			pushTagLayout(t, p, img, ".sig", keySigned(t, k, simpleSigning(t, "registry.test/app", img.Digest, nil)))
		}
	}
	type att struct {
		k             *keyPair
		predicateType string
		predicate     any
	}
	attTag := func(atts ...att) func(*testing.T, *testbed.Pusher, ocispec.Descriptor) {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
			var ls []layer
			for _, a := range atts {
				ls = append(ls, keyAttested(t, a.k, a.predicateType, statement(t, a.predicateType, img.Digest, a.predicate)))
			}
			pushTagLayout(t, p, img, ".att", ls...)
		}
	}
	good := provenanceOf("https://builder.test/v1")

	cases := []struct {
		name   string
		push   []func(*testing.T, *testbed.Pusher, ocispec.Descriptor)
		config policy.Config
		want   vouch.Verdict
		reason string
	}{
		// The flaw: by artifact type alone, a signature bundle meets both.
		{"only a signature bundle, by artifact type", nil, byType, vouch.Allowed, ""},
		{"only a signature bundle", nil, byClaim, vouch.Denied, "no attestation of predicate type " + cosign.PredicateSLSAv1 + " found"},
		{"provenance signed by an untrusted key", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){attBundle(f.otherKey, cosign.PredicateSLSAv1, good)}, byClaim, vouch.Denied, "no matching key"},
		{"provenance from an untrusted builder", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){attBundle(f.ecdsaKey, cosign.PredicateSLSAv1, provenanceOf("https://evil.test"))}, byClaim, vouch.Denied, "predicate field runDetails.builder.id is https://evil.test"},
		{"an SBOM is no provenance", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){attBundle(f.ecdsaKey, cosign.PredicateSPDX, spdx)}, byClaim, vouch.Denied, "no attestation of predicate type " + cosign.PredicateSLSAv1},
		{"signature and provenance bundles", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){attBundle(f.ecdsaKey, cosign.PredicateSLSAv1, good)}, byClaim, vouch.Allowed, ""},
	}
	// Every case above also carries a trusted signature bundle; the
	// mixtures below bring their own signatures.
	for i := range cases {
		cases[i].push = append([]func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigBundle(f.ecdsaKey)}, cases[i].push...)
	}
	cases = append(cases, []struct {
		name   string
		push   []func(*testing.T, *testbed.Pusher, ocispec.Descriptor)
		config policy.Config
		want   vouch.Verdict
		reason string
	}{
		{"provenance bundle alone is no signature", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){attBundle(f.ecdsaKey, cosign.PredicateSLSAv1, good)}, byClaim, vouch.Denied, "no signature found"},
		{"v2 .sig tag and v3 provenance bundle", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigTag(f.ecdsaKey), attBundle(f.ecdsaKey, cosign.PredicateSLSAv1, good)}, byClaim, vouch.Allowed, ""},
		{"v3 signature bundle and v2 .att provenance", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigBundle(f.ecdsaKey), attTag(att{f.ecdsaKey, cosign.PredicateSLSAv1, good})}, byClaim, vouch.Allowed, ""},
		{"v2 .att with a trusted SBOM and untrusted provenance", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigTag(f.ecdsaKey), attTag(att{f.ecdsaKey, cosign.PredicateSPDX, spdx}, att{f.otherKey, cosign.PredicateSLSAv1, good})}, byClaim, vouch.Denied, "no matching key"},
		{"v2 .att with a trusted SBOM and provenance", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigTag(f.ecdsaKey), attTag(att{f.ecdsaKey, cosign.PredicateSPDX, spdx}, att{f.ecdsaKey, cosign.PredicateSLSAv1, good})}, byClaim, vouch.Allowed, ""},
		{"signature by an untrusted key", []func(*testing.T, *testbed.Pusher, ocispec.Descriptor){sigBundle(f.otherKey), attBundle(f.ecdsaKey, cosign.PredicateSLSAv1, good)}, byClaim, vouch.Denied, "no signature verified"},
	}...)

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("cosign/claims%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" claims "+c.name)
					for _, push := range c.push {
						push(t, p, img)
					}
					pol, err := policy.New(c.config, []string{"cosign"})
					if err != nil {
						t.Fatal(err)
					}
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: pol, Discovery: vouch.Discovery{CosignTags: true}}
					r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/"+repo+"@"+img.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					if r.Verdict != c.want || !strings.Contains(r.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", r.Verdict, r.Reason, c.want, c.reason)
					}
				})
			}
		})
	}
}
