//go:build !policycode

package policy_test

import (
	"strings"
	"testing"

	"github.com/vouch-project/vouch/policy"
)

// A vouch built without the engines refuses a Rego or CEL scope when the
// configuration loads, and says how to build one that has them.
func TestCodePolicyWithoutEngines(t *testing.T) {
	for _, s := range []policy.Scope{
		{Name: "r", Repositories: []string{"*"}, Rego: &policy.Rego{Inline: "package vouch\ndeny contains 1 if false"}},
		{Name: "c", Repositories: []string{"*"}, CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: "true"}}}},
	} {
		_, err := policy.New(policy.Config{Scopes: []policy.Scope{s}}, nil)
		if err == nil || !strings.Contains(err.Error(), "-tags policycode") {
			t.Fatalf("scope %s: got %v, want the build-tag error", s.Name, err)
		}
	}
}
