package render_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

// dotGraph is what readDOT understands of a digraph: graph attributes, node
// statements and edges (reversed back when dir=back, so that From → To is
// the direction drawn).
type dotGraph struct {
	attrs map[string]string
	nodes map[string]map[string]string
	order []string // node IDs in order of declaration
	edges []dotEdge
}

type dotEdge struct{ from, to, label string }

// readDOT parses the subset of the DOT language DOT writes, failing on
// anything else: unbalanced braces, unterminated strings, stray tokens.
// Quoted strings are decoded as Graphviz shows them in labels: \" is ",
// \\ is \ and \n is a line break.
func readDOT(t *testing.T, src string) *dotGraph {
	t.Helper()
	toks := tokenizeDOT(t, src)
	g := &dotGraph{attrs: map[string]string{}, nodes: map[string]map[string]string{}}
	pos := 0
	next := func() string {
		if pos >= len(toks) {
			t.Fatalf("DOT ends early:\n%s", src)
		}
		pos++
		return toks[pos-1]
	}
	expect := func(want string) {
		if got := next(); got != want {
			t.Fatalf("DOT: got %q, want %q (token %d)\n%s", got, want, pos, src)
		}
	}
	attrList := func() map[string]string {
		attrs := map[string]string{}
		expect("[")
		for {
			k := next()
			if k == "]" {
				return attrs
			}
			if k == "," {
				continue
			}
			expect("=")
			attrs[k] = next()
		}
	}
	expect("digraph")
	expect("vouch")
	expect("{")
	for {
		id := next()
		switch {
		case id == "}":
			if pos != len(toks) {
				t.Fatalf("DOT: tokens after the closing brace: %q", toks[pos:])
			}
			return g
		case id == "node" || id == "edge":
			attrList()
		case toks[pos] == "=":
			next()
			g.attrs[id] = next()
		case toks[pos] == "->":
			next()
			to := next()
			attrs := attrList()
			e := dotEdge{from: id, to: to, label: attrs["label"]}
			if attrs["dir"] == "back" {
				e.from, e.to = e.to, e.from
			}
			g.edges = append(g.edges, e)
		default:
			if _, dup := g.nodes[id]; dup {
				t.Errorf("DOT: node %q declared twice", id)
			}
			g.nodes[id] = attrList()
			g.order = append(g.order, id)
		}
		expect(";")
	}
}

func tokenizeDOT(t *testing.T, src string) []string {
	t.Helper()
	var toks []string
	depth := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(src) {
					t.Fatalf("DOT: unterminated string:\n%s", src)
				}
				if src[i] == '"' {
					i++
					break
				}
				if src[i] == '\n' {
					t.Fatalf("DOT: raw newline in a string:\n%s", src)
				}
				if src[i] == '\\' && i+1 < len(src) {
					switch src[i+1] {
					case '"', '\\':
						b.WriteByte(src[i+1])
					case 'n':
						b.WriteByte('\n')
					default:
						t.Fatalf("DOT: unexpected escape \\%c", src[i+1])
					}
					i += 2
					continue
				}
				b.WriteByte(src[i])
				i++
			}
			toks = append(toks, b.String())
		case strings.HasPrefix(src[i:], "->"):
			toks, i = append(toks, "->"), i+2
		case strings.IndexByte("{}[];,=", c) >= 0:
			if c == '{' {
				depth++
			} else if c == '}' {
				depth--
			}
			if depth < 0 {
				t.Fatalf("DOT: unbalanced braces:\n%s", src)
			}
			toks, i = append(toks, string(c)), i+1
		case unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)):
			j := i
			for j < len(src) && (unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j])) || src[j] == '_' || src[j] == '.') {
				j++
			}
			toks, i = append(toks, src[i:j]), j
		default:
			t.Fatalf("DOT: unexpected character %q at %d:\n%s", c, i, src)
		}
	}
	if depth != 0 {
		t.Fatalf("DOT: unbalanced braces:\n%s", src)
	}
	return toks
}

func dot(t *testing.T, root *vouch.Node, title string) (string, *dotGraph) {
	t.Helper()
	var b bytes.Buffer
	if err := render.DOT(&b, root, title); err != nil {
		t.Fatalf("DOT: %v", err)
	}
	g := readDOT(t, b.String())
	for _, e := range g.edges {
		for _, end := range []string{e.from, e.to} {
			if _, ok := g.nodes[end]; !ok {
				t.Errorf("edge %s → %s: %s is not declared", e.from, e.to, end)
			}
		}
	}
	return b.String(), g
}

