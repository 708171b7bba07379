//go:build policycode

package config_test

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
)

// A CEL (or Rego) policy reads the namespace of the request, so a config
// with one gives each namespace its own policy, as vouch serve asks for
// it (NamespacePolicies), with the namespace in the input document.
func TestNamespacePoliciesForCode(t *testing.T) {
	f, err := config.Parse([]byte(`version: v1
policy:
  scopes:
    - name: all
      repositories: ["*"]
      cel:
        validations:
          - expression: input.namespace != "prod" || input.tag != "latest"
            message: latest is not deployed to prod
`), "")
	if err != nil {
		t.Fatal(err)
	}
	np := f.NamespacePolicies(nil)
	if np == nil {
		t.Fatal("NamespacePolicies is nil for a config with a CEL policy")
	}
	root := &vouch.Node{Relation: vouch.RelSubject, Digest: digest.FromString("x")}
	ref := vouch.Reference{Registry: "r.io", Repository: "app", Tag: "latest"}
	for ns, want := range map[string]vouch.Verdict{"prod": vouch.Denied, "dev": vouch.Allowed} {
		p, err := np(ns)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Decide(context.Background(), ref, root)
		if err != nil || d.Verdict != want {
			t.Fatalf("%s: %+v, %v; want %s", ns, d, err, want)
		}
	}
}
