package cosign_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// githubWorkflow is what a GitHub Actions run puts into its Fulcio
// certificate and its SLSA provenance.
type githubWorkflow struct {
	repo     string // acme/app
	workflow string // .github/workflows/release.yml
	ref      string // refs/tags/v1.2.0
	runner   string // github-hosted
}

func (w githubWorkflow) repoURI() string { return "https://github.com/" + w.repo }

// identity is the certificate's subject (URI SAN) and build signer URI.
func (w githubWorkflow) identity() string {
	return w.repoURI() + "/" + w.workflow + "@" + w.ref
}

// githubCertificate issues a Fulcio certificate from the test CA, with an
// SCT, as Fulcio issues one to a GitHub Actions workflow: the URI SAN is
// the workflow at its ref, and the extensions are Fulcio's (OIDs
// 1.3.6.1.4.1.57264.1.*, https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md):
// the deprecated raw-string ones (.2 to .6) beside the DER-encoded ones
// (.8 to .22).
func githubCertificate(t *testing.T, s *fakeSigstore, w githubWorkflow) *certKey {
	t.Helper()
	const sha = "0123456789abcdef0123456789abcdef01234567"
	der := func(oid int, value string) pkix.Extension {
		v, err := asn1.MarshalWithParams(value, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, oid}, Value: v}
	}
	raw := func(oid int, value string) pkix.Extension {
		return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, oid}, Value: []byte(value)}
	}
	id := w.identity()
	return s.issueWith(t, githubActions, id, true,
		raw(2, "push"), raw(3, sha), raw(4, "release"), raw(5, w.repo), raw(6, w.ref),
		der(8, githubActions), der(9, id), der(10, sha), der(11, w.runner),
		der(12, w.repoURI()), der(13, sha), der(14, w.ref), der(15, "123456"),
		der(16, "https://github.com/"+strings.Split(w.repo, "/")[0]), der(17, "654321"),
		der(18, id), der(19, sha), der(20, "push"),
		der(21, w.repoURI()+"/actions/runs/42/attempts/1"), der(22, "public"))
}

const githubActions = "https://token.actions.githubusercontent.com"

// githubProvenance is the in-toto statement (v1) that
// actions/attest-build-provenance makes about the image d: an SLSA
// provenance v1 of GitHub's workflow build type.
func githubProvenance(t *testing.T, d digest.Digest, w githubWorkflow) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "ghcr.io/" + w.repo, "digest": map[string]string{"sha256": d.Encoded()}}},
		"predicateType": cosign.PredicateSLSAv1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{"workflow": map[string]any{
					"ref": w.ref, "repository": w.repoURI(), "path": w.workflow,
				}},
				"internalParameters": map[string]any{"github": map[string]any{
					"event_name": "push", "repository_id": "123456", "repository_owner_id": "654321", "runner_environment": w.runner,
				}},
				"resolvedDependencies": []any{map[string]any{
					"uri": "git+" + w.repoURI() + "@" + w.ref, "digest": map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
				}},
			},
			"runDetails": map[string]any{
				"builder":  map[string]any{"id": "https://github.com/actions/runner/" + w.runner},
				"metadata": map[string]any{"invocationId": w.repoURI() + "/actions/runs/42/attempts/1"},
			},
		},
	})
}