func TestDOTIndex(t *testing.T) {
	root := multiArch()
	src, g := dot(t, root, `multi "v2" \ arch`)
	if got := g.attrs["label"]; got != `multi "v2" \ arch` {
		t.Errorf("graph label = %q", got)
	}
	if g.attrs["rankdir"] != "BT" {
		t.Errorf("rankdir = %q, want BT", g.attrs["rankdir"])
	}
	if len(g.nodes) != root.Count() {
		t.Errorf("got %d nodes, want %d", len(g.nodes), root.Count())
	}
	id := func(seed string) string { return d(seed).String() }
	wantEdges := []dotEdge{
		{id("amd64-sig"), id("amd64"), "refers to"},
		{id("index"), id("amd64"), "manifest"},
		{id("index"), id("arm64"), "manifest"},
		{id("index-sig"), id("index"), "refers to"},
		{id("odd"), id("index"), "refers to"},
	}
	if fmt.Sprint(g.edges) != fmt.Sprint(wantEdges) {
		t.Errorf("edges\n got %v\nwant %v", g.edges, wantEdges)
	}

	// The label shows the quote and backslash literally.
	odd := g.nodes[id("odd")]
	if want := oddType + "\n" + short("odd"); odd["label"] != want {
		t.Errorf("label = %q, want %q", odd["label"], want)
	}
	if want := `label="application/vnd.example\"quoted\\back\nsha256:`; !strings.Contains(src, want) {
		t.Errorf("DOT lacks %s", want)
	}

	fills := map[string]string{
		"index": "", "amd64": "", "arm64": "",
		"amd64-sig": "salmon", "index-sig": "palegreen", "odd": "lightgrey",
	}
	for seed, want := range fills {
		if got := g.nodes[id(seed)]["fillcolor"]; got != want {
			t.Errorf("%s: fillcolor = %q, want %q", seed, got, want)
		}
	}
	if g.nodes[id("index")]["penwidth"] == "" {
		t.Error("the subject is not set off")
	}
	if want := indexType + "\n" + short("index"); g.nodes[id("index")]["label"] != want {
		t.Errorf("subject label = %q, want %q", g.nodes[id("index")]["label"], want)
	}
}

func TestDOTImage(t *testing.T) {
	root := signedImage()
	_, g := dot(t, root, "")
	if _, ok := g.attrs["label"]; ok {
		t.Error("graph has a label without a title")
	}
	id := func(seed string) string { return d(seed).String() }
	if got := g.nodes[id("cosign-sig")]["fillcolor"]; got != "orange" {
		t.Errorf("errored node fill = %q, want orange", got)
	}
	if got := g.nodes[id("sbom")]["label"]; got != spdxType+"\n"+short("sbom") {
		t.Errorf("SBOM label = %q", got)
	}
	want := map[dotEdge]bool{
		{id("sig"), id("app-v1"), "refers to"}:                      true,
		{id("sbom"), id("app-v1"), "refers to"}:                     true,
		{id("sbom-sig"), id("sbom"), "refers to"}:                   true,
		{id("sarif"), id("app-v1"), "refers to"}:                    true,
		{id("cosign-sig"), id("app-v1"), "refers to\n(cosign tag)"}: true,
	}
	if len(g.edges) != len(want) {
		t.Errorf("got %d edges, want %d: %v", len(g.edges), len(want), g.edges)
	}
	for _, e := range g.edges {
		if !want[e] {
			t.Errorf("unexpected edge %v", e)
		}
	}
}

func TestDOTDedupe(t *testing.T) {
	// The same signature listed twice (say by the referrers API and a
	// cosign tag), once failed; and the same manifest twice in the index.
	root := multiArch()
	root.Referrers = append(root.Referrers,
		node(vouch.RelReferrer, "index-sig", notationType, vouch.Failed, "notation: revoked"))
	root.Manifests = append(root.Manifests, node(vouch.RelManifest, "arm64", "", "", ""))
	_, g := dot(t, root, "")
	if len(g.nodes) != multiArch().Count() {
		t.Errorf("got %d nodes, want %d", len(g.nodes), multiArch().Count())
	}
	if len(g.edges) != 5 {
		t.Errorf("got %d edges, want 5: %v", len(g.edges), g.edges)
	}
	sig := g.nodes[d("index-sig").String()]
	if sig["fillcolor"] != "salmon" || sig["tooltip"] != "notation: revoked" {
		t.Errorf("a node seen passed and failed shows %q, %q; want the failed one", sig["fillcolor"], sig["tooltip"])
	}
}

