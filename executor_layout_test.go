package vouch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/store/ocilayout"
)

func mustRef(t testing.TB, s string) vouch.Reference {
	t.Helper()
	ref, err := vouch.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// passAll passes every node of the types it handles, naming the type.
func passAll(types ...string) vouch.Verifier {
	return vouch.VerifierFunc{VerifierName: "test", ArtifactTypes: types, Func: func(_ context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
		return vouch.Result{Outcome: vouch.Passed, Reason: "checked " + req.Artifact.ArtifactType}, nil
	}}
}

// allowIfAnyPassed is a minimal policy for these tests: allowed when a
// direct referrer passed.
var allowIfAnyPassed = vouch.PolicyFunc(func(_ context.Context, _ vouch.Reference, root *vouch.Node) (vouch.Decision, error) {
	for _, r := range root.Referrers {
		if r.Outcome == vouch.Passed {
			return vouch.Decision{Verdict: vouch.Allowed, Reason: "a referrer passed"}, nil
		}
	}
	return vouch.Decision{Verdict: vouch.Denied, Reason: "nothing passed"}, nil
})

func TestExecutorLayout(t *testing.T) {
	ctx := context.Background()
	exec := &vouch.Executor{Store: ocilayout.New(vouch.Limits{}), Policy: allowIfAnyPassed, Verifiers: []vouch.Verifier{passAll("application/spdx+json")}}

	t.Run("graph of an image", func(t *testing.T) {
		root, pinned, err := exec.Graph(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		if err != nil {
			t.Fatal(err)
		}
		if pinned.Digest == "" || root.Digest != pinned.Digest {
			t.Fatalf("pinned %s, root %s", pinned, root.Digest)
		}
		var types []string
		for _, r := range root.Referrers {
			types = append(types, r.ArtifactType)
			if r.Outcome != "" {
				t.Errorf("Graph verified %s: %s", r.ArtifactType, r.Outcome)
			}
		}
		if got := strings.Join(types, ","); got != "application/sarif+json,application/spdx+json,application/vnd.cncf.notary.signature" {
			t.Fatalf("referrer types = %s", got)
		}
	})

	t.Run("index subject walks its platform manifests", func(t *testing.T) {
		root, _, err := exec.Graph(ctx, mustRef(t, "oci-layout:examples/layout:multiarch"))
		if err != nil {
			t.Fatal(err)
		}
		if len(root.Manifests) != 2 {
			t.Fatalf("manifests = %d, want 2", len(root.Manifests))
		}
		arm := root.Manifests[1]
		if arm.Platform == nil || arm.Platform.Architecture != "arm64" || len(arm.Referrers) != 1 || arm.Referrers[0].ArtifactType != "application/spdx+json" {
			t.Fatalf("arm64 manifest node = %+v", arm)
		}
	})

	t.Run("verify runs the verifiers that handle each type", func(t *testing.T) {
		report, err := exec.Verify(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		if err != nil {
			t.Fatal(err)
		}
		if report.Verdict != vouch.Allowed {
			t.Fatalf("verdict %s: %s", report.Verdict, report.Reason)
		}
		for _, r := range report.Root.Referrers {
			want := vouch.Skipped
			if r.ArtifactType == "application/spdx+json" {
				want = vouch.Passed
			}
			if r.Outcome != want {
				t.Errorf("%s: outcome %s (%s), want %s", r.ArtifactType, r.Outcome, r.Reason, want)
			}
		}
	})

	t.Run("artifact type filter", func(t *testing.T) {
		e := *exec
		e.Discovery.ArtifactType = "application/sarif+json"
		root, _, err := e.Graph(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		if err != nil {
			t.Fatal(err)
		}
		if len(root.Referrers) != 1 || root.Referrers[0].ArtifactType != "application/sarif+json" {
			t.Fatalf("referrers = %+v", root.Referrers)
		}
	})

	t.Run("missing tag is undecided with a reason", func(t *testing.T) {
		report, err := exec.Verify(ctx, mustRef(t, "oci-layout:examples/layout:nope"))
		if !errors.Is(err, vouch.ErrNotFound) {
			t.Fatalf("err = %v, want not found", err)
		}
		if report.Verdict != vouch.Undecided || !strings.Contains(report.Reason, "nope") {
			t.Fatalf("report = %+v", report)
		}
	})

	t.Run("node limit", func(t *testing.T) {
		e := *exec
		e.Limits.MaxNodes = 2
		_, _, err := e.Graph(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		var le *vouch.LimitError
		if !errors.As(err, &le) || le.Limit != "max-nodes" {
			t.Fatalf("err = %v, want max-nodes limit", err)
		}
	})

	t.Run("depth limit", func(t *testing.T) {
		e := *exec
		e.Limits.MaxDepth = 2
		if _, _, err := e.Graph(ctx, mustRef(t, "oci-layout:examples/layout:demo")); err != nil {
			t.Fatalf("depth 2 suffices for the demo (a signature on its SBOM): %v", err)
		}
		e.Limits.MaxDepth = 1
		_, _, err := e.Graph(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		var le *vouch.LimitError
		if !errors.As(err, &le) || le.Limit != "max-depth" {
			t.Fatalf("err = %v, want the max-depth limit", err)
		}
	})

	t.Run("blob limit applies to what verifiers read", func(t *testing.T) {
		st := ocilayout.New(vouch.Limits{MaxBlobBytes: 10})
		var readErr error
		v := vouch.VerifierFunc{VerifierName: "reader", ArtifactTypes: []string{"application/spdx+json"}, Func: func(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
			_, readErr = req.Repository.Fetch(ctx, req.Manifest.Layers[0])
			return vouch.Result{}, readErr
		}}
		e := &vouch.Executor{Store: st, Policy: allowIfAnyPassed, Verifiers: []vouch.Verifier{v}}
		report, err := e.Verify(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
		if err != nil {
			t.Fatal(err)
		}
		var le *vouch.LimitError
		if !errors.As(readErr, &le) || le.Limit != "max-blob-bytes" {
			t.Fatalf("read error = %v", readErr)
		}
		if report.Verdict != vouch.Denied {
			t.Fatalf("verdict = %s", report.Verdict)
		}
	})
}
