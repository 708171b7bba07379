package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestNotationAndCosign: a subject signed with both notation (notation-go)
// and cosign (the real cosign 2.6.5 CLI, legacy .sig layout) is allowed
// under a policy that requires both (two requirements) or either (anyOf),
// and a subject signed only by cosign passes "either" and fails "both".
// The quick flags --notation-cert and --cosign-key compose the same way.
func TestNotationAndCosign(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "HOME=" + dir, "COSIGN_EXPERIMENTAL=0"}
			cosignRun := func(args ...string) {
				t.Helper()
				cmd := append([]string{}, args...)
				out, err := testbed.RunErr(env, testbed.Bin(t, "cosign"), cmd...)
				if err != nil {
					t.Fatalf("cosign %v: %v\n%s", args, err, out)
				}
			}
			keyPrefix := filepath.Join(dir, "cosign")
			cosignRun("generate-key-pair", "--output-key-prefix", keyPrefix)

			signer := testbed.NewNotationSigner(t)
			p := testbed.NewPusher(t, reg.Host, "both/app")
			both := p.Image("both", "both")
			signer.Sign(p, both)
			cosignOnly := p.Image("cosign-only", "cosign-only")
			for _, d := range []string{both.Digest.String(), cosignOnly.Digest.String()} {
				cosignRun("sign", "--key", keyPrefix+".key", "--tlog-upload=false", "--allow-http-registry", fmt.Sprintf("%s/both/app@%s", reg.Host, d))
			}

			policyFile := func(name, require string) string {
				path := filepath.Join(dir, name+".yaml")
				body := fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
trustStores: [{name: "ca:test", files: [%q]}]
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: tp.json}}
  - {name: cosign, type: cosign, cosign: {keys: {files: [%q]}, ignoreTlogUnsafe: true}}
policy:
  scopes:
    - name: all
      repositories: ["*"]
      require:
%s`, signer.CAFile, keyPrefix+".pub", require)
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			if err := os.WriteFile(filepath.Join(dir, "tp.json"), []byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			all := policyFile("all", `        - artifactType: application/vnd.cncf.notary.signature
        - artifactType: application/vnd.dev.cosign.artifact.sig.v1+json
`)
			either := policyFile("either", `        - anyOf:
            - artifactType: application/vnd.cncf.notary.signature
            - artifactType: application/vnd.dev.cosign.artifact.sig.v1+json
`)
			tests := []struct {
				config, tag string
				want        int
			}{
				{all, "both", exitAllowed},
				{either, "both", exitAllowed},
				{all, "cosign-only", exitDenied},
				{either, "cosign-only", exitAllowed},
			}
			for _, tt := range tests {
				code, out, stderr := vouchRun(t, "verify", "--config", tt.config, reg.Host+"/both/app:"+tt.tag)
				if code != tt.want {
					t.Fatalf("%s %s: exit %d, want %d\n%s%s", filepath.Base(tt.config), tt.tag, code, tt.want, out, stderr)
				}
			}

			// Quick flags, no config: both verifiers configured, the default
			// policy wants one verified referrer and no failure.
			code, out, stderr := vouchRun(t, "verify", "--plain-http", "--notation-cert", signer.CAFile, "--cosign-key", keyPrefix+".pub", reg.Host+"/both/app:both")
			if code != exitAllowed {
				t.Fatalf("quick flags: exit %d\n%s%s", code, out, stderr)
			}
			code, out, _ = vouchRun(t, "verify", "--plain-http", "--cosign-key", keyPrefix+".pub", reg.Host+"/both/app:cosign-only")
			if code != exitAllowed {
				t.Fatalf("--cosign-key on a cosign-signed image: exit %d\n%s", code, out)
			}
		})
	}
}

// TestCosign3Provenance: `vouch verify --config` with a policy that
// requires a signature and an SLSA provenance, written as a user would in
// the config file (kind and predicateType), against what the real cosign
// v3 CLI pushes by default (Sigstore bundles as referrers), mixed with a
// cosign v2 signature in the tag layout, on both registry kinds.
func TestCosign3Provenance(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "HOME=" + dir}
			run := func(bin string, args ...string) {
				t.Helper()
				if out, err := testbed.RunErr(env, testbed.Bin(t, bin), args...); err != nil {
					t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
				}
			}
			key, other := filepath.Join(dir, "cosign"), filepath.Join(dir, "other")
			run("cosign3", "generate-key-pair", "--output-key-prefix", key)
			run("cosign3", "generate-key-pair", "--output-key-prefix", other)
			prov := filepath.Join(dir, "provenance.json")
			if err := os.WriteFile(prov, []byte(`{"buildDefinition":{"buildType":"https://builder.test/type"},"runDetails":{"builder":{"id":"https://builder.test/v1"}}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			offline := []string{"--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry"}
			p := testbed.NewPusher(t, reg.Host, "cosign3/app")
			ref := func(tag string) string {
				return fmt.Sprintf("%s/cosign3/app@%s", reg.Host, p.Image(tag, tag).Digest)
			}
			sign3 := func(k, r string) { run("cosign3", append([]string{"sign", "--key", k + ".key", r}, offline...)...) }
			attest3 := func(k, r string) {
				run("cosign3", append([]string{"attest", "--key", k + ".key", "--type", "slsaprovenance1", "--predicate", prov, r}, offline...)...)
			}
			good, signedOnly, untrusted, mixed := ref("good"), ref("signed-only"), ref("untrusted"), ref("mixed")
			sign3(key, good)
			attest3(key, good)
			sign3(key, signedOnly)
			sign3(key, untrusted)
			attest3(other, untrusted)
			run("cosign", "sign", "--key", key+".key", "--tlog-upload=false", "--allow-http-registry", mixed)
			attest3(key, mixed)

			config := filepath.Join(dir, "vouch.yaml")
			if err := os.WriteFile(config, []byte(fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
verifiers:
  - name: cosign
    type: cosign
    cosign:
      keys: {files: [%q]}
      ignoreTlogUnsafe: true
      attestations:
        predicates:
          - type: slsaprovenance1
            fields: {runDetails.builder.id: https://builder.test/v1}
policy:
  scopes:
    - name: release
      repositories: ["*"]
      require:
        - kind: signature
        - predicateType: https://slsa.dev/provenance/v1
`, key+".pub")), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				ref    string
				want   int
				reason string
			}{
				{good, exitAllowed, "signature verified, attestation of predicate type https://slsa.dev/provenance/v1 verified"},
				{signedOnly, exitDenied, "no attestation of predicate type https://slsa.dev/provenance/v1 found"},
				{untrusted, exitDenied, "no matching key"},
				{mixed, exitAllowed, "signature verified"},
			} {
				code, out, stderr := vouchRun(t, "verify", "--config", config, "-o", "json", tt.ref)
				if code != tt.want || !strings.Contains(out, tt.reason) {
					t.Errorf("%s: exit %d, want %d with %q\n%s%s", tt.ref, code, tt.want, tt.reason, out, stderr)
				}
			}
		})
	}
}
