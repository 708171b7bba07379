package policy_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/verifier/sbom"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// verified is a referrer with one verifier's result, summed up as the
// Executor sums it up.
func verified(seed, artifactType string, res vouch.Result) *vouch.Node {
	n := referrer(seed, artifactType, res.Outcome, res.Verifier+": "+res.Reason)
	n.Results = []vouch.Result{res}
	return n
}

// untrustedNotation is the notation verifier's result on a signature by a
// certificate that no trust store of the statement holds, as it reports
// it (verifier/notation).
func untrustedNotation() vouch.Result {
	return vouch.Result{Verifier: "notation", Outcome: vouch.Failed,
		Reason:  `untrusted signer: the certificate chain of "CN=untrusted,O=rogue" (issued by "CN=rogue CA,O=rogue") does not include a certificate from trust stores ca:acme, named by trust policy statement "prod"; to trust it, add its CA to one of them`,
		Details: map[string]any{"signer": "CN=untrusted,O=rogue", "issuer": "CN=rogue CA,O=rogue", "trustPolicy": "prod", "level": "strict", "envelope": "jws"}}
}

// TestExplanations: a denial's reason says what was found instead of what
// a requirement asks, and its explanations say it in full, from results
// shaped as the verifiers make them (the SBOM and SARIF ones made by the
// real verifiers from the test files of their packages).
func TestExplanations(t *testing.T) {
	sbomVerifier, err := sbom.New("licenses", sbom.Config{DeniedPackages: []string{"log4j-core@<2.17.1"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../verifier/sbom/testdata/alpine.spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sbom.ParseSPDX(data)
	if err != nil {
		t.Fatal(err)
	}
	sbomResult := sbomVerifier.Check(doc, time.Now())
	sbomResult.Verifier = "licenses"

	vulnVerifier, err := vulnreport.New("vulns", vulnreport.Config{DeniedSeverities: []string{"critical"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile("../verifier/vulnreport/testdata/trivy-log4j.sarif")
	if err != nil {
		t.Fatal(err)
	}
	sarif, err := vulnreport.ParseSARIF(data)
	if err != nil {
		t.Fatal(err)
	}
	vulnResult := vulnVerifier.Check(sarif, nil, time.Now())
	vulnResult.Verifier = "vulns"

	sigBundle := verified("bundle", bundleType, vouch.Result{Verifier: "release", Outcome: vouch.Passed, Reason: "signed by https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
		Details: map[string]any{"subject": "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"},
		Claims:  []vouch.Claim{{Kind: vouch.ClaimSignature, Outcome: vouch.Passed, Reason: "signature passed"}}})
	unknown := referrer("approval", "application/vnd.example.approval", vouch.Skipped, "no verifier handles artifact type application/vnd.example.approval")

	scope := func(mode vouch.Mode, reqs ...policy.Requirement) policy.Config {
		return policy.Config{Scopes: []policy.Scope{{Name: "prod", Repositories: []string{"*"}, Mode: mode, Require: reqs}}}
	}
	type found struct {
		seed, signer string
		outcome      vouch.Outcome
		reason       string // in the finding's reason
	}
	tests := []struct {
		name        string
		config      policy.Config
		root        *vouch.Node
		reason      []string // in the decision's reason
		requirement string
		wanted      string // in the explanation's wanted
		found       []found
	}{
		{"an untrusted signer", scope("", policy.Requirement{Kind: "signature"}), subject("a", verified("rogue", notationType, untrustedNotation())),
			[]string{`scope "prod": no signature verified (1 found, none verifies): ` + short("rogue") + ` failed: notation: untrusted signer: the certificate chain of "CN=untrusted,O=rogue"`, `trust stores ca:acme, named by trust policy statement "prod"`},
			"signature", "a signature of the subject that verifies",
			[]found{{"rogue", "CN=untrusted,O=rogue", vouch.Failed, "untrusted signer"}}},
		{"the signer is named when the reason does not", scope("", policy.Requirement{ArtifactType: bundleType}),
			subject("a", verified("other", bundleType, vouch.Result{Verifier: "release", Outcome: vouch.Failed, Reason: "no certificate identity matches", Details: map[string]any{"subject": "https://github.com/evil/app"}})),
			[]string{short("other") + ` by "https://github.com/evil/app" failed: release: no certificate identity matches`},
			bundleType, "a referrer of artifact type " + bundleType + " that verifies",
			[]found{{"other", "https://github.com/evil/app", vouch.Failed, "no certificate identity matches"}}},
		{"nothing at all", scope("", policy.Requirement{ArtifactType: spdxType}), subject("a"),
			[]string{`scope "prod": no application/spdx+json found`},
			spdxType, "a referrer of artifact type application/spdx+json that verifies", nil},
		{"a signature bundle where a provenance is required", scope("", policy.Requirement{PredicateType: slsaV1}), subject("a", sigBundle),
			[]string{"no attestation of predicate type " + slsaV1 + " found; found instead 1 referrer: " + bundleType + " " + short("bundle") + " (it is a signature, not an attestation of predicate type " + slsaV1 + ")"},
			"attestation of predicate type " + slsaV1, "an in-toto attestation of predicate type " + slsaV1 + " about the subject that verifies",
			[]found{{"bundle", "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", vouch.Passed, "it is a signature"}}},
		{"another artifact type", scope("", policy.Requirement{ArtifactType: spdxType}), subject("a", unknown),
			[]string{"no application/spdx+json found; found instead 1 referrer: application/vnd.example.approval " + short("approval") + " (artifact type application/vnd.example.approval, not application/spdx+json)"},
			spdxType, "a referrer of artifact type application/spdx+json", []found{{"approval", "", vouch.Skipped, "not application/spdx+json"}}},
		{"an SLSA level not shown", scope("", policy.Requirement{SLSABuildLevel: 3}),
			subject("a", verified("prov", bundleType, vouch.Result{Verifier: "release", Outcome: vouch.Passed, Reason: "provenance passed",
				Claims: []vouch.Claim{{Kind: vouch.ClaimAttestation, PredicateType: slsaV1, Outcome: vouch.Passed, Reason: "builder https://ci.example is not hardened", SLSABuildLevel: 2}}})),
			[]string{"no SLSA Build level 3 provenance verified (1 found, none verifies): " + short("prov") + " failed: release: shows SLSA Build level 2, want 3: builder https://ci.example is not hardened"},
			"SLSA Build level 3 provenance", "showing SLSA Build level 3 or more",
			[]found{{"prov", "", vouch.Failed, "shows SLSA Build level 2, want 3"}}},
		{"an SBOM lists a denied package", scope("", policy.Requirement{ArtifactType: spdxType}), subject("a", verified("sbom", spdxType, sbomResult)),
			[]string{"no application/spdx+json verified (1 found, none verifies): " + short("sbom") + " failed: licenses: ", "log4j-core 2.14.1 (denied package log4j-core@<2.17.1"},
			spdxType, "a referrer of artifact type application/spdx+json that verifies",
			[]found{{"sbom", "", vouch.Failed, "log4j-core 2.14.1"}}},
		{"a vulnerability report with a critical finding", scope("", policy.Requirement{ArtifactType: sarifType}), subject("a", verified("sarif", sarifType, vulnResult)),
			[]string{short("sarif") + " failed: vulns: ", "CVE-2021-44228"},
			sarifType, "a referrer of artifact type application/sarif+json that verifies",
			[]found{{"sarif", "", vouch.Failed, "CVE-2021-44228"}}},
		{"an unsigned SBOM", scope("", policy.Requirement{ArtifactType: spdxType, Require: []policy.Requirement{{Kind: "signature"}}}),
			subject("a", referrer("sbom", spdxType, vouch.Skipped, "no verifier handles artifact type application/spdx+json")),
			[]string{"no application/spdx+json verified (1 found, none verifies): " + short("sbom") + " (no signature found)"},
			spdxType, "itself with signature verified",
			[]found{{"sbom", "", vouch.Skipped, "(no signature found)"}}},
		{"none of the alternatives", scope("", policy.Requirement{AnyOf: []policy.Requirement{{ArtifactType: notationType}, {Kind: "signature", Verifiers: []string{"release"}}}}),
			subject("a", verified("rogue", notationType, untrustedNotation())),
			[]string{"none of the alternatives is met: no application/vnd.cncf.notary.signature verified (1 found, none verifies)", " / no signature found; found instead 1 referrer: " + notationType + " " + short("rogue") + " (not checked by verifier release, only by notation)"},
			"one of: application/vnd.cncf.notary.signature | signature", "; or a signature of the subject",
			[]found{{"rogue", "CN=untrusted,O=rogue", vouch.Failed, "untrusted signer"}, {"rogue", "CN=untrusted,O=rogue", vouch.Failed, "not checked by verifier release"}}},
		{"warn mode explains what it waives", scope(vouch.ModeWarn, policy.Requirement{Kind: "signature"}), subject("a"),
			[]string{`allowed in warn mode, would deny: scope "prod": no signature found`}, "signature", "a signature", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(tt.config, []string{"notation", "release", "licenses", "vulns"})
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.reason {
				if !strings.Contains(d.Reason, want) {
					t.Errorf("reason %q\ndoes not say %q", d.Reason, want)
				}
			}
			if len(d.Explanations) != 1 {
				t.Fatalf("explanations: %+v", d.Explanations)
			}
			e := d.Explanations[0]
			if e.Requirement != tt.requirement || e.Scope != "prod" || e.Node != tt.root.Digest || e.NodeType != imageType ||
				!strings.Contains(d.Reason, e.Reason) || !strings.Contains(e.Wanted, tt.wanted) {
				t.Fatalf("explanation %+v", e)
			}
			if len(e.Found) != len(tt.found) {
				t.Fatalf("found %+v, want %d", e.Found, len(tt.found))
			}
			for i, f := range e.Found {
				want := tt.found[i]
				if f.Digest != digest.FromString(want.seed) || f.Signer != want.signer || f.Outcome != want.outcome || !strings.Contains(f.Reason, want.reason) {
					t.Errorf("found[%d] = %+v, want %+v", i, f, want)
				}
			}
		})
	}
}

// TestExplanationsBounded: an explanation lists at most
// vouch.MaxExplained findings and counts the rest.
func TestExplanationsBounded(t *testing.T) {
	root := subject("a")
	for i := range vouch.MaxExplained + 4 {
		root.Referrers = append(root.Referrers, verified(string(rune('a'+i)), notationType, untrustedNotation()))
	}
	p, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "prod", Repositories: []string{"*"}, Require: []policy.Requirement{{Kind: "signature"}}}}}, []string{"notation"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, root)
	if err != nil || len(d.Explanations) != 1 {
		t.Fatalf("%+v, %v", d, err)
	}
	if e := d.Explanations[0]; len(e.Found) != vouch.MaxExplained || e.FoundOmitted != 4 || !strings.Contains(d.Reason, "(14 found, none verifies)") || !strings.Contains(d.Reason, "and 11 more") {
		t.Fatalf("%d found, %d omitted; reason %q", len(e.Found), e.FoundOmitted, d.Reason)
	}
}

// TestExplanationsComposed: policy.All names the part whose requirement is
// unmet, and the default policy explains its denials too.
func TestExplanationsComposed(t *testing.T) {
	cluster := policy.Default([]string{"notation"})
	tenant, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "team", Repositories: []string{"*"}, Require: []policy.Requirement{{ArtifactType: spdxType}}}}}, []string{"notation"})
	if err != nil {
		t.Fatal(err)
	}
	all := policy.All(policy.Part{Name: "cluster", Policy: cluster, Verifiers: []string{"notation"}}, policy.Part{Name: "team-a", Policy: tenant, Verifiers: []string{"notation"}})
	root := subject("a", verified("rogue", notationType, untrustedNotation()))
	d, err := all.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, root)
	if err != nil || d.Verdict != vouch.Denied || len(d.Explanations) != 2 {
		t.Fatalf("%+v, %v", d, err)
	}
	c, team := d.Explanations[0], d.Explanations[1]
	if c.Policy != "cluster" || c.Requirement != "no failed artifact (default policy)" || len(c.Found) != 1 || c.Found[0].Signer != "CN=untrusted,O=rogue" || !strings.Contains(c.Found[0].Reason, "untrusted signer") {
		t.Fatalf("cluster's explanation %+v", c)
	}
	if team.Policy != "team-a" || team.Scope != "team" || team.Requirement != spdxType {
		t.Fatalf("team's explanation %+v", team)
	}
}
