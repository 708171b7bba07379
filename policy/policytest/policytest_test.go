package policytest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/policy/policytest"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSuite(t *testing.T) {
	for _, tt := range []struct{ body, err string }{
		{"version: vouch.policy.test/v1\ncases: [{name: a, report: r.json, verdict: allowed}]\n", ""},
		{"version: v1\ncases: [{name: a, report: r.json, verdict: allowed}]\n", `version: "v1" is not "vouch.policy.test/v1"`},
		{"version: vouch.policy.test/v1\ncases: []\n", "at least one case"},
		{"version: vouch.policy.test/v1\ncases: [{name: a, verdict: allowed}]\n", "cases[0]: needs a report or a subject"},
		{"version: vouch.policy.test/v1\ncases: [{name: a, subject: x, verdict: maybe}]\n", `cases[0].verdict: "maybe" is not allowed, denied or undecided`},
		{"version: vouch.policy.test/v1\ncases: [{name: a, subject: x, verdict: denied}, {name: a, subject: y, verdict: denied}]\n", `cases[1].name: "a" is used twice`},
		{"version: vouch.policy.test/v1\ncases: [{name: a, subject: x, verdict: denied, namespcae: p}]\n", "field namespcae not found"},
		{"", "empty"},
	} {
		path := write(t, "suite.yaml", tt.body)
		s, err := policytest.ReadSuite(path)
		if tt.err == "" {
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(filepath.Dir(path), "r.json"); s.Cases[0].Report != want {
				t.Fatalf("report path %q, want %q (relative to the suite)", s.Cases[0].Report, want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: got %v, want %q", tt.body, err, tt.err)
		}
	}
}

func TestReadReportsRefuses(t *testing.T) {
	for body, want := range map[string]string{
		`{"version":"vouch.report/v9","subjects":[]}`:                "is not \"vouch.report/v1\"",
		`{"version":"vouch.report/v1","subjects":[{"subject":"x"}]}`: "subjects[0]: no reference",
		`not json`: "not a vouch report",
	} {
		if _, err := policytest.ReadReports(write(t, "r.json", body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

// Compare lists exactly the subjects whose verdict (or waiver) changes,
// with both reasons, deciding on recorded trees without any registry.
func TestCompare(t *testing.T) {
	sig := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "application/vnd.cncf.notary.signature", Digest: digest.FromString("s"), Outcome: vouch.Passed}
	sbom := &vouch.Node{Relation: vouch.RelReferrer, ArtifactType: "application/spdx+json", Digest: digest.FromString("b"), Outcome: vouch.Passed}
	report := func(name string, referrers ...*vouch.Node) *vouch.Report {
		return &vouch.Report{Subject: "r.io/" + name + ":v1", Reference: "r.io/" + name + ":v1@" + digest.FromString(name).String(),
			Root: &vouch.Node{Relation: vouch.RelSubject, Digest: digest.FromString(name), Referrers: referrers}}
	}
	reports := []*vouch.Report{
		report("signed", sig),
		report("signed-sbom", sig, sbom),
		report("nothing"),
		{Subject: "r.io/gone:v1", Reference: "r.io/gone:v1", Verdict: vouch.Undecided, Reason: "could not decide: unreachable"},
	}
	scope := func(mode vouch.Mode, types ...string) policy.Config {
		s := policy.Scope{Name: "all", Repositories: []string{"*"}, Mode: mode}
		for _, t := range types {
			s.Require = append(s.Require, policy.Requirement{ArtifactType: t})
		}
		return policy.Config{Scopes: []policy.Scope{s}}
	}
	ctx := context.Background()
	decider := func(c policy.Config) *policytest.Decider {
		d, err := policytest.NewDecider(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	old := decider(scope("", "application/vnd.cncf.notary.signature"))
	stricter := decider(scope("", "application/vnd.cncf.notary.signature", "application/spdx+json"))
	warned := decider(scope(vouch.ModeWarn, "application/vnd.cncf.notary.signature", "application/spdx+json"))

	changes := policytest.Compare(ctx, reports, "", old, stricter)
	if len(changes) != 1 || changes[0].Subject != "r.io/signed:v1" || changes[0].Old.Verdict != vouch.Allowed || changes[0].New.Verdict != vouch.Denied ||
		!strings.Contains(changes[0].New.Reason, "no application/spdx+json found") {
		t.Fatalf("old → stricter: %+v", changes)
	}
	// Under warn, the stricter policy waives instead: signed changes from
	// a plain allow to a waived one, nothing from denied to allowed.
	changes = policytest.Compare(ctx, reports, "", old, warned)
	var got []string
	for _, c := range changes {
		got = append(got, c.Subject)
	}
	if strings.Join(got, " ") != "r.io/signed:v1 r.io/nothing:v1" {
		t.Fatalf("old → warned: %v", changes)
	}
	if o := old.Decide(ctx, reports[3], ""); o.Verdict != vouch.Undecided || !strings.Contains(o.Reason, "unreachable") {
		t.Fatalf("a report without a graph: %+v", o)
	}
}
