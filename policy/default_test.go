package policy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
)

const (
	imageType    = "application/vnd.oci.image.manifest.v1+json"
	indexType    = "application/vnd.oci.image.index.v1+json"
	notationType = "application/vnd.cncf.notary.signature"
	spdxType     = "application/spdx+json"
	sarifType    = "application/sarif+json"
)

func subject(seed string, referrers ...*vouch.Node) *vouch.Node {
	return &vouch.Node{Relation: vouch.RelSubject, MediaType: imageType, Digest: digest.FromString(seed), Referrers: referrers}
}

func referrer(seed, artifactType string, outcome vouch.Outcome, reason string, referrers ...*vouch.Node) *vouch.Node {
	return &vouch.Node{
		Relation: vouch.RelReferrer, Source: vouch.SourceReferrersAPI,
		MediaType: imageType, ArtifactType: artifactType, Digest: digest.FromString(seed),
		Outcome: outcome, Reason: reason, Referrers: referrers,
	}
}

func short(seed string) string {
	return "sha256:" + digest.FromString(seed).Encoded()[:12]
}

// claimed is a Sigstore bundle whose cosign result makes claim.
func claimed(seed string, o vouch.Outcome, claim vouch.Claim) *vouch.Node {
	n := referrer(seed, vouch.SigstoreBundleType, o, "cosign: "+string(o))
	n.Results = []vouch.Result{{Verifier: "cosign", Outcome: o, Reason: string(o), Claims: []vouch.Claim{claim}}}
	return n
}

