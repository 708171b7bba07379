package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
)

func TestExampleConfigsLoadAndBuild(t *testing.T) {
	paths, _ := filepath.Glob("../examples/config/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no example configs")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cfg, err := config.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			verifiers, pol, err := cfg.Build()
			if err != nil {
				t.Fatal(err)
			}
			if len(verifiers) == 0 || pol == nil {
				t.Fatalf("built %d verifiers, policy %v", len(verifiers), pol)
			}
		})
	}
}

func TestYAMLAndJSONAgree(t *testing.T) {
	y := "version: v1\nlimits: {maxDepth: 3}\nregistries: {insecure: [\"h:1\"]}\n"
	j := `{"version":"v1","limits":{"maxDepth":3},"registries":{"insecure":["h:1"]}}`
	a, err := config.Parse([]byte(y), ".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse([]byte(j), ".")
	if err != nil {
		t.Fatal(err)
	}
	if a.Limits != b.Limits || a.Limits.MaxDepth != 3 || b.Registries.Insecure[0] != "h:1" {
		t.Fatalf("yaml %+v, json %+v", a, b)
	}
}

func TestStrictErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"", "empty"},
		{"limits: {}", "version: required"},
		{"version: v2", `"v2" is not supported`},
		{"version: v1\nlimitz: {}", "limitz: unknown field (known fields: limits, policy, registries, trustStores, verifiers, version)"},
		{"version: v1\nregistries: {plainHttp: true}", "registries.plainHttp: unknown field"},
		{"version: v1\nlimits: {maxDepth: deep}", "limits.maxDepth: expected an integer"},
		{"version: v1\nlimits: [1]", "limits: expected an object, got a list"},
		{"version: v1\nlimits: {maxNodes: -1}", "cannot be negative"},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: p, revocation: {timout: 1s}}}]", "verifiers[0].notation.revocation.timout: unknown field"},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: p, revocation: {timeout: soon}}}]", "invalid duration"},
		{"version: v1\nverifiers: [{name: n, type: cosine}]", `verifiers[0].type: "cosine" is not a verifier type`},
		{"version: v1\nverifiers: [{name: n, type: notation}]", "verifiers[0].notation.trustPolicy: required"},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: tp.json, plugins: {dir: p, timeout: -1s}}}]", `duration "-1s" is negative`},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: tp.json, plugins: {config: {mode: x}}}}]", "verifiers[0].notation.plugins.dir: required when other plugins fields are set"},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: tp.json, plugins: {dir: p, env: [A=B]}}}]", `verifiers[0].notation.plugins.env[0]: "A=B" is not a variable name`},
		{"version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: p}}, {name: n, type: notation, notation: {trustPolicy: p}}]", `verifiers[1].name: "n" is used twice`},
		{"version: v1\nverifiers: [{name: v, type: vulnreport, vulnreport: {vex: {trustedBy: [notary]}}}]", `verifiers[0].vulnreport.vex.trustedBy[0]: no verifier is named "notary"`},
		{"version: v1\nverifiers: [{name: v, type: vulnreport, vulnreport: {vex: {trustedBy: [v]}}}]", `verifiers[0].vulnreport.vex.trustedBy[0]: "v" is this verifier`},
		{"version: v1\nverifiers: [{name: s, type: sbom, sbom: {}}, {name: v, type: vulnreport, vulnreport: {vex: {trustedBy: [s]}}}]", `verifiers[1].vulnreport.vex.trustedBy[0]: "s" is a sbom verifier, which checks no signatures`},
		{"version: v1\nverifiers: [{name: v, type: vulnreport, vulnreport: {vex: {}}}]", "verifiers[0].vulnreport.vex.trustedBy: name at least one signature verifier"},
		{"version: v1\ntrustStores: [{name: acme, pem: x}]", `trustStores[0].name: "acme" is not TYPE:NAME`},
		{"version: v1\ntrustStores: [{name: 'ca:acme'}]", "trustStores[0]: needs files, pem or azureKeyVault"},
		{"version: v1\ntrustStores: [{name: 'ca:acme', azureKeyVault: {vaultURI: 'http://v.vault.azure.net/', certificates: [{name: c}]}}]", `trustStores[0].azureKeyVault.vaultURI: "http://v.vault.azure.net/" is not a vault URI`},
		{"version: v1\ntrustStores: [{name: 'ca:acme', azureKeyVault: {vaultURI: 'https://v.vault.azure.net/'}}]", "trustStores[0].azureKeyVault.certificates: name at least one certificate"},
		{"version: v1\ntrustStores: [{name: 'ca:acme', azureKeyVault: {vaultURI: 'https://v.vault.azure.net/', certificates: [{name: 'a/b'}]}}]", `trustStores[0].azureKeyVault.certificates[0]: a name or version has no "/"`},
		{"version: v1\nverifiers: [{name: c, type: cosign, cosign: {keys: {kms: ['k8s://ns/key']}, ignoreTlogUnsafe: true}}]", `verifiers[0].cosign.keys.kms[0]: "k8s://ns/key" is not a KMS key URI`},
		{"version: v1\nverifiers: [{name: c, type: cosign, cosign: {keys: {files: ['awskms:///alias/x']}, ignoreTlogUnsafe: true}}]", "verifiers[0].cosign.keys.files[0]: \"awskms:///alias/x\" is a KMS key URI; name it in verifiers[0].cosign.keys.kms"},
		{"version: v1\nverifiers: [{name: c, type: cosign, cosign: {keys: {pem: x}, certificateRoots: {kms: ['awskms:///alias/x']}, ignoreTlogUnsafe: true}}]", "verifiers[0].cosign.certificateRoots.kms: KMS URIs name keys"},
		{"version: v1\npolicy: {scopes: [{name: a, repositories: ['*'], require: [{artifactType: x, mach: all}]}]}", "policy.scopes[0].require[0].mach: unknown field"},
		{"version: v1\npolicy: {scopes: [{name: a, repositories: ['*'], require: []}]}", "policy.scopes[0].require: at least one"},
		{"version: v1\n---\nversion: v1", "more than one YAML document"},
		{"version: [v1", "parse:"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), ".")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBuildErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tp.json", `{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:missing"],"trustedIdentities":["*"]}]}`)
	cfg := write("vouch.yaml", "version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: tp.json}}]\n")
	f, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Build(); err == nil || !strings.Contains(err.Error(), "ca:missing") {
		t.Fatalf("err = %v, want it to name the missing store", err)
	}

	cfg = write("bad.yaml", "version: v1\nverifiers: [{name: n, type: notation, notation: {trustPolicy: nope.json}}]\n")
	f, err = config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Build(); err == nil || !strings.Contains(err.Error(), "verifiers[0].notation.trustPolicy") || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("err = %v", err)
	}

	big := write("big.yaml", "version: v1\n#"+strings.Repeat("x", config.MaxFileBytes))
	if _, err := config.Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized config: %v", err)
	}
}

// Relative paths in every verifier section resolve against the config
// file's folder, whatever the working directory; reports keep the names the
// file writes.
func TestRelativePathsResolveAgainstTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile("../examples/config/certs/example-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	write("certs/ca.pem", string(ca), 0o600)
	write("tp.json", `{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`, 0o600)
	key, err := os.ReadFile("../verifier/cosign/testdata/cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	write("keys/cosign.pub", string(key), 0o600)
	write("schemas/doc.json", `{"type":"object"}`, 0o600)
	write("bin/plugin", "#!/bin/sh\nexit 0\n", 0o755)
	write("vouch.yaml", `version: v1
trustStores: [{name: "ca:acme", files: [certs/ca.pem]}]
verifiers:
  - {name: n, type: notation, notation: {trustPolicy: tp.json}}
  - {name: c, type: cosign, cosign: {keys: {files: [keys/cosign.pub]}, ignoreTlogUnsafe: true}}
  - {name: s, type: schema, schema: {artifactTypes: [application/json], schema: schemas/doc.json}}
  - {name: p, type: plugin, plugin: {path: bin/plugin, artifactTypes: ["*"]}}
`, 0o600)
	t.Chdir(t.TempDir())
	f, err := config.Load(filepath.Join(dir, "vouch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Verifiers[1].Cosign.Keys; got.Files[0] != filepath.Join(dir, "keys/cosign.pub") || got.Names[0] != "keys/cosign.pub" {
		t.Errorf("cosign keys %+v, want the file resolved and its written name kept", got)
	}
	if got := f.Verifiers[2].Schema; got.Schema != filepath.Join(dir, "schemas/doc.json") || got.SchemaName != "schemas/doc.json" {
		t.Errorf("schema %+v, want the file resolved and its written name kept", got)
	}
	verifiers, _, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(verifiers) != 4 {
		t.Fatalf("built %d verifiers, want 4", len(verifiers))
	}
}
