package vulnreport_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// TestAttestations: a vulnerability scan carried as a cosign vulnerability
// attestation (`cosign attest --type vuln`, its scanner.result a SARIF
// log) in a Sigstore bundle is checked by the same rules as an attached
// SARIF report. The statements are not signed here: this verifier reads
// content only, and the cosign verifier's tests check who signed them.
func TestAttestations(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical"}})
	policy := vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
	})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy}
	bundle := func(subject digest.Digest, predicateType string, predicate any) []byte {
		p, err := json.Marshal(predicate)
		if err != nil {
			t.Fatal(err)
		}
		stmt, _ := json.Marshal(map[string]any{
			"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateType, "predicate": json.RawMessage(p),
			"subject": []any{map[string]any{"name": "img", "digest": map[string]string{"sha256": subject.Encoded()}}},
		})
		b, _ := json.Marshal(map[string]any{"mediaType": vouch.SigstoreBundleType, "dsseEnvelope": map[string]any{
			"payloadType": "application/vnd.in-toto+json", "payload": base64.StdEncoding.EncodeToString(stmt), "signatures": []any{map[string]string{"sig": "AAAA"}}}})
		return b
	}
	scan := func(result json.RawMessage) map[string]any {
		return map[string]any{"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.74.0", "version": "0.74.0", "result": result},
			"metadata": map[string]any{"scanStartedOn": "2026-11-24T09:00:00Z", "scanFinishedOn": "2026-11-24T09:01:00Z"}}
	}
	cases := []struct {
		name      string
		predicate func(img digest.Digest) []byte
		outcome   vouch.Outcome
		reason    string
	}{
		{"critical finding in the SARIF result", func(img digest.Digest) []byte {
			return bundle(img, vulnreport.PredicateVuln, scan(fixture(t, "trivy-log4j.sarif")))
		}, vouch.Failed, "CVE-2021-44228"},
		{"low findings only", func(img digest.Digest) []byte {
			return bundle(img, vulnreport.PredicateVuln, scan(fixture(t, "trivy-low.sarif")))
		}, vouch.Passed, ""},
		{"Trivy's own JSON in scanner.result", func(img digest.Digest) []byte {
			return bundle(img, vulnreport.PredicateVuln, scan(json.RawMessage(`{"SchemaVersion":2,"Results":[]}`)))
		}, vouch.Failed, "is not a SARIF 2.1.0 log"},
		{"a scan of another image", func(digest.Digest) []byte {
			return bundle(digest.FromString("another"), vulnreport.PredicateVuln, scan(fixture(t, "trivy-low.sarif")))
		}, vouch.Failed, "the vulnerability attestation is about sha256:"},
		{"a provenance holds no scan", func(img digest.Digest) []byte {
			return bundle(img, "https://slsa.dev/provenance/v1", map[string]any{})
		}, vouch.Skipped, "no vulnerability scan"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := testbed.NewPusher(t, reg.Host, "demo/vuln-att")
					img := p.Image("", reg.Name+" "+c.name)
					p.Attach(img, vouch.SigstoreBundleType, vouch.SigstoreBundleType, c.predicate(img.Digest))
					r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/demo/vuln-att@"+img.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					if len(r.Root.Referrers) != 1 || len(r.Root.Referrers[0].Results) != 1 {
						t.Fatalf("want one referrer with one result: %+v", r.Root.Referrers)
					}
					res := r.Root.Referrers[0].Results[0]
					if res.Outcome != c.outcome || !strings.Contains(res.Reason, c.reason) {
						t.Fatalf("got %s %q, want %s containing %q", res.Outcome, res.Reason, c.outcome, c.reason)
					}
					if c.outcome != vouch.Skipped && (len(res.Claims) != 1 || res.Claims[0].PredicateType != vulnreport.PredicateVuln || res.Claims[0].Outcome != c.outcome) {
						t.Errorf("claims %+v, want one %s claim of %s", res.Claims, c.outcome, vulnreport.PredicateVuln)
					}
				})
			}
		})
	}
}