func TestDefault(t *testing.T) {
	signed := func() *vouch.Node {
		return referrer("sig", notationType, vouch.Passed, "notation: signed by CN=release")
	}
	badSig := referrer("bad", notationType, vouch.Failed, "notation: signature does not match the subject")
	sbomSkipped := referrer("sbom", spdxType, vouch.Skipped, "no verifier handles artifact type application/spdx+json")
	sigErr := referrer("err", notationType, vouch.Errored, "notation: fetch blob: connection reset")

	index := func(indexReferrers []*vouch.Node, manifests ...*vouch.Node) *vouch.Node {
		root := subject("index", indexReferrers...)
		root.MediaType = indexType
		root.Manifests = manifests
		return root
	}
	manifest := func(seed string, referrers ...*vouch.Node) *vouch.Node {
		return &vouch.Node{Relation: vouch.RelManifest, MediaType: imageType, Digest: digest.FromString(seed), Referrers: referrers}
	}

	tests := []struct {
		name      string
		verifiers []string
		root      *vouch.Node
		want      vouch.Verdict
		reason    []string // substrings of the reason, in order
	}{
		{
			name:   "no verifier denies even a signed subject",
			root:   subject("app", signed()),
			want:   vouch.Denied,
			reason: []string{"no verifier is configured: vouch allows nothing it has not verified"},
		},
		{
			name:      "empty verifier list denies",
			verifiers: []string{},
			root:      subject("app", signed()),
			want:      vouch.Denied,
			reason:    []string{"no verifier is configured"},
		},
		{
			name:      "one passed signature allows",
			verifiers: []string{"notation"},
			root:      subject("app", signed(), sbomSkipped),
			want:      vouch.Allowed,
			reason:    []string{"1 of 2 referrers verified: ", notationType + " " + short("sig"), "(notation: signed by CN=release)"},
		},
		{
			name:      "a failed attestation bundle beside a passed signature bundle denies",
			verifiers: []string{"cosign"},
			root: subject("app",
				claimed("sb", vouch.Passed, vouch.Claim{Kind: vouch.ClaimSignature, Outcome: vouch.Passed}),
				claimed("ab", vouch.Failed, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: "https://slsa.dev/provenance/v1", Outcome: vouch.Failed})),
			want:   vouch.Denied,
			reason: []string{vouch.SigstoreBundleType + " " + short("ab") + " failed"},
		},
		{
			name:      "a failed signature bundle beside a passed one does not deny",
			verifiers: []string{"cosign"},
			root: subject("app",
				claimed("sb", vouch.Passed, vouch.Claim{Kind: vouch.ClaimSignature, Outcome: vouch.Passed}),
				claimed("sb2", vouch.Failed, vouch.Claim{Kind: vouch.ClaimSignature, Outcome: vouch.Failed})),
			want:   vouch.Allowed,
			reason: []string{"1 of 2 referrers verified"},
		},
		{
			name:      "errored sibling does not deny once one passed",
			verifiers: []string{"notation"},
			root:      subject("app", sigErr, signed()),
			want:      vouch.Allowed,
			reason:    []string{"1 of 2 referrers verified"},
		},
		{
			name:      "no referrers",
			verifiers: []string{"notation"},
			root:      subject("app"),
			want:      vouch.Denied,
			reason:    []string{"no verified referrer: found no referrers; configured verifiers: notation"},
		},
		{
			name:      "skipped and errored are not passes",
			verifiers: []string{"notation", "cosign"},
			root:      subject("app", sbomSkipped, sigErr),
			want:      vouch.Denied,
			reason: []string{
				"no verified referrer: found 2 referrers: ",
				"1 skipped (no verifier handles artifact type application/spdx+json)",
				", 1 error (notation: fetch blob: connection reset)",
				"; configured verifiers: notation, cosign",
			},
		},
		{
			name:      "unchecked referrer is not a pass",
			verifiers: []string{"notation"},
			root:      subject("app", referrer("x", notationType, "", "")),
			want:      vouch.Denied,
			reason:    []string{"found 1 referrer: 1 unchecked (no reason given)"},
		},
		{
			name:      "same reasons are listed once",
			verifiers: []string{"notation"},
			root: subject("app",
				referrer("s1", spdxType, vouch.Skipped, "no verifier handles artifact type application/spdx+json"),
				referrer("s2", spdxType, vouch.Skipped, "no verifier handles artifact type application/spdx+json"),
			),
			want:   vouch.Denied,
			reason: []string{"found 2 referrers: 2 skipped (no verifier handles artifact type application/spdx+json);"},
		},
		{
			name:      "many reasons are cut short",
			verifiers: []string{"notation"},
			root: subject("app",
				referrer("a", "a", vouch.Skipped, "ra"), referrer("b", "b", vouch.Skipped, "rb"),
				referrer("c", "c", vouch.Skipped, "rc"), referrer("d", "d", vouch.Skipped, "rd"),
				referrer("e", "e", vouch.Skipped, "re"),
			),
			want:   vouch.Denied,
			reason: []string{"5 skipped (ra; rb; rc; and 2 more)"},
		},
		{
			name:      "a failed signature beside a passed one is not held against the subject",
			verifiers: []string{"notation"},
			root:      subject("app", badSig, signed()),
			want:      vouch.Allowed,
			reason:    []string{"1 of 2 referrers verified"},
		},
		{
			name:      "a failed signature alone denies",
			verifiers: []string{"notation"},
			root:      subject("app", badSig, sbomSkipped),
			want:      vouch.Denied,
			reason:    []string{notationType + " " + short("bad") + " failed: notation: signature does not match the subject"},
		},
		{
			name:      "a failed SBOM denies despite a passed signature",
			verifiers: []string{"notation", "sbom"},
			root:      subject("app", signed(), referrer("sbom", spdxType, vouch.Failed, "sbom: license GPL-3.0 denied")),
			want:      vouch.Denied,
			reason:    []string{spdxType + " " + short("sbom") + " failed: sbom: license GPL-3.0 denied"},
		},
		{
			name:      "a failed nested signature denies and names its parent",
			verifiers: []string{"notation"},
			root: subject("app", signed(),
				referrer("sbom", spdxType, vouch.Passed, "sbom: ok",
					referrer("sbomsig", notationType, vouch.Failed, "notation: untrusted signer"))),
			want: vouch.Denied,
			reason: []string{
				notationType + " " + short("sbomsig"),
				"(referrer of " + spdxType + " " + short("sbom") + ")",
				" failed: notation: untrusted signer",
			},
		},
		{
			name:      "several failures are counted",
			verifiers: []string{"notation"},
			root: subject("app", referrer("f1", notationType, vouch.Failed, "one"),
				referrer("f2", notationType, vouch.Failed, "two"), referrer("f3", notationType, vouch.Failed, "")),
			want:   vouch.Denied,
			reason: []string{short("f1") + " failed: one (and 2 more failed)"},
		},
		{
			name:      "a failed subject denies",
			verifiers: []string{"notation"},
			root: func() *vouch.Node {
				r := subject("app", signed())
				r.Outcome, r.Reason = vouch.Failed, "schema: not JSON"
				return r
			}(),
			want:   vouch.Denied,
			reason: []string{"subject " + imageType + " " + short("app") + " failed: schema: not JSON"},
		},
		{
			name:      "a signature on the index covers its manifests",
			verifiers: []string{"notation"},
			root:      index([]*vouch.Node{signed()}, manifest("amd64"), manifest("arm64")),
			want:      vouch.Allowed,
			reason:    []string{"1 of 1 referrer verified"},
		},
		{
			name:      "signatures on the manifests alone do not cover the index",
			verifiers: []string{"notation"},
			root: index(nil,
				manifest("amd64", referrer("s1", notationType, vouch.Passed, "ok")),
				manifest("arm64", referrer("s2", notationType, vouch.Passed, "ok"))),
			want:   vouch.Denied,
			reason: []string{"no verified referrer: found no referrers; for an image index only referrers of the index itself count"},
		},
		{
			name:      "a failed signature on a platform manifest denies the index",
			verifiers: []string{"notation"},
			root: index([]*vouch.Node{signed()},
				manifest("amd64"),
				manifest("arm64", referrer("s2", notationType, vouch.Failed, "notation: expired"))),
			want:   vouch.Denied,
			reason: []string{short("s2") + " (referrer of " + imageType + " " + short("arm64") + ") failed: notation: expired"},
		},
	}
	ref, err := vouch.ParseReference("127.0.0.1:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policy.Default(tt.verifiers).Decide(context.Background(), ref, tt.root)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			t.Logf("%s: %s", got.Verdict, got.Reason)
			if got.Verdict != tt.want {
				t.Errorf("verdict = %s, want %s (reason %q)", got.Verdict, tt.want, got.Reason)
			}
			if got.Mode != vouch.ModeEnforce {
				t.Errorf("mode = %q, want %q", got.Mode, vouch.ModeEnforce)
			}
			rest := got.Reason
			for _, want := range tt.reason {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("reason %q\ndoes not contain (in order) %q", got.Reason, want)
				}
				rest = rest[i+len(want):]
			}
		})
	}
}

