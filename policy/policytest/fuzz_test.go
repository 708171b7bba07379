package policytest_test

import (
	"context"
	"testing"

	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/policy/policytest"
)

// FuzzParseSuite: a test-suite file is outside input; it is refused or
// read, never a panic.
func FuzzParseSuite(f *testing.F) {
	f.Add([]byte("version: vouch.policy.test/v1\ncases: [{name: a, report: r.json, subject: x, namespace: n, verdict: denied, reason: y}]\n"))
	f.Add([]byte("version: vouch.policy.test/v1\ncases: [{name: a, verdict: allowed}]\n"))
	f.Add([]byte("- [&a x, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := policytest.ParseSuite(data, "suite.yaml")
		if err == nil && len(s.Cases) == 0 {
			t.Fatal("a suite without cases was accepted")
		}
	})
}

// FuzzParseReports: a saved report is outside input, and a policy then
// decides on its tree: neither panics.
func FuzzParseReports(f *testing.F) {
	f.Add([]byte(`{"version":"vouch.report/v1","verdict":"allowed","subjects":[{"subject":"r.io/a:v1","reference":"r.io/a:v1@sha256:0000000000000000000000000000000000000000000000000000000000000000","verdict":"allowed","reason":"x","graph":{"relation":"subject","mediaType":"m","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"referrers":[{"relation":"referrer","artifactType":"application/vnd.cncf.notary.signature","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","outcome":"passed","results":[{"verifier":"n","outcome":"passed","reason":"ok","details":{"a":[1,2.5,{"b":null}]}}]}]}}]}`))
	f.Add([]byte(`{"version":"vouch.report/v1","subjects":[{"reference":"oci-layout:x@sha256:00"}]}`))
	d, err := policytest.NewDecider(context.Background(), policy.Config{Scopes: []policy.Scope{{Name: "s", Repositories: []string{"*"},
		Require: []policy.Requirement{{ArtifactType: "application/vnd.cncf.notary.signature", Require: []policy.Requirement{{ArtifactType: "x", Optional: true}}}}}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := policytest.ParseReports(data, "r.json")
		if err != nil {
			return
		}
		for _, r := range rs.Subjects {
			d.Decide(context.Background(), r, "ns")
		}
	})
}
