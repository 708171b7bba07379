//go:build policycode

package policy_test

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
)

// TestDocExamples compiles every Rego module of docs/policy-rego.md and
// every CEL expression of docs/policy-cel.md, and runs each over a
// 10-node tree: the documentation's examples work as written.
func TestDocExamples(t *testing.T) {
	blocks := func(file, lang string) []string {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
			out = append(out, m[1])
		}
		if len(out) < 4 {
			t.Fatalf("%s: only %d %s examples found", file, len(out), lang)
		}
		return out
	}
	var scopes []policy.Scope
	for _, src := range blocks("../docs/policy-rego.md", "rego") {
		scopes = append(scopes, policy.Scope{Rego: &policy.Rego{Inline: src}})
	}
	for _, expr := range blocks("../docs/policy-cel.md", "cel") {
		scopes = append(scopes, policy.Scope{CEL: &policy.CEL{Validations: []policy.CELValidation{{Expression: expr}}}})
	}
	root := tenNodes()
	for i, s := range scopes {
		for _, ns := range []string{"", "prod"} {
			p, err := policy.New(codeScope(s), nil, policy.InNamespace(ns))
			if err != nil {
				t.Fatalf("example %d: %v", i, err)
			}
			if _, err := p.Decide(context.Background(), vouch.Reference{Registry: "r.io", Repository: "app", Tag: "latest"}, root); err != nil {
				t.Fatalf("example %d in namespace %q: %v", i, ns, err)
			}
		}
	}
}
