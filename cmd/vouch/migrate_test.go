package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
)

// TestMigrateRatify runs `vouch migrate ratify` on fixtures written from
// Ratify's sample resources (migrate/ratify/testdata; each names the
// samples of github.com/ratify-project/ratify it comes from), and checks
// that `vouch config validate` accepts what it writes.
func TestMigrateRatify(t *testing.T) {
	const testdata = "../../migrate/ratify/testdata/"
	dir := t.TempDir()
	maps := filepath.Join(dir, "configmaps.yaml")

	code, out, stderr := vouchRun(t, "migrate", "ratify", testdata+"notation.yaml", testdata+"cosign.yaml", "--configmaps", maps, "--name", "migrated", "--namespace", "vouch-system")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, stderr)
	}
	for _, want := range []string{
		"notation.yaml: document 2: Verifier verifier-notation: converted (ClusterVouchConfig migrated: verifier verifier-notation, trust store ca:ca-certs)",
		"cosign.yaml: document 2: Verifier verifier-cosign: converted",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the report lacks %q:\n%s", want, stderr)
		}
	}
	rs, err := config.ParseResources([]byte(out))
	if err != nil || len(rs) != 1 || rs[0].Name != "migrated" || len(rs[0].Spec.Verifiers) != 2 {
		t.Fatalf("the output: %v\n%s", err, out)
	}
	cm, err := os.ReadFile(maps)
	if err != nil || !bytes.Contains(cm, []byte("namespace: vouch-system")) || !bytes.Contains(cm, []byte("verifier-notation.trustpolicy.json: |")) {
		t.Fatalf("the ConfigMaps: %v\n%s", err, cm)
	}
	manifest := filepath.Join(dir, "vouch.yaml")
	writeTestFile(t, manifest, out)
	if code, vout, verr := vouchRun(t, "config", "validate", manifest); code != 0 {
		t.Fatalf("config validate: exit %d: %s%s", code, vout, verr)
	}

	// Some resources cannot be converted: exit 1, the rest written, each
	// resource listed.
	code, out, stderr = vouchRun(t, "migrate", "ratify", testdata+"namespaced.yaml", testdata+"unconvertible.yaml")
	if code != exitDenied || !strings.Contains(stderr, "unconvertible.yaml: document 3: Policy ratify-policy: not converted: rego-policy") ||
		!strings.Contains(stderr, "# The resources refer to these ConfigMaps") || !strings.Contains(out, "kind: VouchConfig") {
		t.Fatalf("exit %d, want %d:\n%s%s", code, exitDenied, out, stderr)
	}
	if n := strings.Count(stderr, "testdata/namespaced.yaml: document ") + strings.Count(stderr, "testdata/unconvertible.yaml: document "); n != 4+8 {
		t.Errorf("%d report lines, want 12:\n%s", n, stderr)
	}

	// Standard input.
	in, _ := os.ReadFile(testdata + "keyless.yaml")
	var sout, serr bytes.Buffer
	code = run(context.Background(), []string{"migrate", "ratify", "-"}, bytes.NewReader(in), &sout, &serr)
	if code != 0 || !strings.Contains(serr.String(), "(stdin): document 1: Verifier verifier-cosign: converted with changes") || !strings.Contains(sout.String(), "issuer: https://github.com/login/oauth") {
		t.Fatalf("stdin: exit %d:\n%s%s", code, sout.String(), serr.String())
	}

	// Usage and input errors.
	if code, _, stderr := vouchRun(t, "migrate", "ratify"); code != exitUsage || !strings.Contains(stderr, "at least one FILE") {
		t.Errorf("no FILE: exit %d: %s", code, stderr)
	}
	if code, _, stderr := vouchRun(t, "migrate", "ratify", filepath.Join(dir, "missing.yaml")); code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("a missing file: exit %d: %s", code, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeTestFile(t, bad, "apiVersion: config.ratify.deislabs.io/v1beta1\nkind: Verifier\nmetadata: {name: v}\n---\nkind: [\n")
	if code, out, stderr := vouchRun(t, "migrate", "ratify", bad); code != 2 || out != "" || !strings.Contains(stderr, "bad.yaml: document 2: not YAML") {
		t.Errorf("malformed YAML: exit %d: %s%s", code, out, stderr)
	}
}