func TestDOTNoDigest(t *testing.T) {
	root := node(vouch.RelSubject, "app", "", "", "")
	a := node(vouch.RelReferrer, "x", notationType, vouch.Passed, "")
	b := node(vouch.RelReferrer, "y", notationType, vouch.Passed, "")
	a.Digest, b.Digest = "", ""
	root.Referrers = []*vouch.Node{a, b}
	_, g := dot(t, root, "")
	if len(g.nodes) != 3 || len(g.edges) != 2 {
		t.Errorf("nodes without digests: got %d nodes and %d edges, want 3 and 2", len(g.nodes), len(g.edges))
	}
}

func TestDOTCycle(t *testing.T) {
	root := node(vouch.RelSubject, "a", "", "", "")
	root.Referrers = []*vouch.Node{node(vouch.RelReferrer, "b", notationType, vouch.Passed, "ok", root)}
	_, g := dot(t, root, "")
	if len(g.nodes) != 2 || len(g.edges) != 2 {
		t.Errorf("cycle: got %d nodes and %d edges, want 2 and 2", len(g.nodes), len(g.edges))
	}
}

func TestDOTManyReferrers(t *testing.T) {
	root := wide(70)
	_, g := dot(t, root, "r/wide:v1")
	if len(g.nodes) != 71 || len(g.edges) != 70 {
		t.Errorf("got %d nodes and %d edges, want 71 and 70", len(g.nodes), len(g.edges))
	}
	for _, r := range root.Referrers {
		if _, ok := g.nodes[r.Digest.String()]; !ok {
			t.Errorf("referrer %s missing", r.Digest)
		}
	}
}

// TestDOTGraphviz hands the output to Graphviz. hack/testbed.sh installs
// it, so under hack/test.sh (VOUCH_TESTBED_BIN set) a missing dot fails the
// test; elsewhere, on a machine without Graphviz, the test skips.
func TestDOTGraphviz(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		if os.Getenv("VOUCH_TESTBED_BIN") != "" {
			t.Fatal("dot (Graphviz) is not on PATH: run hack/testbed.sh, which installs Debian's graphviz")
		}
		t.Skip("dot (Graphviz) is not on PATH; hack/testbed.sh installs it")
	}
	nasty := multiArch()
	nasty.Referrers = append(nasty.Referrers,
		node(vouch.RelReferrer, "trail", `ends in a backslash\`, vouch.Errored, "line\none \x1b[31m \"quoted\" \\"),
		node(vouch.RelReferrer, "unicode", "application/vnd.ünïcödé+json", vouch.Skipped, "\u202e"))
	for name, root := range map[string]*vouch.Node{"image": signedImage(), "index": nasty, "wide": wide(70)} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.DOT(&b, root, `title "with" \ and `+"\nnewline"); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), "dot", "-Tpng", "-o", "/dev/null")
			cmd.Stdin = &b
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("dot -Tpng: %v\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "syntax error") {
				t.Errorf("dot -Tpng: %s", stderr.String())
			}
		})
	}
}

// FuzzDOTLabel checks that any artifact type gives parseable DOT whose label
// reads back as the type on one line.
func FuzzDOTLabel(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, `\"`, `a\nb`, "a\nb", "\x00\x1b[0m", `\N\G\L`, "\xff\xfe", "}", "x\" ] ; } digraph {"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, artifactType string) {
		root := node(vouch.RelSubject, "app", "", "", "",
			node(vouch.RelReferrer, "x", artifactType, vouch.Failed, artifactType))
		_, g := dot(t, root, artifactType)
		label := g.nodes[d("x").String()]["label"]
		typ, digest, ok := strings.Cut(label, "\n")
		if !ok || digest != short("x") {
			t.Fatalf("label %q: want the type, a line break, then the short digest", label)
		}
		if strings.ContainsFunc(typ, unicode.IsControl) {
			t.Errorf("label %q keeps control characters", typ)
		}
		plain := utf8.ValidString(artifactType) && !strings.ContainsFunc(artifactType, func(r rune) bool {
			return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
		})
		if artifactType != "" && plain && typ != artifactType {
			t.Errorf("label type = %q, want %q", typ, artifactType)
		}
	})
}
