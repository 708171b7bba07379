package render_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

func tree(t *testing.T, root *vouch.Node, opts render.TextOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := render.Tree(&b, root, opts); err != nil {
		t.Fatalf("Tree: %v", err)
	}
	return b.String()
}

func TestTree(t *testing.T) {
	root := multiArch()
	out := tree(t, root, render.TextOptions{Title: "127.0.0.1:5000/multi:v2"})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "127.0.0.1:5000/multi:v2" {
		t.Errorf("first line = %q, want the title", lines[0])
	}
	for _, want := range []string{
		"├── [manifest] " + imageType + " " + d("amd64").String(),
		"│   └── " + notationType + " " + d("amd64-sig").String(),
		"├── [manifest] " + imageType + " " + d("arm64").String(),
		"├── " + notationType + " " + d("index-sig").String(),
		"└── " + oddType + " " + d("odd").String(),
	} {
		if !hasLine(out, want) {
			t.Errorf("tree has no line %q\n%s", want, out)
		}
	}
	// The graph only: no outcome marks, no reasons.
	for _, unwanted := range []string{"✓", "✗", "–", "notation:", "no verifier"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("tree shows %q:\n%s", unwanted, out)
		}
	}
	got := treeOrder(t, lines[1:], "", false)
	if want := walkOrder(root)[1:]; !equal(got, want) {
		t.Errorf("tree structure\n got %q\nwant %q", got, want)
	}
}

func TestTreeDefaultTitleASCII(t *testing.T) {
	root := signedImage()
	out := tree(t, root, render.TextOptions{ASCII: true})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if want := imageType + " " + d("app-v1").String(); lines[0] != want {
		t.Errorf("first line = %q, want %q", lines[0], want)
	}
	if want := `\-- ` + cosignType + " " + d("cosign-sig").String() + " (cosign tag)"; !hasLine(out, want) {
		t.Errorf("tree has no line %q\n%s", want, out)
	}
	if got, want := treeOrder(t, lines, "", true), walkOrder(root); !equal(got, want) {
		t.Errorf("tree structure\n got %q\nwant %q", got, want)
	}
}

func TestTreeManyReferrers(t *testing.T) {
	root := wide(70)
	out := tree(t, root, render.TextOptions{Title: "r/wide:v1"})
	for _, r := range root.Referrers {
		if !strings.Contains(out, r.Digest.String()+"\n") {
			t.Errorf("referrer %s missing", r.Digest)
		}
	}
	if n := strings.Count(out, "\n"); n != 71 {
		t.Errorf("got %d lines, want 71", n)
	}
}
