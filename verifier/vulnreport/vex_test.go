package vulnreport_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// TestVEXBounds: what the VEX search reads is bounded, and past a bound the
// report's check is an error (vouch fails closed), on both registry kinds.
// The trust verifier is a VerifierFunc that passes every Notary Project
// signature; the documents here carry none, so it is never asked (the real
// signature paths are cmd/vouch's TestVEX).
func TestVEXBounds(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical"}, VEX: &vulnreport.VEXConfig{TrustedBy: []string{"trust"}}})
	trust := vouch.VerifierFunc{VerifierName: "trust", ArtifactTypes: []string{"application/vnd.cncf.notary.signature"},
		Func: func(context.Context, *vouch.VerifyRequest) (vouch.Result, error) {
			return vouch.Pass("trusted", nil), nil
		}}
	if err := v.Link(func(name string) (vouch.Verifier, bool) { return trust, name == "trust" }); err != nil {
		t.Fatal(err)
	}
	policy := vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
	})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy}
	doc := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"doc-%d","statements":[]}`, i))
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/vex-bounds")
			check := func(img ocispec.Descriptor) vouch.Result {
				t.Helper()
				r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/demo/vex-bounds@"+img.Digest.String()))
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range r.Root.Referrers {
					if n.ArtifactType == vulnreport.MediaType && len(n.Results) == 1 {
						return n.Results[0]
					}
				}
				t.Fatalf("no result on the report: %+v", r.Root.Referrers)
				return vouch.Result{}
			}

			img := p.Image("", reg.Name+" many")
			p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "trivy-low.sarif"))
			for i := range vulnreport.MaxVEXDocuments + 1 {
				p.Attach(img, vulnreport.VEXMediaType, vulnreport.VEXMediaType, doc(i))
			}
			if res := check(img); res.Outcome != vouch.Errored || !strings.Contains(res.Reason, fmt.Sprintf("more than %d VEX documents", vulnreport.MaxVEXDocuments)) {
				t.Fatalf("%d VEX documents: %s %q", vulnreport.MaxVEXDocuments+1, res.Outcome, res.Reason)
			}

			img = p.Image("", reg.Name+" few")
			p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "trivy-low.sarif"))
			p.Attach(img, vulnreport.VEXMediaType, vulnreport.VEXMediaType, doc(0))
			res := check(img)
			if res.Outcome != vouch.Passed || !strings.Contains(fmt.Sprint(res.Details["vexIgnored"]), "unsigned") {
				t.Fatalf("one unsigned VEX document: %s %q %v", res.Outcome, res.Reason, res.Details)
			}
		})
	}
}

// TestVEXAttestationKinds: which VEX statements in attestations count,
// besides who signed them: a CycloneDX predicate (`cosign attest --type
// cyclonedx`, also of a versioned type) with analysed vulnerabilities is
// VEX with vex.cycloneDX and nothing without; a CycloneDX SBOM predicate
// is no VEX and is not listed as ignored; a malformed analysis, two VEX
// statements in one attestation, or a statement about another image are
// ignored, with the reason. The trust verifier is a VerifierFunc that
// passes every Sigstore bundle with a claim of each VEX predicate type:
// the signatures are cmd/vouch's TestVEXAttestation's, made by the real
// cosign CLIs. Both registry kinds.
func TestVEXAttestationKinds(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	trust := vouch.VerifierFunc{VerifierName: "cosign", ArtifactTypes: []string{vouch.SigstoreBundleType},
		Func: func(_ context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
			var claims []vouch.Claim
			for _, pt := range []string{vulnreport.PredicateOpenVEX, vulnreport.PredicateCycloneDX, vulnreport.PredicateCycloneDX + "/v1.6"} {
				claims = append(claims, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: pt, Outcome: vouch.Passed})
			}
			res := vouch.Pass("trusted", nil)
			res.Claims = claims
			return res, nil
		}}
	verifier := func(cycloneDX bool) *vulnreport.Verifier {
		v := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical"}, VEX: &vulnreport.VEXConfig{TrustedBy: []string{"cosign"}, CycloneDX: cycloneDX}})
		if err := v.Link(func(name string) (vouch.Verifier, bool) { return trust, name == "cosign" }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	withCDX, withoutCDX := verifier(true), verifier(false)
	policy := vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
	})
	statement := func(subject digest.Digest, predicateType string, predicate []byte) []byte {
		b, err := json.Marshal(map[string]any{
			"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateType, "predicate": json.RawMessage(predicate),
			"subject": []any{map[string]any{"name": "img", "digest": map[string]string{"sha256": subject.Encoded()}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bundle := func(stmt []byte) []byte {
		b, err := json.Marshal(map[string]any{"mediaType": vouch.SigstoreBundleType, "dsseEnvelope": map[string]any{
			"payloadType": "application/vnd.in-toto+json", "payload": base64.StdEncoding.EncodeToString(stmt), "signatures": []any{map[string]string{"sig": "AAAA"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	purl := func(d digest.Digest) string { return "pkg:oci/app@" + strings.Replace(d.String(), ":", "%3A", 1) }
	cdx := func(d digest.Digest, state string) []byte {
		var vulns []string
		for _, id := range []string{"CVE-2021-44228", "CVE-2021-45046"} {
			vulns = append(vulns, fmt.Sprintf(`{"id":%q,"analysis":{"state":%q,"detail":"JNDI lookups are disabled"},"affects":[{"ref":"app"}]}`, id, state))
		}
		return []byte(fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"bom-ref":"app","type":"container","name":"app","purl":%q}},"vulnerabilities":[%s]}`,
			purl(d), strings.Join(vulns, ",")))
	}
	openvex := func(d digest.Digest) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"doc","author":"a","timestamp":"2026-01-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-2021-44228"},"products":[{"@id":%q}],"status":"not_affected","justification":"vulnerable_code_not_present"}]}`, purl(d)))
	}
	sbom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"log4j-core","purl":"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}`)

	cases := []struct {
		name      string
		v         *vulnreport.Verifier
		layers    func(img digest.Digest) [][]byte // one bundle per layer
		outcome   vouch.Outcome
		reason    string
		ignored   string // in Details["vexIgnored"], if anything
		noIgnored bool
	}{
		{"CycloneDX VEX", withCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateCycloneDX, cdx(img, "not_affected")))}
		}, vouch.Passed, "CVE-2021-45046 not_affected by VEX", "", true},
		{"CycloneDX VEX of a versioned predicate type", withCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateCycloneDX+"/v1.6", cdx(img, "resolved")))}
		}, vouch.Passed, "CVE-2021-44228 fixed by VEX", "", true},
		{"CycloneDX VEX without vex.cycloneDX", withoutCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateCycloneDX, cdx(img, "not_affected")))}
		}, vouch.Failed, "2 findings denied", "", true},
		{"CycloneDX SBOM", withCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateCycloneDX, sbom))}
		}, vouch.Failed, "2 findings denied", "", true},
		{"CycloneDX VEX with an unknown analysis state", withCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateCycloneDX, cdx(img, "fine")))}
		}, vouch.Failed, "2 findings denied", `not CycloneDX VEX that vouch reads: vulnerabilities[0].analysis.state \"fine\"`, false},
		{"OpenVEX and CycloneDX VEX in one attestation", withCDX, func(img digest.Digest) [][]byte {
			return [][]byte{bundle(statement(img, vulnreport.PredicateOpenVEX, openvex(img))), bundle(statement(img, vulnreport.PredicateCycloneDX, cdx(img, "not_affected")))}
		}, vouch.Failed, "2 findings denied", "the attestation holds 2 VEX statements", false},
		{"CycloneDX VEX about another image", withCDX, func(img digest.Digest) [][]byte {
			other := digest.FromString("another image")
			return [][]byte{bundle(statement(other, vulnreport.PredicateCycloneDX, cdx(img, "not_affected")))}
		}, vouch.Failed, "2 findings denied", "the VEX attestation is about sha256:", false},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := testbed.NewPusher(t, reg.Host, "vexkinds/app")
					img := p.Image("", reg.Name+" "+c.name)
					p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "trivy-log4j.sarif"))
					m := p.ArtifactManifest(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, c.layers(img.Digest)[0])
					for _, l := range c.layers(img.Digest)[1:] {
						m.Layers = append(m.Layers, p.Blob(vouch.SigstoreBundleType, l))
					}
					p.Manifest(ocispec.MediaTypeImageManifest, m, "")
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{c.v}, Policy: policy}
					r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/vexkinds/app@"+img.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					var res *vouch.Result
					for _, n := range r.Root.Referrers {
						if n.ArtifactType == vulnreport.MediaType && len(n.Results) == 1 {
							res = &n.Results[0]
						}
					}
					if res == nil {
						t.Fatalf("no result on the report: %+v", r.Root.Referrers)
					}
					ignored, _ := json.Marshal(res.Details["vexIgnored"])
					t.Logf("%s: %s; ignored %s", res.Outcome, res.Reason, ignored)
					if res.Outcome != c.outcome || !strings.Contains(res.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", res.Outcome, res.Reason, c.outcome, c.reason)
					}
					if c.noIgnored && res.Details["vexIgnored"] != nil || !strings.Contains(string(ignored), c.ignored) {
						t.Errorf("vexIgnored %s, want %q", ignored, c.ignored)
					}
				})
			}
		})
	}
}
