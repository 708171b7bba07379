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

// TestProvenance: the provenance section checks an SLSA provenance by
// what it says, whichever version wrote it: v1 as GitHub's generator
// writes it (the workflow's repository and ref in externalParameters), v1
// with the source only as a resolved dependency, and v0.2 (configSource).
// The provenances are signed into Sigstore bundles with a key, on both
// registry kinds.
func TestProvenance(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const (
		hosted = "https://github.com/actions/runner/github-hosted"
		ghType = "https://actions.github.io/buildtypes/workflow/v1"
	)
	v, err := cosign.New("cosign", inDir(f.dir, cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{"ecdsa.pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{
			BuilderIDs:       []string{hosted, "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"},
			SourceRepository: "https://github.com/acme/app",
			SourceRefRegExp:  `^refs/tags/v`,
		}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "release", Repositories: []string{"*"}, Require: []policy.Requirement{{PredicateType: cosign.PredicateSLSAv1}}}}}, []string{"cosign"})
	if err != nil {
		t.Fatal(err)
	}
	polV02, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "release", Repositories: []string{"*"}, Require: []policy.Requirement{{PredicateType: cosign.PredicateSLSAv02}}}}}, []string{"cosign"})
	if err != nil {
		t.Fatal(err)
	}
	github := func(builder, repo, ref string) map[string]any {
		return map[string]any{
			"buildDefinition": map[string]any{"buildType": ghType, "externalParameters": map[string]any{"workflow": map[string]any{"repository": repo, "ref": ref, "path": ".github/workflows/release.yml"}}},
			"runDetails":      map[string]any{"builder": map[string]any{"id": builder}},
		}
	}
	resolved := map[string]any{
		"buildDefinition": map[string]any{"buildType": "https://example.com/type", "resolvedDependencies": []any{map[string]any{"uri": "git+https://github.com/acme/app.git@refs/tags/v1.2.0"}}},
		"runDetails":      map[string]any{"builder": map[string]any{"id": hosted}},
	}
	v02 := func(builder, uri string) map[string]any {
		return map[string]any{"builder": map[string]any{"id": builder}, "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1", "invocation": map[string]any{"configSource": map[string]any{"uri": uri}}}
	}
	generator := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"
	cases := []struct {
		name          string
		predicateType string
		predicate     map[string]any
		want          vouch.Verdict
		reason        string
	}{
		{"v1, GitHub, release tag", cosign.PredicateSLSAv1, github(hosted, "https://github.com/acme/app", "refs/tags/v1.2.0"), vouch.Allowed, ""},
		{"v1, self-hosted runner", cosign.PredicateSLSAv1, github("https://github.com/actions/runner/self-hosted", "https://github.com/acme/app", "refs/tags/v1.2.0"), vouch.Denied, "provenance builder id is https://github.com/actions/runner/self-hosted, want " + hosted},
		{"v1, another repository", cosign.PredicateSLSAv1, github(hosted, "https://github.com/mallory/app", "refs/tags/v1.2.0"), vouch.Denied, "provenance source repository is https://github.com/mallory/app, want https://github.com/acme/app"},
		{"v1, a branch", cosign.PredicateSLSAv1, github(hosted, "https://github.com/acme/app", "refs/heads/main"), vouch.Denied, "provenance source ref is refs/heads/main, want a match for ^refs/tags/v"},
		{"v1, source as a resolved dependency", cosign.PredicateSLSAv1, resolved, vouch.Allowed, ""},
		{"v1, no source", cosign.PredicateSLSAv1, map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": hosted}}}, vouch.Denied, "provenance source repository is missing"},
		{"v0.2, generator", cosign.PredicateSLSAv02, v02(generator, "git+https://github.com/acme/app@refs/tags/v1.2.0"), vouch.Allowed, ""},
		{"v0.2, another builder", cosign.PredicateSLSAv02, v02("https://evil.test/builder", "git+https://github.com/acme/app@refs/tags/v1.2.0"), vouch.Denied, "provenance builder id is https://evil.test/builder"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("cosign/provenance%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" provenance "+c.name)
					stmt := statement(t, c.predicateType, img.Digest, c.predicate)
					pushBundle(t, p, img, cosign.BundleV03Type, c.predicateType, f.sigstore.dsseBundle(t, stmt, bundleOptions{key: f.ecdsaKey}))
					use := pol
					if c.predicateType == cosign.PredicateSLSAv02 {
						use = polV02
					}
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: use}
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

// TestSLSABuildLevel: a requirement names an SLSA Build level, and the
// cosign verifier shows which level each provenance reaches: 1 unsigned
// (its content checked), 2 signed by a trusted key, 3 signed and from a
// builder on the hardened list. Both registry kinds.
func TestSLSABuildLevel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const (
		hosted   = "https://github.com/actions/runner/github-hosted"
		hardened = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"
	)
	v, err := cosign.New("cosign", inDir(f.dir, cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{"ecdsa.pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{
			BuilderIDRegExp:  `^https://github\.com/`,
			HardenedBuilders: []string{hardened},
		}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	level := func(n int) vouch.Policy {
		p, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "slsa", Repositories: []string{"*"}, Require: []policy.Requirement{{SLSABuildLevel: n}}}}}, []string{"cosign"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	prov := func(builder string) map[string]any {
		return map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": builder}}}
	}
	signed := func(k *keyPair, builder string) func(*testing.T, *testbed.Pusher, ocispec.Descriptor) {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
			stmt := statement(t, cosign.PredicateSLSAv1, img.Digest, prov(builder))
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateSLSAv1, f.sigstore.dsseBundle(t, stmt, bundleOptions{key: k}))
		}
	}
	unsigned := func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor) {
		pushReferrer(t, p, img, cosign.InTotoType, nil, layer{mediaType: cosign.MediaTypeInToto, data: statement(t, cosign.PredicateSLSAv1, img.Digest, prov(hosted))})
	}
	cases := []struct {
		name   string
		push   func(*testing.T, *testbed.Pusher, ocispec.Descriptor)
		level  int
		want   vouch.Verdict
		reason string
	}{
		{"signed, hosted builder, level 2", signed(f.ecdsaKey, hosted), 2, vouch.Allowed, "SLSA Build level 2 provenance verified"},
		{"signed, hosted builder, level 3", signed(f.ecdsaKey, hosted), 3, vouch.Denied, "shows SLSA Build level 2, want 3"},
		{"signed, hardened builder, level 3", signed(f.ecdsaKey, hardened), 3, vouch.Allowed, "SLSA Build level 3 provenance verified"},
		{"unsigned, level 1", unsigned, 1, vouch.Allowed, ""},
		{"unsigned, level 2", unsigned, 2, vouch.Denied, "shows SLSA Build level 1, want 2"},
		{"untrusted key, level 1", signed(f.otherKey, hosted), 1, vouch.Denied, "no matching key"},
		{"builder outside the checks, level 1", signed(f.ecdsaKey, "https://evil.test"), 1, vouch.Denied, "provenance builder id is https://evil.test"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("cosign/slsa%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" slsa "+c.name)
					c.push(t, p, img)
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: level(c.level)}
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
