//go:build policycode

package policy_test

import (
	"context"
	"os"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/policy/code"
)

// tenNodes is a 10-node report tree as a verified image has it: two
// signatures (one untrusted), a signed SBOM and a signed SARIF report, an
// attestation with an untrusted signature,
// and a signed signature, each with verifier details.
func tenNodes() *vouch.Node {
	sig := func(seed string, o vouch.Outcome, nested ...*vouch.Node) *vouch.Node {
		n := referrer(seed, notationType, o, "notation: "+string(o), nested...)
		n.Annotations = map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": `["a","b"]`}
		n.Results = []vouch.Result{{Verifier: "notation", Outcome: o, Reason: string(o), Details: map[string]any{
			"signer": "CN=release,O=acme", "issuer": "CN=acme CA", "envelope": "jws", "level": "strict", "trustPolicy": "prod",
		}}}
		return n
	}
	sbom := referrer("sbom", spdxType, vouch.Passed, "sbom: passed", sig("s3", vouch.Passed))
	sbom.Results = []vouch.Result{{Verifier: "sbom", Outcome: vouch.Passed, Details: map[string]any{
		"packages": []map[string]string{{"name": "zlib", "version": "1.3", "license": "Zlib"}, {"name": "openssl", "version": "3.0.13", "license": "Apache-2.0"}},
	}}}
	sarif := referrer("sarif", sarifType, vouch.Passed, "vulns: passed", sig("s4", vouch.Passed))
	sarif.Results = []vouch.Result{{Verifier: "vulns", Outcome: vouch.Passed, Details: map[string]any{
		"findings": []map[string]any{{"id": "CVE-2024-0001", "severity": "low"}, {"id": "CVE-2024-0002", "severity": "medium"}},
	}}}
	att := referrer("att", "application/vnd.in-toto+json", vouch.Skipped, "no verifier", referrer("att-sig", notationType, vouch.Failed, "notation: failed"))
	root := subject("app", sig("s1", vouch.Passed, sig("s1s", vouch.Passed)), sig("s2", vouch.Failed), sbom, sarif, att)
	if n := root.Count(); n != 10 {
		panic(n)
	}
	return root
}

// BenchmarkDecide10Nodes is one decision over a 10-node report tree by
// the same policy written three ways: a require list, Rego
// (examples/policies/signed-sbom.rego) and CEL. The Rego and CEL numbers
// include building the input document (BenchmarkInput10Nodes alone).
func BenchmarkDecide10Nodes(b *testing.B) {
	regoSrc, err := os.ReadFile("../examples/policies/signed-sbom.rego")
	if err != nil {
		b.Fatal(err)
	}
	sigReq := policy.Requirement{ArtifactType: notationType}
	scopes := map[string]policy.Scope{
		"config": {Require: []policy.Requirement{sigReq, {ArtifactType: spdxType, Require: []policy.Requirement{sigReq}}}},
		"rego":   {Rego: &policy.Rego{Inline: string(regoSrc)}},
		"cel": {CEL: &policy.CEL{Validations: []policy.CELValidation{
			{Expression: `input.referrers.exists(r, r.artifactType == "application/vnd.cncf.notary.signature" && r.verified)`, Message: "no signature"},
			{Expression: `input.referrers.exists(s, s.artifactType == "application/spdx+json" && s.outcome in ["passed", "skipped"] && s.referrers.exists(r, r.artifactType == "application/vnd.cncf.notary.signature" && r.verified))`, Message: "no signed SBOM"},
		}}},
	}
	root := tenNodes()
	ref := vouch.Reference{Registry: "registry.example", Repository: "app", Digest: root.Digest}
	for _, name := range []string{"config", "rego", "cel"} {
		b.Run(name, func(b *testing.B) {
			p, err := policy.New(codeScope(scopes[name]), nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d, err := p.Decide(ctx, ref, root)
				if err != nil || d.Verdict != vouch.Allowed {
					b.Fatalf("%+v, %v", d, err)
				}
			}
		})
	}
}

// BenchmarkInput10Nodes builds the input document of a 10-node tree.
func BenchmarkInput10Nodes(b *testing.B) {
	root := tenNodes()
	ref := vouch.Reference{Registry: "registry.example", Repository: "app", Digest: root.Digest}
	b.ReportAllocs()
	for b.Loop() {
		code.Input(code.Subject{Ref: ref}, root)
	}
}
