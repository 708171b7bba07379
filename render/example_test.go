package render_test

import (
	"os"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

// exampleGraph is an image with a verified signature and an SBOM that no
// verifier handles.
func exampleGraph() *vouch.Node {
	dg := func(hex string) digest.Digest { return digest.Digest("sha256:" + strings.Repeat(hex, 64)) }
	return &vouch.Node{
		Relation: vouch.RelSubject, MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: dg("a"),
		Referrers: []*vouch.Node{
			{
				Relation: vouch.RelReferrer, Source: vouch.SourceReferrersAPI,
				ArtifactType: "application/vnd.cncf.notary.signature", Digest: dg("1"),
				Outcome: vouch.Passed, Reason: "notation: signed by CN=release",
			},
			{
				Relation: vouch.RelReferrer, Source: vouch.SourceCosignTag,
				ArtifactType: "application/spdx+json", Digest: dg("2"),
				Outcome: vouch.Skipped, Reason: "no verifier handles artifact type application/spdx+json",
			},
		},
	}
}

func ExampleText() {
	reports := vouch.Summarize([]*vouch.Report{{
		Subject:   "127.0.0.1:5000/app:v1",
		Reference: "127.0.0.1:5000/app:v1@sha256:" + strings.Repeat("a", 64),
		Verdict:   vouch.Allowed,
		Reason:    "1 of 2 referrers verified",
		Root:      exampleGraph(),
	}})
	_ = render.Text(os.Stdout, reports, render.TextOptions{ASCII: true})
	// Output:
	// [ok] ALLOWED  127.0.0.1:5000/app:v1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
	//   1 of 2 referrers verified
	//   application/vnd.oci.image.manifest.v1+json sha256:aaaaaaaaaaaa
	//   |-- [ok] application/vnd.cncf.notary.signature sha256:111111111111  notation: signed by CN=release
	//   \-- [skip] application/spdx+json sha256:222222222222 (cosign tag)  no verifier handles artifact type application/spdx+json
	//
	// 1 subject: 1 allowed
}

func ExampleTree() {
	_ = render.Tree(os.Stdout, exampleGraph(), render.TextOptions{Title: "127.0.0.1:5000/app:v1"})
	// Output:
	// 127.0.0.1:5000/app:v1
	// ├── application/vnd.cncf.notary.signature sha256:1111111111111111111111111111111111111111111111111111111111111111
	// └── application/spdx+json sha256:2222222222222222222222222222222222222222222222222222222222222222 (cosign tag)
}

func ExampleDOT() {
	_ = render.DOT(os.Stdout, exampleGraph(), "127.0.0.1:5000/app:v1")
	// Output:
	// digraph vouch {
	// 	rankdir=BT;
	// 	label="127.0.0.1:5000/app:v1";
	// 	labelloc=t;
	// 	node [shape=box, fontname="Helvetica"];
	// 	edge [fontname="Helvetica", fontsize=10];
	// 	"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" [label="application/vnd.oci.image.manifest.v1+json\nsha256:aaaaaaaaaaaa", penwidth=2];
	// 	"sha256:1111111111111111111111111111111111111111111111111111111111111111" [label="application/vnd.cncf.notary.signature\nsha256:111111111111", style=filled, fillcolor=palegreen, tooltip="notation: signed by CN=release"];
	// 	"sha256:2222222222222222222222222222222222222222222222222222222222222222" [label="application/spdx+json\nsha256:222222222222", style=filled, fillcolor=lightgrey, tooltip="no verifier handles artifact type application/spdx+json"];
	// 	"sha256:1111111111111111111111111111111111111111111111111111111111111111" -> "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" [label="refers to"];
	// 	"sha256:2222222222222222222222222222222222222222222222222222222222222222" -> "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" [label="refers to\n(cosign tag)"];
	// }
}
