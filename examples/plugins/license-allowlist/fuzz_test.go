package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzSatisfied feeds arbitrary license expressions, as SBOMs carry them,
// to the expression evaluator: it must not panic, and an expression it
// accepts must give the same answer when spaced differently.
func FuzzSatisfied(f *testing.F) {
	for _, s := range []string{"MIT", "(MIT OR GPL-3.0-only) AND Apache-2.0", "GPL-2.0-or-later WITH GCC-exception-3.1", "((", "AND OR WITH", "MIT)"} {
		f.Add(s)
	}
	allowed := map[string]bool{"mit": true, "apache-2.0": true}
	f.Fuzz(func(t *testing.T, expr string) {
		ok, err := satisfied(expr, allowed)
		if err != nil {
			return
		}
		spaced := strings.Join(tokenize(expr), "  ")
		if len(spaced) > maxExpression {
			return
		}
		ok2, err := satisfied(spaced, allowed)
		if err != nil || ok2 != ok {
			t.Fatalf("%q gives %v, respaced %q gives %v, %v", expr, ok, spaced, ok2, err)
		}
	})
}

// FuzzRun feeds arbitrary requests to the plugin: it always answers a
// well-formed response.
func FuzzRun(f *testing.F) {
	f.Add([]byte(`{"version":"vouch.plugin/v1","verifier":{"name":"l","parameters":{"allowed":["MIT"]}},"blobs":[{"descriptor":{},"data":"eyJzcGR4VmVyc2lvbiI6IlNQRFgtMi4zIiwicGFja2FnZXMiOlt7Im5hbWUiOiJhIiwibGljZW5zZUNvbmNsdWRlZCI6Ik1JVCJ9XX0="}]}`))
	f.Add([]byte(`{"version":"vouch.plugin/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := run(strings.NewReader(string(data)))
		switch resp.Outcome {
		case "passed", "failed", "error":
		default:
			t.Fatalf("outcome %q", resp.Outcome)
		}
		if resp.Outcome != "passed" && resp.Reason == "" {
			t.Fatal("no reason")
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatal(err)
		}
	})
}
