package cosign_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// TestFulcioExtensions: a keyless identity can require the Fulcio
// certificate extensions that say which GitHub Actions workflow signed
// (source repository, ref, runner environment, build signer), beyond its
// issuer and subject. The certificates come from the test Fulcio CA of
// the fixture, with an SCT, and the signatures are logged in its Rekor.
func TestFulcioExtensions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const (
		actions  = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
	)
	ext := func(oid int, value string) pkix.Extension {
		v, err := asn1.MarshalWithParams(value, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, oid}, Value: v}
	}
	ci := f.sigstore.issueWith(t, actions, workflow, true,
		ext(8, actions), ext(9, workflow), ext(11, "github-hosted"), ext(12, "https://github.com/acme/app"), ext(14, "refs/tags/v1.2.0"))

	id := cosign.Identity{Issuer: actions, Subject: workflow, SourceRepositoryURI: "https://github.com/acme/app", RunnerEnvironment: "github-hosted", SourceRepositoryRef: "refs/tags/v1.2.0"}
	selfHosted := id
	selfHosted.RunnerEnvironment = "self-hosted"
	otherRepo := id
	otherRepo.SourceRepositoryURI = "https://github.com/acme/other"
	cases := []struct {
		name    string
		id      cosign.Identity
		outcome vouch.Outcome
		reason  string
	}{
		{"workflow identity", id, vouch.Passed, "signed by " + workflow},
		{"self-hosted runner required", selfHosted, vouch.Failed, "identity mismatch (want issuer " + actions + " subject " + workflow + " source repository https://github.com/acme/app source ref refs/tags/v1.2.0 runner environment self-hosted, got issuer " + actions + " subject " + workflow + " source repository https://github.com/acme/app source ref refs/tags/v1.2.0 runner environment github-hosted build signer " + workflow + ")"},
		{"another repository", otherRepo, vouch.Failed, "identity mismatch"},
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "cosign/fulcio")
			img := p.Image("", reg.Name+" fulcio extensions")
			pushTagLayout(t, p, img, ".sig", f.sigstore.keylessSigned(t, ci, simpleSigning(t, "registry.test/app", img.Digest, nil)))
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					v, err := cosign.New(fmt.Sprintf("v%d", i), inDir(f.dir, cosign.Config{TrustedRoot: f.sigstore.trustedRoot, Identities: []cosign.Identity{c.id}}))
					if err != nil {
						t.Fatal(err)
					}
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow, Discovery: vouch.Discovery{CosignTags: true}}
					r, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/cosign/fulcio@"+img.Digest.String()))
					if err != nil {
						t.Fatal(err)
					}
					if len(r.Root.Referrers) != 1 {
						t.Fatalf("%d referrers, want 1", len(r.Root.Referrers))
					}
					n := r.Root.Referrers[0]
					if n.Outcome != c.outcome || !strings.Contains(n.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", n.Outcome, n.Reason, c.outcome, c.reason)
					}
				})
			}
		})
	}
}