// TestGitHubAttestation: a GitHub artifact attestation as
// actions/attest-build-provenance with push-to-registry makes it: a
// keyless Sigstore bundle v0.3 (a DSSE envelope of an SLSA provenance v1
// statement, signed with a Fulcio certificate that carries the GitHub
// Actions extensions, logged in Rekor with an inclusion proof), pushed
// with oras-go as an OCI referrer of artifact type
// application/vnd.dev.sigstore.bundle.v0.3+json with the
// dev.sigstore.bundle.* annotations. The CA, the CT log and the Rekor log
// are the test ones of the fixture, listed in its trusted root. A policy
// that requires an SLSA provenance at Build level 2, from a verifier whose
// identity matches the workflow, its repository, ref and runner, allows
// it; a provenance signed from another repository, by another workflow or
// on a self-hosted runner, or stating another source, is denied. Both
// registry kinds; each verdict is cross-checked with `cosign
// verify-attestation` (v3) against the same trusted root, with a CUE
// policy for what the provenance must say.
func TestGitHubAttestation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good := githubWorkflow{repo: "acme/app", workflow: ".github/workflows/release.yml", ref: "refs/tags/v1.2.0", runner: "github-hosted"}
	v, err := cosign.New("github", inDir(f.dir, cosign.Config{
		TrustedRoot: f.sigstore.trustedRoot,
		Identities: []cosign.Identity{{
			Issuer:              githubActions,
			SubjectRegExp:       `^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v`,
			SourceRepositoryURI: "https://github.com/acme/app",
			RunnerEnvironment:   "github-hosted",
		}},
		Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{
			BuilderIDs:       []string{"https://github.com/actions/runner/github-hosted"},
			SourceRepository: "https://github.com/acme/app",
			SourceRefRegExp:  `^refs/tags/v`,
		}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "release", Repositories: []string{"*"}, Require: []policy.Requirement{
		{PredicateType: cosign.PredicateSLSAv1}, {SLSABuildLevel: 2},
	}}}}, []string{"github"})
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(*githubWorkflow)) githubWorkflow {
		w := good
		change(&w)
		return w
	}
	// cosign v3 asks the same: the workflow identity by regexp, the
	// issuer, the repository (the deprecated extension .5, the one its
	// flags read), and with a CUE policy what the provenance says; it has
	// no flag for the runner environment, which here the provenance's
	// builder id says too.
	policyFile := filepath.Join(f.dir, "github.cue")
	if err := os.WriteFile(policyFile, []byte(`predicate: {
	buildDefinition: externalParameters: workflow: {
		repository: "https://github.com/acme/app"
		ref:        =~"^refs/tags/v"
	}
	runDetails: builder: id: "https://github.com/actions/runner/github-hosted"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cosignArgs := []string{"verify-attestation", "--trusted-root", f.sigstore.trustedRoot, "--allow-http-registry", "--type", "slsaprovenance1",
		"--certificate-oidc-issuer", githubActions,
		"--certificate-identity-regexp", `^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v`,
		"--certificate-github-workflow-repository", "acme/app", "--policy", policyFile}
	cases := []struct {
		name       string
		cert       githubWorkflow // whom the certificate names
		provenance githubWorkflow // what the provenance says
		noLog      bool
		want       vouch.Verdict
		reason     string
	}{
		{name: "release workflow of acme/app", cert: good, provenance: good, want: vouch.Allowed},
		{name: "another repository", cert: with(func(w *githubWorkflow) { w.repo = "mallory/app" }), provenance: with(func(w *githubWorkflow) { w.repo = "mallory/app" }),
			want: vouch.Denied, reason: "identity mismatch (want issuer " + githubActions + " subject matching ^https://github\\.com/acme/app/"},
		{name: "another workflow of acme/app", cert: with(func(w *githubWorkflow) { w.workflow = ".github/workflows/evil.yml" }), provenance: good,
			want: vouch.Denied, reason: "identity mismatch"},
		{name: "a branch, not a tag", cert: with(func(w *githubWorkflow) { w.ref = "refs/heads/main" }), provenance: with(func(w *githubWorkflow) { w.ref = "refs/heads/main" }),
			want: vouch.Denied, reason: "identity mismatch"},
		{name: "self-hosted runner", cert: with(func(w *githubWorkflow) { w.runner = "self-hosted" }), provenance: with(func(w *githubWorkflow) { w.runner = "self-hosted" }),
			want: vouch.Denied, reason: "runner environment self-hosted"},
		{name: "provenance states another source", cert: good, provenance: with(func(w *githubWorkflow) { w.repo = "mallory/app" }),
			want: vouch.Denied, reason: "provenance source repository is https://github.com/mallory/app, want https://github.com/acme/app"},
		{name: "not in the transparency log", cert: good, provenance: good, noLog: true,
			want: vouch.Denied, reason: "missing transparency-log evidence"},
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf")}
	cosignBin := testbed.Bin(t, "cosign3")
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("github/app%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("", reg.Name+" github "+c.name)
					ci := githubCertificate(t, f.sigstore, c.cert)
					b := f.sigstore.dsseBundle(t, githubProvenance(t, img.Digest, c.provenance), bundleOptions{cert: ci, tlog: !c.noLog})
					att := pushReferrer(t, p, img, cosign.BundleV03Type, map[string]string{
						"dev.sigstore.bundle.content":       "dsse-envelope",
						"dev.sigstore.bundle.predicateType": cosign.PredicateSLSAv1,
						ocispec.AnnotationCreated:           time.Now().UTC().Format(time.RFC3339),
					}, layer{mediaType: cosign.BundleV03Type, data: b})
					ref := reg.Host + "/" + repo + "@" + img.Digest.String()
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: pol}
					r, err := exec.Verify(ctx, testbed.Ref(t, ref))
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: %s", r.Verdict, r.Reason)
					if r.Verdict != c.want || !strings.Contains(r.Reason, c.reason) {
						t.Errorf("got %s %q, want %s containing %q", r.Verdict, r.Reason, c.want, c.reason)
					}
					if len(r.Root.Referrers) != 1 || r.Root.Referrers[0].Digest != att.Digest || r.Root.Referrers[0].ArtifactType != cosign.BundleV03Type {
						t.Fatalf("the report's referrers are not the one bundle %s: %+v", att.Digest, r.Root.Referrers)
					}
					if c.want == vouch.Allowed {
						res := r.Root.Referrers[0].Results[0]
						if len(res.Claims) != 1 || res.Claims[0].SLSABuildLevel != 2 || res.Claims[0].PredicateType != cosign.PredicateSLSAv1 {
							t.Errorf("claims %+v, want one SLSA v1 claim at Build level 2", res.Claims)
						}
						if !strings.Contains(res.Reason, "signed by "+good.identity()+" (issuer "+githubActions+"); in Rekor") {
							t.Errorf("the result does not name the workflow and its log entry: %s", res.Reason)
						}
					}
					out, err := testbed.RunErr(env, cosignBin, append(cosignArgs, ref)...)
					t.Logf("cosign3 verify-attestation: err=%v", err)
					if ok := err == nil; ok != (c.want == vouch.Allowed) {
						t.Errorf("cosign ok=%v, vouch %s\n%s", ok, r.Verdict, out)
					}
				})
			}
		})
	}
}
