package cosign_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// TestBuildKitAttestations: an image index as `docker buildx build
// --provenance --sbom` pushes it (built here with oras-go, since no
// BuildKit runs in the test bed): a platform manifest, and beside it an
// attestation manifest (vnd.docker.reference.type: attestation-manifest)
// whose layers are unsigned in-toto statements, an SLSA provenance and an
// SPDX SBOM, about that platform manifest. vouch walks the attestation
// manifest as a referrer of its platform manifest, not as a platform; the
// cosign verifier checks the provenance's subject and predicate and, the
// statements being unsigned, leaves it skipped so that only a signature on
// the attestation manifest vouches for it; the sbom verifier checks the
// SBOM by its rules. Both registry kinds.
func TestBuildKitAttestations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cv, err := cosign.New("cosign", inDir(f.dir, cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{"ecdsa.pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{
			Predicates: []cosign.Predicate{{Type: "slsaprovenance1", Fields: map[string]string{"runDetails.builder.id": "https://builder.test/v1"}}},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := sbom.New("sbom", sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	signature := policy.Requirement{Kind: "signature"}
	signedProvenance := policy.Requirement{PredicateType: cosign.PredicateSLSAv1, Require: []policy.Requirement{signature}}
	sbomReq := policy.Requirement{PredicateType: cosign.PredicateSPDX}
	each := func(reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "buildkit", Repositories: []string{"*"}, Platforms: policy.PlatformsEach, Require: reqs}}}
	}
	spdx := func(license string) map[string]any {
		return map[string]any{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app", "dataLicense": "CC0-1.0",
			"documentNamespace": "https://example.com/app", "creationInfo": map[string]any{"created": "2024-01-01T00:00:00Z", "creators": []string{"Tool: buildkit"}},
			"packages": []any{map[string]any{"name": "readline", "SPDXID": "SPDXRef-readline", "versionInfo": "8.2", "downloadLocation": "NOASSERTION", "licenseConcluded": license}}}
	}
	provenance := func(builder string) map[string]any {
		return map[string]any{"buildDefinition": map[string]any{"buildType": "https://mobyproject.org/buildkit@v1"}, "runDetails": map[string]any{"builder": map[string]any{"id": builder}}}
	}

	cases := []struct {
		name             string
		builder, license string
		signAttestation  bool
		config           policy.Config
		want             vouch.Verdict
		reason           string
	}{
		{"signed attestation manifest", "https://builder.test/v1", "MIT", true, each(signature, signedProvenance, sbomReq), vouch.Allowed, ""},
		{"unsigned attestation manifest", "https://builder.test/v1", "MIT", false, each(signature, signedProvenance), vouch.Denied, "(no signature found)"},
		{"unsigned provenance unchecked", "https://builder.test/v1", "MIT", false, each(signature, policy.Requirement{PredicateType: cosign.PredicateSLSAv1}), vouch.Denied, "not checked: cosign: unsigned attestation"},
		{"another builder", "https://evil.test", "MIT", true, each(signature, signedProvenance), vouch.Denied, "predicate field runDetails.builder.id is https://evil.test"},
		{"SBOM with a denied license", "https://builder.test/v1", "GPL-3.0-only", true, each(signature, sbomReq), vouch.Denied, "denied license GPL-3.0-only"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("buildkit/app%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" buildkit "+c.name)
					img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
					var layers []ocispec.Descriptor
					for _, s := range []struct {
						pt        string
						predicate any
					}{{cosign.PredicateSLSAv1, provenance(c.builder)}, {cosign.PredicateSPDX, spdx(c.license)}} {
						l := p.Blob("application/vnd.in-toto+json", statement(t, s.pt, img.Digest, s.predicate))
						l.Annotations = map[string]string{"in-toto.io/predicate-type": s.pt}
						layers = append(layers, l)
					}
					config := p.Blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`))
					att := p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}, "")
					att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
					att.Annotations = map[string]string{vouch.AnnotationDockerReferenceType: vouch.DockerReferenceAttestation, vouch.AnnotationDockerReferenceDigest: img.Digest.String()}
					index := p.Index("v1", img, att)
					// The platform manifest is signed, as `cosign sign
					// --recursive` signs each manifest of an index.
					sign := func(subject ocispec.Descriptor) {
						stmt := statement(t, cosign.PredicateCosignSign, subject.Digest, map[string]any{})
						pushBundle(t, p, subject, cosign.BundleV03Type, cosign.PredicateCosignSign, f.sigstore.dsseBundle(t, stmt, bundleOptions{key: f.ecdsaKey}))
					}
					sign(img)
					if c.signAttestation {
						sign(att)
					}
					pol, err := policy.New(c.config, []string{"cosign", "sbom"})
					if err != nil {
						t.Fatal(err)
					}
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{cv, sv}, Policy: pol, Discovery: vouch.Discovery{CosignTags: true}}
					r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/"+repo+"@"+index.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: %s", r.Verdict, r.Reason)
					if r.Verdict != c.want || !strings.Contains(r.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", r.Verdict, r.Reason, c.want, c.reason)
					}
					if n := len(r.Root.Manifests); n != 1 {
						t.Fatalf("the index has %d platform manifests in the report, want 1 (the attestation manifest is a referrer)", n)
					}
					var found bool
					for _, ref := range r.Root.Manifests[0].Referrers {
						if ref.ArtifactType == vouch.BuildKitAttestationType && ref.Source == vouch.SourceIndexAttestation && ref.Digest == att.Digest {
							found = true
						}
					}
					if !found {
						t.Errorf("the platform manifest's referrers do not list the attestation manifest %s", att.Digest)
					}
				})
			}
		})
	}
}
