package sbom_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// TestAttestations: an SBOM carried as the predicate of an in-toto
// statement is checked by the same rules as an attached SBOM, whatever
// packaged the statement: cosign's .att tag (a DSSE envelope), an in-toto
// referrer, a Sigstore bundle. The statements here are not signed: the
// sbom verifier reads content only, and the cosign verifier's tests (with
// real signatures, and the real cosign CLIs) check who signed them.
func TestAttestations(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow, Discovery: vouch.Discovery{CosignTags: true}}
	mustJSON := func(x any) []byte {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	statement := func(subject digest.Digest, predicateType string, predicate []byte) []byte {
		return mustJSON(map[string]any{
			"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateType,
			"subject":   []any{map[string]any{"name": "img", "digest": map[string]string{"sha256": subject.Encoded()}}},
			"predicate": json.RawMessage(predicate),
		})
	}
	envelope := func(stmt []byte) []byte {
		return mustJSON(map[string]any{"payloadType": "application/vnd.in-toto+json", "payload": base64.StdEncoding.EncodeToString(stmt), "signatures": []any{map[string]string{"sig": "AAAA"}}})
	}
	bundle := func(stmt []byte) []byte {
		return mustJSON(map[string]any{"mediaType": vouch.SigstoreBundleType, "dsseEnvelope": json.RawMessage(envelope(stmt))})
	}
	gpl := fixture(t, "app.cdx.json") // holds packages under GPL-3.0-only
	clean := fixture(t, "minimal-2.2.spdx.json")

	cases := []struct {
		name string
		push func(p *testbed.Pusher, img ocispec.Descriptor)
		want []string // outcome: reason substrings of the sbom verifier's results
	}{
		{"CycloneDX with a denied license in a bundle", func(p *testbed.Pusher, img ocispec.Descriptor) {
			p.Attach(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, bundle(statement(img.Digest, "https://cyclonedx.org/bom", gpl)))
		}, []string{"failed: CycloneDX-1.6 SBOM of 9 components: 3 of 9 components fail the policy"}},
		{"clean SPDX in an in-toto referrer", func(p *testbed.Pusher, img ocispec.Descriptor) {
			p.Attach(img, "application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json", envelope(statement(img.Digest, sbom.PredicateSPDX, clean)))
		}, []string{"passed: SPDX-2.2 SBOM of 1 package: no denied license"}},
		{".att tag with a clean SBOM and one with a denied license", func(p *testbed.Pusher, img ocispec.Descriptor) {
			layers := []ocispec.Descriptor{
				p.Blob("application/vnd.dsse.envelope.v1+json", envelope(statement(img.Digest, sbom.PredicateSPDX, clean))),
				p.Blob("application/vnd.dsse.envelope.v1+json", envelope(statement(img.Digest, "https://cyclonedx.org/bom/v1.6", gpl))),
			}
			config := p.Blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`))
			p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}, "sha256-"+img.Digest.Encoded()+".att")
		}, []string{"failed: CycloneDX-1.6 SBOM of 9 components"}},
		{"an SBOM about another image", func(p *testbed.Pusher, img ocispec.Descriptor) {
			p.Attach(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, bundle(statement(digest.FromString("another image"), sbom.PredicateSPDX, clean)))
		}, []string{"failed: the SBOM attestation is about sha256:", "not the subject "}},
		{"a signature bundle holds no SBOM", func(p *testbed.Pusher, img ocispec.Descriptor) {
			p.Attach(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, bundle(statement(img.Digest, "https://sigstore.dev/cosign/sign/v1", []byte(`{}`))))
		}, []string{"skipped: no SBOM predicate"}},
		{"an SBOM that does not parse", func(p *testbed.Pusher, img ocispec.Descriptor) {
			p.Attach(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, bundle(statement(img.Digest, sbom.PredicateSPDX, []byte(`"SPDXVersion: SPDX-2.3"`))))
		}, []string{"failed: malformed SPDX SBOM in the attestation's predicate"}},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := testbed.NewPusher(t, reg.Host, "demo/sbom-att")
					img := p.Image("", reg.Name+" "+c.name)
					c.push(p, img)
					report, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/demo/sbom-att@"+img.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					got := sbomResults(report.Root)
					if len(got) != 1 {
						t.Fatalf("%d results, want 1:\n%s", len(got), strings.Join(got, "\n"))
					}
					containsAll(t, got, c.want...)
					// The claim names the predicate type with the same outcome.
					for _, n := range report.Root.Referrers {
						for _, r := range n.Results {
							if r.Outcome == vouch.Skipped {
								continue
							}
							if len(r.Claims) == 0 || r.Claims[len(r.Claims)-1].Kind != vouch.ClaimAttestation {
								t.Errorf("claims %+v, want an attestation claim", r.Claims)
							}
						}
					}
				})
			}
		})
	}
}
