package render

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vouch-project/vouch"
)

// Text writes reports as `vouch verify -o text` prints them: per subject a
// line with the verdict and the reference, the reason, and the report tree
// with a mark per outcome; then a line counting the verdicts.
func Text(w io.Writer, reports *vouch.Reports, opts TextOptions) error {
	if reports == nil {
		return errors.New("render: no reports")
	}
	s := newStyle(opts)
	var b strings.Builder
	counts := map[vouch.Verdict]int{}
	n := 0
	for _, r := range reports.Subjects {
		if r == nil {
			continue
		}
		if n > 0 {
			b.WriteString("\n")
		}
		n++
		counts[r.Verdict]++
		s.report(&b, r)
	}
	if n > 0 {
		b.WriteString("\n")
	}
	b.WriteString(summary(n, counts))
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// report writes one subject: header, reason, tree.
func (s style) report(b *strings.Builder, r *vouch.Report) {
	ref := r.Reference
	if ref == "" {
		ref = r.Subject
	}
	header := s.verdict(r.Verdict) + "  " + clean(ref)
	if r.Mode != "" && r.Mode != vouch.ModeEnforce {
		header += "  (mode " + clean(string(r.Mode)) + ")"
	}
	b.WriteString(header + "\n")
	if r.Reason != "" {
		b.WriteString("  " + clean(r.Reason) + "\n")
	}
	// What would satisfy each unmet requirement; the rest of each
	// explanation (what was found) is in the reason and the tree.
	seen := map[string]bool{}
	for _, e := range r.Explanations {
		if e.Wanted == "" || seen[e.Wanted] {
			continue
		}
		seen[e.Wanted] = true
		b.WriteString("  wanted: " + clean(e.Wanted) + "\n")
	}
	if r.Root != nil {
		s.writeTree(b, r.Root, "  ", s.textLine, s.results)
	}
}

// textLine is one node of Text: mark, type, short digest, source, reason.
func (s style) textLine(n *vouch.Node) string {
	parts := make([]string, 0, 6)
	if n.Relation == vouch.RelManifest {
		parts = append(parts, manifestLabel(n))
	}
	if m := s.mark(n.Outcome); m != "" {
		parts = append(parts, m)
	}
	parts = append(parts, clean(displayType(n)), clean(vouch.ShortDigest(n.Digest)))
	if note := sourceNote(n.Source); note != "" {
		parts = append(parts, clean(note))
	}
	line := strings.Join(parts, " ")
	if n.Reason != "" {
		line += "  " + clean(n.Reason)
	}
	return line
}

// results lists each verifier's finding when a node has more than one.
func (s style) results(n *vouch.Node) []string {
	if len(n.Results) < 2 {
		return nil
	}
	lines := make([]string, 0, len(n.Results))
	for _, r := range n.Results {
		m := s.mark(r.Outcome)
		if m == "" {
			m = "·"
			if s.opts.ASCII {
				m = "-"
			}
		}
		lines = append(lines, "  "+m+" "+clean(r.Verifier)+": "+clean(r.Reason))
	}
	return lines
}

// summary counts subjects by verdict: "2 subjects: 1 allowed, 1 denied".
func summary(n int, counts map[vouch.Verdict]int) string {
	noun := "subjects"
	if n == 1 {
		noun = "subject"
	}
	var parts []string
	known := 0
	for _, v := range []vouch.Verdict{vouch.Allowed, vouch.Denied, vouch.Undecided} {
		if c := counts[v]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, v))
			known += c
		}
	}
	if other := n - known; other > 0 {
		parts = append(parts, fmt.Sprintf("%d without a verdict", other))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s: %s", n, noun, strings.Join(parts, ", "))
}
