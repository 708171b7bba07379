package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidateManifests(t *testing.T) {
	code, out, stderr := vouchRun(t, "config", "validate", "../../examples/kubernetes/cluster.yaml")
	if code != 0 || !strings.Contains(out, "ClusterVouchConfig vouch: valid (2 verifiers, 1 trust stores, 2 policy scopes)") {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	dir := t.TempDir()
	both := filepath.Join(dir, "both.yaml")
	cluster, _ := os.ReadFile("../../examples/kubernetes/cluster.yaml")
	tenant, _ := os.ReadFile("../../examples/kubernetes/tenant.yaml")
	writeTestFile(t, both, string(cluster)+"---\n"+string(tenant))
	code, out, stderr = vouchRun(t, "config", "validate", both)
	if code != 0 || !strings.Contains(out, "VouchConfig team-a/team-a: valid") || !strings.Contains(out, "ClusterVouchConfig vouch: valid") {
		t.Fatalf("two documents: exit %d: %s%s", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeTestFile(t, bad, strings.Replace(string(tenant), "spec:\n", "spec:\n  registries: {plainHTTP: true}\n", 1))
	code, _, stderr = vouchRun(t, "config", "validate", bad)
	if code != 1 || !strings.Contains(stderr, "spec.registries: unknown field") {
		t.Fatalf("a tenant with registries: exit %d: %s", code, stderr)
	}
	file := filepath.Join(dir, "file.yaml")
	writeTestFile(t, file, strings.Replace(string(cluster), "refs:\n        - {kind: ConfigMap, name: example-ca, key: ca.crt}", "files: [ca.pem]", 1))
	code, _, stderr = vouchRun(t, "config", "validate", file)
	if code != 1 || !strings.Contains(stderr, "spec.trustStores[0].files[0]: files cannot be read from a custom resource") {
		t.Fatalf("a file in a resource: exit %d: %s", code, stderr)
	}
}

func TestConfigConvert(t *testing.T) {
	dir := t.TempDir()
	cert, err := os.ReadFile("../../examples/config/certs/example-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("../../verifier/cosign/testdata/cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "ca.pem"), string(cert))
	writeTestFile(t, filepath.Join(dir, "cosign.pub"), string(key))
	writeTestFile(t, filepath.Join(dir, "root.json"), "{}")
	cfg := filepath.Join(dir, "vouch.yaml")
	writeTestFile(t, cfg, `version: v1
limits: {maxNodes: 500}
trustStores:
  - name: ca:example
    files: [ca.pem]
verifiers:
  - name: cosign
    type: cosign
    cosign:
      keys: {files: [cosign.pub]}
      ignoreTlogUnsafe: true
  - name: sbom
    type: sbom
    sbom: {deniedLicenses: [AGPL-3.0-only]}
`)
	code, manifest, stderr := vouchRun(t, "config", "convert", cfg)
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"kind: ClusterVouchConfig", "name: default", "maxNodes: 500", "BEGIN CERTIFICATE", "BEGIN PUBLIC KEY", "deniedLicenses:"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the manifest has no %q:\n%s", want, manifest)
		}
	}
	if strings.Contains(manifest, "files:") || stderr != "" {
		t.Errorf("files left in the manifest, or commands printed:\n%s\n%s", manifest, stderr)
	}
	cr := filepath.Join(dir, "cluster.yaml")
	writeTestFile(t, cr, manifest)
	if code, out, stderr := vouchRun(t, "config", "validate", cr); code != 0 {
		t.Fatalf("validate the manifest: exit %d: %s%s", code, out, stderr)
	}
	// And back: a config file with the material inline.
	code, back, stderr := vouchRun(t, "config", "convert", cr)
	if code != 0 || !strings.HasPrefix(back, "version: v1\n") || !strings.Contains(back, "BEGIN PUBLIC KEY") {
		t.Fatalf("convert back: exit %d: %s%s", code, back, stderr)
	}
	backFile := filepath.Join(dir, "back.yaml")
	writeTestFile(t, backFile, back)
	if code, out, stderr := vouchRun(t, "config", "validate", backFile); code != 0 || !strings.Contains(out, "valid (2 verifiers, 1 trust stores, 0 policy scopes)") {
		t.Fatalf("validate the converted file: exit %d: %s%s", code, out, stderr)
	}

	// Files that are not PEM become references, with the commands that
	// make them; such a resource cannot go back to a file.
	writeTestFile(t, cfg, `version: v1
registries: {dockerConfig: docker.json}
verifiers:
  - name: cosign
    type: cosign
    cosign:
      trustedRoot: root.json
      identities: [{issuer: https://accounts.example.com, subject: ci@example.com}]
`)
	code, manifest, stderr = vouchRun(t, "config", "convert", "--namespace", "supply", cfg)
	if code != 0 || !strings.Contains(manifest, "trustedRootRef:") || !strings.Contains(manifest, "dockerConfigRef:") ||
		!strings.Contains(stderr, "kubectl create configmap vouch-trust --namespace supply --from-file=root.json=") ||
		!strings.Contains(stderr, "kubectl create secret generic vouch-registry --namespace supply --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson=docker.json") {
		t.Fatalf("convert with references: exit %d:\n%s\n%s", code, manifest, stderr)
	}
	writeTestFile(t, cr, manifest)
	code, _, stderr = vouchRun(t, "config", "convert", cr)
	if code != 1 || !strings.Contains(stderr, "spec.verifiers[0].cosign.trustedRootRef: configMap vouch-trust key root.json (write it to a file and name the file in spec.verifiers[0].cosign.trustedRoot)") ||
		!strings.Contains(stderr, "spec.registries.dockerConfigRef") {
		t.Fatalf("convert back with references: exit %d: %s", code, stderr)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
