//go:build policycode

package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/duration"
	"github.com/vouch-project/vouch/policy"
)

// A signature that verified, as Rego and as CEL.
const (
	regoSigned = `package vouch

deny contains "no verified signature" if {
	not signed
}

signed if {
	some r in input.referrers
	r.artifactType == "application/vnd.cncf.notary.signature"
	r.verified
}

warn contains "no SBOM" if {
	not "application/spdx+json" in {r.artifactType | some r in input.referrers}
}
`
	celSigned = `input.referrers.exists(r, r.artifactType == "application/vnd.cncf.notary.signature" && r.verified)`
	celSBOM   = `input.referrers.exists(r, r.artifactType == "application/spdx+json")`
)

func codeScope(s policy.Scope) policy.Config {
	s.Name, s.Repositories = "code", []string{"*"}
	return policy.Config{Scopes: []policy.Scope{s}}
}

func TestCodePolicies(t *testing.T) {
	sig := func(seed string, o vouch.Outcome) *vouch.Node {
		return referrer(seed, notationType, o, "notation: "+string(o))
	}
	sbom := referrer("sbom", spdxType, vouch.Passed, "sbom: passed")
	rego := policy.Scope{Rego: &policy.Rego{Inline: regoSigned}}
	cel := policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{
		{Expression: celSigned, Message: "no verified signature"},
		{Expression: celSBOM, Message: "no SBOM", Action: "warn"},
	}}}
	withRequire := func(s policy.Scope) policy.Scope {
		s.Require = []policy.Requirement{{ArtifactType: spdxType}}
		return s
	}
	trees := []struct {
		name   string
		root   *vouch.Node
		want   vouch.Verdict
		waived bool
		reason string
	}{
		{"signed with SBOM", subject("a", sig("s1", vouch.Passed), sbom), vouch.Allowed, false, "the Rego policy allows"},
		{"signed, no SBOM: warning", subject("a", sig("s1", vouch.Passed)), vouch.Allowed, true, "allowed with warnings: no SBOM"},
		{"untrusted signature", subject("a", sig("s1", vouch.Failed), sbom), vouch.Denied, false, "no verified signature"},
		{"nothing", subject("a"), vouch.Denied, false, "no verified signature"},
	}
	for _, lang := range []struct {
		name  string
		scope policy.Scope
	}{{"Rego", rego}, {"CEL", cel}} {
		for _, tt := range trees {
			t.Run(lang.name+"/"+tt.name, func(t *testing.T) {
				p, err := policy.New(codeScope(lang.scope), nil)
				if err != nil {
					t.Fatal(err)
				}
				d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, tt.root)
				if err != nil {
					t.Fatal(err)
				}
				reason := strings.ReplaceAll(tt.reason, "Rego", lang.name)
				if d.Verdict != tt.want || d.Waived != tt.waived || !strings.Contains(d.Reason, reason) {
					t.Fatalf("got %s (waived %v) %q, want %s (waived %v) containing %q", d.Verdict, d.Waived, d.Reason, tt.want, tt.waived, reason)
				}
			})
		}
		t.Run(lang.name+"/after require", func(t *testing.T) {
			p, err := policy.New(codeScope(withRequire(lang.scope)), nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app"}, subject("a", sig("s1", vouch.Passed)))
			if err != nil || d.Verdict != vouch.Denied || !strings.Contains(d.Reason, "no "+spdxType+" found") {
				t.Fatalf("got %+v, %v; want the require list's denial", d, err)
			}
		})
	}
}

// A policy that runs past its time, or fails at run time, could not
// decide: Decide returns an error, which the Executor turns into undecided.
func TestCodePolicyCannotDecide(t *testing.T) {
	ms := &duration.Duration{Duration: 50 * time.Millisecond}
	tests := []struct {
		name  string
		scope policy.Scope
		want  string
	}{
		{"Rego loops", policy.Scope{Rego: &policy.Rego{Timeout: ms, Inline: `package vouch
deny contains "x" if {
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j == -1
}`}}, "evaluation stopped after 50ms"},
		{"Rego run-time error", policy.Scope{Rego: &policy.Rego{Inline: `package vouch
deny contains msg if { msg := sprintf("%d", [to_number(input.subject)]) }`}}, "could not decide"},
		{"Rego answers a number", policy.Scope{Rego: &policy.Rego{Inline: `package vouch
deny contains 42 if { true }`}}, "neither a string nor an object"},
		{"CEL cost limit", policy.Scope{CEL: &policy.CEL{CostLimit: 100, Validations: []policy.CELValidation{{Expression: `[1,2,3,4,5,6,7,8,9,10].all(i, [1,2,3,4,5,6,7,8,9,10].all(j, [1,2,3,4,5,6,7,8,9,10].all(k, i+j+k > 0)))`}}}}, "cost limit"},
		{"CEL loops past its time", policy.Scope{CEL: &policy.CEL{Timeout: ms, CostLimit: 1 << 62, Validations: []policy.CELValidation{{Expression: `[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, [0,1,2,3,4,5,6,7,8,9].all(e, [0,1,2,3,4,5,6,7,8,9].all(f, [0,1,2,3,4,5,6,7,8,9].all(g, [0,1,2,3,4,5,6,7,8,9].all(h, a+b+c+d+e+f+g+h >= 0))))))))`}}}}, "evaluation stopped after 50ms"},
		{"CEL missing field", policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: `input.nosuchfield == "x"`}}}}, "no such key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(codeScope(tt.scope), nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app"}, subject("a"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, %v; want an error containing %q", d, err, tt.want)
			}
		})
	}
}

