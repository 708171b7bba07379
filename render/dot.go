package render

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/vouch-project/vouch"
)

// DOT writes the artifact graph below root as a Graphviz digraph for
// `vouch referrers -o dot` (render it with `dot -Tsvg`). Each artifact is
// one box, labelled with its type and short digest and filled by outcome;
// arrows run from a referrer to its subject ("refers to") and from an index
// to its platform manifests ("manifest"). The graph is laid out bottom to
// top, so the subject is drawn at the top; manifest arrows are therefore
// written manifest -> index with dir=back, which draws them from the index.
// An artifact that appears twice is drawn once, filled by its worst outcome.
// title labels the graph; optional.
//
// The DOT language: https://graphviz.org/doc/info/lang.html
func DOT(w io.Writer, root *vouch.Node, title string) error {
	if root == nil {
		return errors.New("render: no graph")
	}
	g := &dotGraph{ids: map[string]int{}, anon: map[*vouch.Node]int{}, edges: map[dotEdge]bool{}}
	g.add(root, map[*vouch.Node]bool{})
	g.nodes[0].root = true

	var b strings.Builder
	b.WriteString("digraph vouch {\n")
	// Referrer arrows point up at their subjects, so the subject is at the
	// top and what vouches for it below.
	b.WriteString("\trankdir=BT;\n")
	if title != "" {
		fmt.Fprintf(&b, "\tlabel=%s;\n\tlabelloc=t;\n", dotQuote(title))
	}
	b.WriteString("\tnode [shape=box, fontname=\"Helvetica\"];\n")
	b.WriteString("\tedge [fontname=\"Helvetica\", fontsize=10];\n")
	for _, n := range g.nodes {
		label := strings.ReplaceAll(displayType(n.node), "\n", " ") + "\n" + vouch.ShortDigest(n.node.Digest)
		if n.node.Platform != nil {
			label = manifestLabel(n.node) + "\n" + label
		}
		attrs := []string{"label=" + dotQuote(label)}
		if fill := fillColor(n.node.Outcome); fill != "" {
			attrs = append(attrs, "style=filled", "fillcolor="+fill)
		}
		if n.node.Reason != "" {
			attrs = append(attrs, "tooltip="+dotQuote(n.node.Reason))
		}
		if n.root {
			attrs = append(attrs, "penwidth=2")
		}
		fmt.Fprintf(&b, "\t%s [%s];\n", n.id, strings.Join(attrs, ", "))
	}
	for _, e := range g.edgeList {
		if e.back {
			fmt.Fprintf(&b, "\t%s -> %s [label=%s, dir=back];\n", e.to, e.from, dotQuote(e.label))
		} else {
			fmt.Fprintf(&b, "\t%s -> %s [label=%s];\n", e.from, e.to, dotQuote(e.label))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotGraph collects the nodes and edges of a DOT graph, each once.
type dotGraph struct {
	nodes    []*dotNode
	ids      map[string]int      // digest → index in nodes
	anon     map[*vouch.Node]int // node without a digest → index in nodes
	edges    map[dotEdge]bool    // edges written
	edgeList []dotEdge           // in order of discovery
}

type dotNode struct {
	id   string      // quoted DOT ID
	node *vouch.Node // the node with the worst outcome among those with this digest
	root bool        // the subject of the graph
}

// dotEdge is an arrow from one node to another. A back edge is written
// reversed with dir=back: drawn the same, but ranked the other way round.
type dotEdge struct {
	from, to, label string
	back            bool
}

// add records n and the nodes below it, returning n's DOT ID.
func (g *dotGraph) add(n *vouch.Node, onPath map[*vouch.Node]bool) string {
	id := g.node(n)
	if onPath[n] {
		return id
	}
	onPath[n] = true
	defer delete(onPath, n)
	for _, m := range n.Manifests {
		if m != nil {
			g.edge(dotEdge{from: id, to: g.add(m, onPath), label: "manifest", back: true})
		}
	}
	for _, r := range n.Referrers {
		if r != nil {
			label := "refers to"
			if note := sourceNote(r.Source); note != "" {
				label += "\n" + note
			}
			g.edge(dotEdge{from: g.add(r, onPath), to: id, label: label})
		}
	}
	return id
}

// node returns n's DOT ID, declaring n the first time its digest is seen.
func (g *dotGraph) node(n *vouch.Node) string {
	if n.Digest != "" {
		if i, ok := g.ids[string(n.Digest)]; ok {
			if worse(n.Outcome, g.nodes[i].node.Outcome) {
				g.nodes[i].node = n
			}
			return g.nodes[i].id
		}
		g.ids[string(n.Digest)] = len(g.nodes)
		g.nodes = append(g.nodes, &dotNode{id: dotQuote(string(n.Digest)), node: n})
		return g.nodes[len(g.nodes)-1].id
	}
	if i, ok := g.anon[n]; ok {
		return g.nodes[i].id
	}
	g.anon[n] = len(g.nodes)
	// Digests contain a colon, so "node-N" cannot collide with one.
	g.nodes = append(g.nodes, &dotNode{id: dotQuote(fmt.Sprintf("node-%d", len(g.nodes))), node: n})
	return g.nodes[len(g.nodes)-1].id
}

func (g *dotGraph) edge(e dotEdge) {
	if !g.edges[e] {
		g.edges[e] = true
		g.edgeList = append(g.edgeList, e)
	}
}

// worse reports whether outcome a ranks above b: failed, error, passed,
// skipped, unset.
func worse(a, b vouch.Outcome) bool {
	rank := func(o vouch.Outcome) int {
		switch o {
		case vouch.Failed:
			return 4
		case vouch.Errored:
			return 3
		case vouch.Passed:
			return 2
		case vouch.Skipped:
			return 1
		}
		return 0
	}
	return rank(a) > rank(b)
}

// fillColor is the fill colour of an outcome; empty for none.
func fillColor(o vouch.Outcome) string {
	switch o {
	case vouch.Passed:
		return "palegreen"
	case vouch.Failed:
		return "salmon"
	case vouch.Errored:
		return "orange"
	case vouch.Skipped:
		return "lightgrey"
	}
	return ""
}

// dotQuote returns s as a DOT double-quoted string. Quotes and backslashes
// are escaped so that the label shows them literally; a newline becomes the
// label line break \n; other control characters become spaces.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
