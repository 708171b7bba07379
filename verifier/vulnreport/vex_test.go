package vulnreport_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// TestVEXBounds: what the VEX search reads is bounded, and past a bound the
// report's check is an error (vouch fails closed), on both registry kinds.
// The trust verifier is a VerifierFunc that passes every Notary Project
// signature; the documents here carry none, so it is never asked (the real
// signature paths are cmd/vouch's TestVEX).
func TestVEXBounds(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical"}, VEX: &vulnreport.VEXConfig{TrustedBy: []string{"trust"}}})
	trust := vouch.VerifierFunc{VerifierName: "trust", ArtifactTypes: []string{"application/vnd.cncf.notary.signature"},
		Func: func(context.Context, *vouch.VerifyRequest) (vouch.Result, error) {
			return vouch.Pass("trusted", nil), nil
		}}
	if err := v.Link(func(name string) (vouch.Verifier, bool) { return trust, name == "trust" }); err != nil {
		t.Fatal(err)
	}
	policy := vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
	})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy}
	doc := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"doc-%d","statements":[]}`, i))
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/vex-bounds")
			check := func(img ocispec.Descriptor) vouch.Result {
				t.Helper()
				r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/demo/vex-bounds@"+img.Digest.String()))
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range r.Root.Referrers {
					if n.ArtifactType == vulnreport.MediaType && len(n.Results) == 1 {
						return n.Results[0]
					}
				}
				t.Fatalf("no result on the report: %+v", r.Root.Referrers)
				return vouch.Result{}
			}

			img := p.Image("", reg.Name+" many")
			p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "trivy-low.sarif"))
			for i := range vulnreport.MaxVEXDocuments + 1 {
				p.Attach(img, vulnreport.VEXMediaType, vulnreport.VEXMediaType, doc(i))
			}
			if res := check(img); res.Outcome != vouch.Errored || !strings.Contains(res.Reason, fmt.Sprintf("more than %d VEX documents", vulnreport.MaxVEXDocuments)) {
				t.Fatalf("%d VEX documents: %s %q", vulnreport.MaxVEXDocuments+1, res.Outcome, res.Reason)
			}

			img = p.Image("", reg.Name+" few")
			p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "trivy-low.sarif"))
			p.Attach(img, vulnreport.VEXMediaType, vulnreport.VEXMediaType, doc(0))
			res := check(img)
			if res.Outcome != vouch.Passed || !strings.Contains(fmt.Sprint(res.Details["vexIgnored"]), "unsigned") {
				t.Fatalf("one unsigned VEX document: %s %q %v", res.Outcome, res.Reason, res.Details)
			}
		})
	}
}
