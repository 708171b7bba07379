// Package render writes what the vouch CLI prints: report trees as text
// (Text) or JSON (JSON), and artifact graphs as a tree (Tree), JSON
// (GraphJSON) or Graphviz DOT (DOT).
//
// Strings in a report come partly from outside (artifact types from fetched
// manifests, reasons quoting remote content), so the text writers escape
// control and bidirectional-override characters instead of passing them to
// a terminal.
package render

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vouch-project/vouch"
)

// TextOptions control Text and Tree. The zero value writes Unicode marks and
// box-drawing connectors, without colour.
type TextOptions struct {
	// ASCII writes [ok] [FAIL] [skip] [ERR] and |-- \-- instead of Unicode
	// marks and box drawing. Optional; default false.
	ASCII bool
	// Color adds ANSI colours: green for passed and allowed, red for failed
	// and denied, yellow for errors and undecided. Optional; default false.
	Color bool
	// Title is the first line of Tree, usually the subject reference.
	// Optional; default the root's media type and digest. Text ignores it.
	Title string
}

// ANSI colour sequences.
const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// style holds the marks and connectors of one TextOptions.
type style struct {
	opts                       TextOptions
	branch, last, pipe, spaces string
}

func newStyle(opts TextOptions) style {
	if opts.ASCII {
		return style{opts: opts, branch: "|-- ", last: `\-- `, pipe: "|   ", spaces: "    "}
	}
	return style{opts: opts, branch: "├── ", last: "└── ", pipe: "│   ", spaces: "    "}
}

// paint wraps s in colour when colours are on.
func (s style) paint(color, text string) string {
	if !s.opts.Color || color == "" {
		return text
	}
	return color + text + reset
}

// mark is the (coloured) mark of an outcome; empty for an unset outcome.
func (s style) mark(o vouch.Outcome) string {
	var unicodeMark, asciiMark, color string
	switch o {
	case "":
		return ""
	case vouch.Passed:
		unicodeMark, asciiMark, color = "✓", "[ok]", green
	case vouch.Failed:
		unicodeMark, asciiMark, color = "✗", "[FAIL]", red
	case vouch.Skipped:
		unicodeMark, asciiMark = "–", "[skip]"
	case vouch.Errored:
		unicodeMark, asciiMark, color = "!", "[ERR]", yellow
	default:
		unicodeMark, asciiMark, color = "?", "[?]", yellow
	}
	if s.opts.ASCII {
		return s.paint(color, asciiMark)
	}
	return s.paint(color, unicodeMark)
}

// verdict is the (coloured) mark and word of a verdict.
func (s style) verdict(v vouch.Verdict) string {
	var unicodeMark, asciiMark, color string
	switch v {
	case vouch.Allowed:
		unicodeMark, asciiMark, color = "✓", "[ok]", green
	case vouch.Denied:
		unicodeMark, asciiMark, color = "✗", "[FAIL]", red
	default:
		unicodeMark, asciiMark, color = "?", "[??]", yellow
	}
	word := strings.ToUpper(clean(string(v)))
	if word == "" {
		word = "NO VERDICT"
	}
	m := unicodeMark
	if s.opts.ASCII {
		m = asciiMark
	}
	return s.paint(bold+color, m+" "+word)
}

// children lists a node's platform manifests, then its referrers.
func children(n *vouch.Node) []*vouch.Node {
	kids := make([]*vouch.Node, 0, len(n.Manifests)+len(n.Referrers))
	kids = append(kids, n.Manifests...)
	kids = append(kids, n.Referrers...)
	return kids
}

// writeTree writes the tree below root, one line per node from line, with
// the lines from details (if any) under each node. It stops at cycles, which
// a tree decoded from JSON cannot have but a hand-built one might.
func (s style) writeTree(b *strings.Builder, root *vouch.Node, indent string,
	line func(*vouch.Node) string, details func(*vouch.Node) []string) {
	onPath := map[*vouch.Node]bool{root: true}
	var walk func(n *vouch.Node, prefix string)
	walk = func(n *vouch.Node, prefix string) {
		kids := children(n)
		for i, c := range kids {
			connector, next := s.branch, s.pipe
			if i == len(kids)-1 {
				connector, next = s.last, s.spaces
			}
			if c == nil || onPath[c] {
				b.WriteString(prefix + connector + "(cycle)\n")
				continue
			}
			b.WriteString(prefix + connector + line(c) + "\n")
			s.writeDetails(b, c, prefix+next, details)
			onPath[c] = true
			walk(c, prefix+next)
			delete(onPath, c)
		}
	}
	b.WriteString(indent + line(root) + "\n")
	s.writeDetails(b, root, indent, details)
	walk(root, indent)
}

// writeDetails writes the detail lines of n, keeping the vertical bar that
// leads to n's children.
func (s style) writeDetails(b *strings.Builder, n *vouch.Node, prefix string, details func(*vouch.Node) []string) {
	if details == nil {
		return
	}
	bar := s.spaces
	if len(n.Manifests)+len(n.Referrers) > 0 {
		bar = s.pipe
	}
	for _, d := range details(n) {
		b.WriteString(prefix + bar + d + "\n")
	}
}

// displayType is n.DisplayType(), or "(unknown type)".
func displayType(n *vouch.Node) string {
	if t := n.DisplayType(); t != "" {
		return t
	}
	return "(unknown type)"
}

// manifestLabel marks a platform manifest of an index, with its platform.
func manifestLabel(n *vouch.Node) string {
	if p := n.Platform; p != nil {
		s := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			s += "/" + p.Variant
		}
		return clean("[manifest " + s + "]")
	}
	return "[manifest]"
}

// sourceNote names how a referrer was found, when not by the referrers API.
func sourceNote(src vouch.Source) string {
	switch src {
	case "", vouch.SourceReferrersAPI:
		return ""
	case vouch.SourceCosignTag:
		return "(cosign tag)"
	case vouch.SourceTagSchema:
		return "(tag schema)"
	case vouch.SourceIndexAttestation:
		return "(BuildKit attestation in the index)"
	default:
		return "(" + string(src) + ")"
	}
}

// clean makes s safe for a terminal, on one line: white space becomes a
// space, invalid UTF-8 becomes U+FFFD, and control and bidirectional
// formatting characters are written as Go escapes.
func clean(s string) string {
	safe := true
	for _, r := range s {
		if r < ' ' || r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
