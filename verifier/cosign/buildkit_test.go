package cosign_test

import (
	"context"
	"fmt"
	"os"
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
	spdx := buildKitSPDX
	provenance := buildKitProvenance

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
					index, att := pushBuildKit(t, p, img, provenance(c.builder), spdx(c.license))
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

// buildKitProvenance is the SLSA provenance v1 predicate BuildKit writes,
// reduced to what the tests check.
func buildKitProvenance(builder string) map[string]any {
	return map[string]any{"buildDefinition": map[string]any{"buildType": "https://mobyproject.org/buildkit@v1"}, "runDetails": map[string]any{"builder": map[string]any{"id": builder}}}
}

// buildKitSPDX is an SPDX SBOM of one package under license.
func buildKitSPDX(license string) map[string]any {
	return map[string]any{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app", "dataLicense": "CC0-1.0",
		"documentNamespace": "https://example.com/app", "creationInfo": map[string]any{"created": "2024-01-01T00:00:00Z", "creators": []string{"Tool: buildkit"}},
		"packages": []any{map[string]any{"name": "readline", "SPDXID": "SPDXRef-readline", "versionInfo": "8.2", "downloadLocation": "NOASSERTION", "licenseConcluded": license}}}
}

// pushBuildKit pushes, tagged v1, the index `docker buildx build
// --provenance --sbom` pushes for the platform manifest img (its Platform
// set): img, and its attestation manifest holding unsigned in-toto
// statements of provenance and sbom about img.
func pushBuildKit(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, provenance, sbom map[string]any) (index, att ocispec.Descriptor) {
	t.Helper()
	var layers []ocispec.Descriptor
	for _, s := range []struct {
		pt        string
		predicate any
	}{{cosign.PredicateSLSAv1, provenance}, {cosign.PredicateSPDX, sbom}} {
		l := p.Blob("application/vnd.in-toto+json", statement(t, s.pt, img.Digest, s.predicate))
		l.Annotations = map[string]string{"in-toto.io/predicate-type": s.pt}
		layers = append(layers, l)
	}
	config := p.Blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`))
	att = p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}, "")
	att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	att.Annotations = map[string]string{vouch.AnnotationDockerReferenceType: vouch.DockerReferenceAttestation, vouch.AnnotationDockerReferenceDigest: img.Digest.String()}
	return p.Index("v1", img, att), att
}

// TestBuildKitCosignCLI: the BuildKit index of TestBuildKitAttestations,
// signed by the real cosign v3 CLI as the docs say to: `cosign sign
// --recursive` of the index signs the platform manifest and the
// attestation manifest, and the policy that requires a signed provenance
// on each platform allows it; signing the platform manifest alone leaves
// the provenance unsigned, and the policy denies it. Each verdict is
// cross-checked with `cosign verify` of the platform and attestation
// manifests. Both registry kinds.
func TestBuildKitCosignCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "COSIGN_PASSWORD=", "COSIGN_YES=true", "XDG_CONFIG_HOME=" + dir, "TUF_ROOT=" + dir + "/tuf"}
	key := dir + "/cosign"
	testbed.Run(t, env, "cosign3", "generate-key-pair", "--output-key-prefix", key)
	emptyRoot := dir + "/trusted_root.json"
	if err := os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cv, err := cosign.New("cosign", cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{key + ".pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{
			Predicates: []cosign.Predicate{{Type: "slsaprovenance1", Fields: map[string]string{"runDetails.builder.id": "https://builder.test/v1"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	signature := policy.Requirement{Kind: "signature"}
	pol, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "buildkit", Repositories: []string{"*"}, Platforms: policy.PlatformsEach, Require: []policy.Requirement{
		signature, {PredicateType: cosign.PredicateSLSAv1, Require: []policy.Requirement{signature}},
	}}}}, []string{"cosign"})
	if err != nil {
		t.Fatal(err)
	}
	sign := []string{"sign", "--key", key + ".key", "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry"}
	verify := []string{"verify", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--trusted-root", emptyRoot}
	cases := []struct {
		name      string
		recursive bool
		want      vouch.Verdict
		reason    string
	}{
		{"cosign sign --recursive of the index", true, vouch.Allowed, ""},
		{"cosign sign of the platform manifest", false, vouch.Denied, "no signature found"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("buildkit/cli%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" buildkit CLI "+c.name)
					img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
					index, att := pushBuildKit(t, p, img, buildKitProvenance("https://builder.test/v1"), buildKitSPDX("MIT"))
					at := func(d ocispec.Descriptor) string { return reg.Host + "/" + repo + "@" + d.Digest.String() }
					if c.recursive {
						testbed.Run(t, env, "cosign3", append(append([]string{}, sign...), "--recursive", at(index))...)
					} else {
						testbed.Run(t, env, "cosign3", append(append([]string{}, sign...), at(img))...)
					}
					r, err := (&vouch.Executor{Store: store, Verifiers: []vouch.Verifier{cv}, Policy: pol}).Verify(ctx, testbed.Ref(t, at(index)))
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: %s", r.Verdict, r.Reason)
					if r.Verdict != c.want || !strings.Contains(r.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", r.Verdict, r.Reason, c.want, c.reason)
					}
					cosignOK := true
					for _, d := range []ocispec.Descriptor{img, att} {
						out, err := testbed.RunErr(env, testbed.Bin(t, "cosign3"), append(append([]string{}, verify...), at(d))...)
						t.Logf("cosign3 verify %s: err=%v", d.Digest, err)
						if err != nil {
							cosignOK = false
							t.Logf("%s", out)
						}
					}
					if cosignOK != (c.want == vouch.Allowed) {
						t.Errorf("cosign verify of the platform and attestation manifests ok=%v, vouch %s", cosignOK, r.Verdict)
					}
				})
			}
		})
	}
}
