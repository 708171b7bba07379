package render_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
)

const (
	imageType    = "application/vnd.oci.image.manifest.v1+json"
	indexType    = "application/vnd.oci.image.index.v1+json"
	notationType = "application/vnd.cncf.notary.signature"
	cosignType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	spdxType     = "application/spdx+json"
	sarifType    = "application/sarif+json"
	// oddType has a quote and a backslash, which DOT must escape.
	oddType = `application/vnd.example"quoted\back`
)

// d is the digest of seed; short is its short form, as the renderers print it.
func d(seed string) digest.Digest { return digest.FromString(seed) }
func short(seed string) string    { return "sha256:" + d(seed).Encoded()[:12] }

func node(rel vouch.Relation, seed, artifactType string, outcome vouch.Outcome, reason string, referrers ...*vouch.Node) *vouch.Node {
	n := &vouch.Node{
		Relation: rel, MediaType: imageType, ArtifactType: artifactType,
		Digest: d(seed), Size: 512, Outcome: outcome, Reason: reason, Referrers: referrers,
	}
	if rel == vouch.RelReferrer {
		n.Source = vouch.SourceReferrersAPI
	}
	return n
}

// signedImage is a subject with a signature, an SBOM with its own signature
// and two verifier results, a skipped vulnerability report and a cosign
// signature (found by its tag) that could not be checked.
func signedImage() *vouch.Node {
	sbom := node(vouch.RelReferrer, "sbom", spdxType, vouch.Passed, "sbom-license: no disallowed license",
		node(vouch.RelReferrer, "sbom-sig", notationType, vouch.Passed, "notation: signed by CN=sbom-bot"))
	sbom.Results = []vouch.Result{
		{Verifier: "sbom-license", Outcome: vouch.Passed, Reason: "no disallowed license"},
		{Verifier: "sbom-age", Outcome: vouch.Passed, Reason: "generated 2 days ago"},
	}
	cosign := node(vouch.RelReferrer, "cosign-sig", cosignType, vouch.Errored, "cosign: fetch signature: connection reset")
	cosign.Source = vouch.SourceCosignTag
	return node(vouch.RelSubject, "app-v1", "", "", "",
		node(vouch.RelReferrer, "sig", notationType, vouch.Passed, "notation: signed by CN=release"),
		sbom,
		node(vouch.RelReferrer, "sarif", sarifType, vouch.Skipped, "no verifier handles artifact type application/sarif+json"),
		cosign,
	)
}

// multiArch is an index with two platform manifests, a signature on the
// index, a failed signature on one manifest, and an artifact whose type
// holds a quote and a backslash.
func multiArch() *vouch.Node {
	root := node(vouch.RelSubject, "index", "", "", "",
		node(vouch.RelReferrer, "index-sig", notationType, vouch.Passed, "notation: signed by CN=release"),
		node(vouch.RelReferrer, "odd", oddType, vouch.Skipped, `no verifier handles artifact type application/vnd.example"quoted\back`),
	)
	root.MediaType = indexType
	root.Manifests = []*vouch.Node{
		node(vouch.RelManifest, "amd64", "", "", "",
			node(vouch.RelReferrer, "amd64-sig", notationType, vouch.Failed, "notation: signature does not match the subject")),
		node(vouch.RelManifest, "arm64", "", "", ""),
	}
	return root
}

func sampleReports() *vouch.Reports {
	return vouch.Summarize([]*vouch.Report{
		{
			Subject:   "127.0.0.1:5000/app:v1",
			Reference: "127.0.0.1:5000/app:v1@" + d("app-v1").String(),
			Verdict:   vouch.Allowed,
			Reason:    "1 of 4 referrers verified: " + notationType + " " + short("sig"),
			Mode:      "enforce",
			Root:      signedImage(),
		},
		{
			Subject:   "127.0.0.1:5000/multi:v2",
			Reference: "127.0.0.1:5000/multi:v2@" + d("index").String(),
			Verdict:   vouch.Denied,
			Reason:    notationType + " " + short("amd64-sig") + " failed: notation: signature does not match the subject",
			Mode:      "enforce",
			Root:      multiArch(),
		},
	})
}

// wide is a subject with n signatures.
func wide(n int) *vouch.Node {
	root := node(vouch.RelSubject, "wide", "", "", "")
	for i := range n {
		root.Referrers = append(root.Referrers,
			node(vouch.RelReferrer, fmt.Sprintf("sig-%d", i), notationType, vouch.Passed, "ok"))
	}
	return root
}

// walkOrder lists the short digest and depth of every node, parents first,
// manifests before referrers: the order the tree writers print.
func walkOrder(root *vouch.Node) []string {
	var out []string
	root.Walk(func(n *vouch.Node, depth int) {
		out = append(out, fmt.Sprintf("%d %s", depth, "sha256:"+n.Digest.Encoded()[:12]))
	})
	return out
}

// treeOrder reads lines of a tree back as "depth shortdigest", taking the
// depth from the width of the connector prefix (4 columns per level).
func treeOrder(t *testing.T, lines []string, indent string, ascii bool) []string {
	t.Helper()
	connectors := []string{"├── ", "└── ", "│   ", "    "}
	if ascii {
		connectors = []string{"|-- ", `\-- `, "|   ", "    "}
	}
	var out []string
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, indent)
		if !ok {
			t.Fatalf("tree line %q does not start with indent %q", line, indent)
		}
		depth := 0
	prefix:
		for {
			for _, c := range connectors {
				if strings.HasPrefix(rest, c) {
					rest, depth = rest[len(c):], depth+1
					continue prefix
				}
			}
			break
		}
		i := strings.Index(rest, "sha256:")
		if i < 0 {
			continue // a detail line, or a title
		}
		out = append(out, fmt.Sprintf("%d %s", depth, rest[i:i+len("sha256:")+12]))
	}
	return out
}
