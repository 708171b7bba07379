package config_test

import (
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
)

// In a custom resource a Rego policy is written inline: its files would be
// vouch's container's, not the cluster admin's. The CRDs' schema carries
// the rego and cel fields.
func TestCodePolicyInResources(t *testing.T) {
	const head = `apiVersion: config.vouch.dev/v1alpha1
kind: ClusterVouchConfig
metadata: {name: vouch}
spec:
  policy:
    scopes:
      - name: all
        repositories: ["*"]
`
	for _, tt := range []struct {
		name, scope, err string
	}{
		{"inline Rego", "        rego: {inline: \"package vouch\\ndeny contains 1 if false\"}\n", ""},
		{"CEL", "        cel: {validations: [{expression: \"true\"}]}\n", ""},
		{"Rego files", "        rego: {files: [p.rego]}\n", "spec.policy.scopes[0].rego.files: a ClusterVouchConfig names no files"},
		{"both", "        rego: {inline: x}\n        cel: {validations: [{expression: \"true\"}]}\n", "set rego or cel, not both"},
		{"CEL without validations", "        cel: {}\n", "cel.validations: at least one validation is required"},
	} {
		_, err := config.ParseResources([]byte(head + tt.scope))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
}