// Malformed Rego and CEL are errors when the configuration loads, naming
// the file (or field) and the line.
func TestCodePolicyCompileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.rego")
	if err := os.WriteFile(bad, []byte("package vouch\n\ndeny contains msg if {\n\tmsg := \n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.rego"), []byte("package vouch\ndeny contains \"x\" if { input.subject == \"y\" }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		scope policy.Scope
		want  []string
	}{
		{"Rego syntax in a file", policy.Scope{Rego: &policy.Rego{Files: []string{bad}}}, []string{"policy.scopes[0].rego", bad + ":5"}},
		{"Rego syntax in a folder", policy.Scope{Rego: &policy.Rego{Files: []string{dir}}}, []string{bad + ":5"}},
		{"Rego unknown function", policy.Scope{Rego: &policy.Rego{Inline: "package vouch\n\ndeny contains x if { x := nosuch(1) }"}}, []string{"policy.scopes[0].rego.inline:3", "nosuch"}},
		{"Rego network refused", policy.Scope{Rego: &policy.Rego{Inline: "package vouch\n\ndeny contains x if { x := http.send({}) }"}}, []string{"policy.scopes[0].rego.inline:3", "http.send"}},
		{"Rego without deny", policy.Scope{Rego: &policy.Rego{Inline: "package vouch\n\nallow := true"}}, []string{"no rule deny in package vouch"}},
		{"Rego in another package", policy.Scope{Rego: &policy.Rego{Package: "acme.images", Inline: "package vouch\n\ndeny contains 1 if false"}}, []string{"no rule deny in package acme.images"}},
		{"CEL syntax", policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: "true"}, {Expression: "input.referrers.exists(r,\n r.verified &&)"}}}}, []string{"policy.scopes[0].cel.validations[1].expression:2:"}},
		{"CEL not a bool", policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: "size(input.referrers)"}}}}, []string{"policy.scopes[0].cel.validations[0].expression: yields int, not bool"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.New(codeScope(tt.scope), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A Rego or CEL policy need not be monotone, so the Executor may not stop
// early on it: Settled is false even when the policy allows.
func TestCodePolicyNeverSettles(t *testing.T) {
	root := subject("a", referrer("s1", notationType, vouch.Passed, "notation: passed"))
	ref := vouch.Reference{Registry: "r.io", Repository: "app"}
	for _, s := range []policy.Scope{
		{Rego: &policy.Rego{Inline: regoSigned}},
		{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: celSigned}}}},
	} {
		p, err := policy.New(codeScope(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := p.Decide(context.Background(), ref, root); err != nil || d.Verdict != vouch.Allowed {
			t.Fatalf("%+v, %v", d, err)
		}
		if p.(vouch.Settler).Settled(context.Background(), ref, root, func(*vouch.Node) bool { return false }) {
			t.Fatal("a code policy settled")
		}
	}
}

// A cosign v3 bundle is a signature or an attestation under one artifact
// type: policies as code tell them apart by the results' claims.
func TestCodePoliciesReadClaims(t *testing.T) {
	const slsa = "https://slsa.dev/provenance/v1"
	regoProvenance := `package vouch

deny contains "no verified SLSA provenance" if {
	not provenance
}

provenance if {
	some n in input.nodes
	some r in n.results
	some c in r.claims
	c.kind == "attestation"
	c.predicateType == "` + slsa + `"
	c.outcome == "passed"
}
`
	celProvenance := `input.nodes.exists(n, n.results.exists(r, r.claims.exists(c, c.kind == "attestation" && c.predicateType == "` + slsa + `" && c.outcome == "passed")))`
	sigBundle := claimed("sig", vouch.Passed, vouch.Claim{Kind: vouch.ClaimSignature, Outcome: vouch.Passed})
	provenance := claimed("prov", vouch.Passed, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: slsa, Outcome: vouch.Passed})
	untrusted := claimed("prov-untrusted", vouch.Failed, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: slsa, Outcome: vouch.Failed, Reason: "untrusted key"})
	for _, lang := range []struct {
		name  string
		scope policy.Scope
	}{
		{"Rego", policy.Scope{Rego: &policy.Rego{Inline: regoProvenance}}},
		{"CEL", policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: celProvenance, Message: "no verified SLSA provenance"}}}}},
	} {
		p, err := policy.New(codeScope(lang.scope), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			root *vouch.Node
			want vouch.Verdict
		}{
			{"signature bundle only", subject("a", sigBundle), vouch.Denied},
			{"provenance signed by an untrusted key", subject("a", sigBundle, untrusted), vouch.Denied},
			{"verified provenance", subject("a", sigBundle, provenance), vouch.Allowed},
		} {
			d, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, tt.root)
			if err != nil || d.Verdict != tt.want {
				t.Errorf("%s/%s: got %+v, %v; want %s", lang.name, tt.name, d, err, tt.want)
			}
		}
	}
}
