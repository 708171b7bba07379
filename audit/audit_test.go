package audit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
)

// countingVerifier counts the signatures its verifier checks.
type countingVerifier struct {
	vouch.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, req)
}

// TestRun audits workloads whose images sit in a real registry (the
// distribution registry process), signed or not by a real Notary Project
// signature, under the default policy and, in namespace "relaxed", under
// a policy in audit mode: verdicts and reasons per container, each
// distinct image verified once per policy however many containers use
// it, and the running digest verified rather than the tag.
func TestRun(t *testing.T) {
	reg := testbed.Distribution(t)
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "audit/app")
	signed := p.Image("signed", "signed")
	signer.Sign(p, signed)
	unsigned := p.Image("unsigned", "unsigned")
	// "moved" was signed, then the tag moved to an unsigned image: the
	// Pods that run the signed digest are fine.
	old := p.Image("moved", "moved-old")
	signer.Sign(p, old)
	p.Image("moved", "moved-new")

	verifiers, pol, err := config.Build(nil, config.Quick{NotationCerts: []string{signer.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingVerifier{Verifier: verifiers[0]}
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	strict := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{counted}, Policy: pol}
	relaxedPolicy, err := policy.New(policy.Config{Scopes: []policy.Scope{{
		Name: "relaxed", Repositories: []string{"*"}, Mode: vouch.ModeAudit,
		Require: []policy.Requirement{{ArtifactType: "application/vnd.cncf.notary.signature"}},
	}}}, []string{counted.Name()})
	if err != nil {
		t.Fatal(err)
	}
	relaxed := *strict
	relaxed.Policy = relaxedPolicy

	img := func(tag string) string { return reg.Host + "/audit/app:" + tag }
	workloads := []audit.Workload{
		{Namespace: "team-a", Kind: "Deployment", Name: "web", Containers: []audit.Container{
			{Container: `init container "setup"`, Image: img("signed")},
			{Container: `container "web"`, Image: img("signed")},
		}},
		{Namespace: "team-b", Kind: "StatefulSet", Name: "db", Containers: []audit.Container{
			{Container: `container "db"`, Image: img("signed")},
			{Container: `container "cache"`, Image: img("unsigned")},
		}},
		{Namespace: "relaxed", Kind: "Pod", Name: "try", Containers: []audit.Container{
			{Container: `container "c"`, Image: img("unsigned")},
		}},
		{Namespace: "team-a", Kind: "Deployment", Name: "old", Pods: 2, Containers: []audit.Container{
			{Container: `container "c"`, Image: img("moved"), Running: old.Digest},
			{Container: `container "bad"`, Image: "oci-layout:/etc:x"},
		}},
	}
	r, err := audit.Run(context.Background(), workloads, audit.Options{
		Executor: func(ns string) (*vouch.Executor, string, error) {
			if ns == "relaxed" {
				return &relaxed, "relaxed", nil
			}
			return strict, "", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != vouch.Denied || r.Version != audit.ReportVersion {
		t.Errorf("verdict %s, version %s; want denied, %s", r.Verdict, r.Version, audit.ReportVersion)
	}
	// signed, unsigned and moved@old under the strict policy; unsigned
	// under the relaxed one. The layout reference is never verified.
	if r.Verified != 4 {
		t.Errorf("%d verifications, want 4", r.Verified)
	}
	// One signature check per distinct signed image (the unsigned one has
	// none to check).
	if n := counted.calls.Load(); n != 2 {
		t.Errorf("the verifier ran %d times, want 2 (signed and moved@old, once each)", n)
	}

	type row struct {
		workload, container string
		verdict             vouch.Verdict
		digest, reason      string
	}
	want := []row{
		{"relaxed/Pod/try", `container "c"`, vouch.Allowed, unsigned.Digest.String(), "audit"},
		{"team-a/Deployment/old", `container "c"`, vouch.Allowed, old.Digest.String(), ""},
		{"team-a/Deployment/old", `container "bad"`, vouch.Undecided, "", `image "oci-layout:/etc:x" is not a registry reference`},
		{"team-a/Deployment/web", `init container "setup"`, vouch.Allowed, signed.Digest.String(), ""},
		{"team-a/Deployment/web", `container "web"`, vouch.Allowed, signed.Digest.String(), ""},
		{"team-b/StatefulSet/db", `container "db"`, vouch.Allowed, signed.Digest.String(), ""},
		{"team-b/StatefulSet/db", `container "cache"`, vouch.Denied, unsigned.Digest.String(), "no verified referrer"},
	}
	var got []row
	verdicts := map[string]vouch.Verdict{}
	for _, w := range r.Workloads {
		name := w.Namespace + "/" + w.Kind + "/" + w.Name
		verdicts[name] = w.Verdict
		for _, im := range w.Images {
			got = append(got, row{name, im.Container, im.Verdict, im.Digest.String(), im.Reason})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.workload != w.workload || g.container != w.container || g.verdict != w.verdict || g.digest != w.digest || !strings.Contains(g.reason, w.reason) {
			t.Errorf("row %d: %+v\nwant %+v", i, g, w)
		}
	}
	for name, v := range map[string]vouch.Verdict{"relaxed/Pod/try": vouch.Allowed, "team-a/Deployment/old": vouch.Undecided, "team-a/Deployment/web": vouch.Allowed, "team-b/StatefulSet/db": vouch.Denied} {
		if verdicts[name] != v {
			t.Errorf("%s: %s, want %s", name, verdicts[name], v)
		}
	}
	if r.Workloads[1].Pods != 2 {
		t.Errorf("pods of team-a/Deployment/old: %d, want 2", r.Workloads[1].Pods)
	}
}

// TestRunNamespaceError: a namespace whose policy cannot be built makes
// its images undecided, and nothing of it is verified.
func TestRunNamespaceError(t *testing.T) {
	r, err := audit.Run(context.Background(), []audit.Workload{{Namespace: "x", Kind: "Pod", Name: "p", Containers: []audit.Container{{Container: `container "c"`, Image: "registry.example/a:1"}}}},
		audit.Options{Executor: func(string) (*vouch.Executor, string, error) { return nil, "", context.DeadlineExceeded }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != vouch.Undecided || r.Verified != 0 || !strings.Contains(r.Workloads[0].Images[0].Reason, "the policy of namespace x") {
		t.Fatalf("%+v", r.Workloads[0].Images[0])
	}
	if _, err := audit.Run(context.Background(), nil, audit.Options{}); err == nil {
		t.Fatal("Run without an Executor: no error")
	}
}
