package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vouch verify --namespace applies the scopes of that namespace, as vouch
// serve does for an admission request in it.
func TestVerifyNamespace(t *testing.T) {
	dir := t.TempDir()
	examples, err := filepath.Abs("../../examples/config")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(cfg, []byte(`version: v1
trustStores:
  - {name: "ca:example", files: [`+examples+`/certs/example-ca.pem]}
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: `+examples+`/trustpolicy.json}}
policy:
  scopes:
    - name: everywhere
      repositories: ["oci-layout:*"]
      require: [{artifactType: application/vnd.cncf.notary.signature}]
    - name: prod
      repositories: ["oci-layout:*"]
      namespaces: [prod]
      require: [{artifactType: application/vnd.example.release-approval}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const subject = "oci-layout:../../examples/layout:demo"
	for _, tt := range []struct {
		args   []string
		code   int
		reason string
	}{
		{nil, exitAllowed, `scope "everywhere"`},
		{[]string{"--namespace", "dev"}, exitAllowed, `scope "everywhere"`},
		{[]string{"--namespace", "prod"}, exitDenied, `scope "prod": no application/vnd.example.release-approval found`},
	} {
		code, out, stderr := vouchRun(t, append(append([]string{"verify", "--config", cfg}, tt.args...), subject)...)
		if code != tt.code || !strings.Contains(out, tt.reason) {
			t.Fatalf("%v: exit %d, want %d with %q\n%s%s", tt.args, code, tt.code, tt.reason, out, stderr)
		}
	}
	// Without a config policy there is no namespaced scope to pick.
	code, _, stderr := vouchRun(t, "verify", "--notation-cert", examples+"/certs/example-ca.pem", "--namespace", "prod", subject)
	if code != exitUndecided || !strings.Contains(stderr, "--namespace prod") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