func TestDefaultNilGraph(t *testing.T) {
	ref, err := vouch.ParseReference("app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Default([]string{"notation"}).Decide(context.Background(), ref, nil); err == nil {
		t.Fatal("Decide with no graph: want an error, got nil")
	}
	// Without verifiers the answer does not depend on the graph.
	d, err := policy.Default(nil).Decide(context.Background(), ref, nil)
	if err != nil || d.Verdict != vouch.Denied {
		t.Fatalf("Decide without verifiers = %+v, %v; want denied", d, err)
	}
}

func TestDefaultCopiesVerifiers(t *testing.T) {
	verifiers := []string{"notation"}
	p := policy.Default(verifiers)
	verifiers[0] = ""
	verifiers = verifiers[:0]
	d, err := p.Decide(context.Background(), vouch.Reference{}, subject("app"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(d.Reason, "configured verifiers: notation") {
		t.Errorf("reason %q: the policy should keep its own copy of the verifier names", d.Reason)
	}
}

func ExampleDefault() {
	root := &vouch.Node{
		Relation:  vouch.RelSubject,
		MediaType: "application/vnd.oci.image.manifest.v1+json",
		Digest:    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Referrers: []*vouch.Node{{
			Relation:     vouch.RelReferrer,
			ArtifactType: "application/spdx+json",
			Digest:       "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
			Outcome:      vouch.Skipped,
			Reason:       "no verifier handles artifact type application/spdx+json",
		}},
	}
	d, _ := policy.Default([]string{"notation"}).Decide(context.Background(), vouch.Reference{}, root)
	fmt.Println(d.Verdict)
	fmt.Println(d.Reason)
	// Output:
	// denied
	// no verified referrer: found 1 referrer: 1 skipped (no verifier handles artifact type application/spdx+json); configured verifiers: notation
}

func TestDefaultSettled(t *testing.T) {
	ref, err := vouch.ParseReference("127.0.0.1:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	pending := func(nodes ...*vouch.Node) func(*vouch.Node) bool {
		return func(n *vouch.Node) bool { return slices.Contains(nodes, n) }
	}
	good := func(seed string) *vouch.Node { return referrer(seed, notationType, vouch.Passed, "ok") }
	todo := func(seed, artifactType string) *vouch.Node { return referrer(seed, artifactType, "", "") }

	sig1, sig2 := todo("p1", notationType), todo("p2", notationType)
	sbom := todo("sbom", spdxType)
	nestedSig := todo("nested", notationType)
	sbomWithSig := referrer("sbom2", spdxType, vouch.Passed, "ok", nestedSig)
	tests := []struct {
		name    string
		root    *vouch.Node
		pending func(*vouch.Node) bool
		want    bool
	}{
		{"spare signatures beside a passed one", subject("a", good("g"), sig1, sig2), pending(sig1, sig2), true},
		{"no signature passed yet", subject("a", sig1, sig2), pending(sig1, sig2), false},
		{"a pending SBOM could fail", subject("a", good("g"), sig1, sbom), pending(sig1, sbom), false},
		{"a pending nested signature with no passed sibling could fail", subject("a", good("g"), sbomWithSig), pending(nestedSig), false},
		{"a pending bundle may be a failing attestation", subject("a", good("g"), todo("b", vouch.SigstoreBundleType)), func(n *vouch.Node) bool { return n.ArtifactType == vouch.SigstoreBundleType }, false},
		{"a failed SBOM already denies", subject("a", good("g"), referrer("f", spdxType, vouch.Failed, "bad"), sig1), pending(sig1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := policy.Default([]string{"notation"}).(vouch.Settler)
			if !ok {
				t.Fatal("the default policy is not a vouch.Settler")
			}
			if got := s.Settled(context.Background(), ref, tt.root, tt.pending); got != tt.want {
				t.Fatalf("Settled = %v, want %v", got, tt.want)
			}
		})
	}
}
