package render

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
)

// AuditText writes an audit as `vouch audit -o text` prints it: the
// workloads grouped by namespace, under each one line per container (the
// verdict, the container, the image and the digest verified) with the
// reason below it; then a line counting the verdicts.
func AuditText(w io.Writer, r *audit.Report, opts TextOptions) error {
	if r == nil {
		return errors.New("render: no audit report")
	}
	s := newStyle(opts)
	var b strings.Builder
	namespace := ""
	counts := map[vouch.Verdict]int{}
	containers := 0
	for i, wr := range r.Workloads {
		if i == 0 || wr.Namespace != namespace {
			if i > 0 {
				b.WriteString("\n")
			}
			namespace = wr.Namespace
			b.WriteString(s.paint(bold, "namespace "+clean(namespace)) + "\n")
		}
		line := "  " + clean(wr.Kind) + " " + clean(wr.Name)
		if wr.Pods > 0 {
			line += fmt.Sprintf("  (%d %s)", wr.Pods, plural(wr.Pods, "pod", "pods"))
		}
		if wr.Source != "" {
			line += "  [" + clean(wr.Source) + "]"
		}
		b.WriteString(line + "\n")
		if len(wr.Images) == 0 {
			b.WriteString("    no containers\n")
		}
		for _, ir := range wr.Images {
			containers++
			counts[ir.Verdict]++
			line := "    " + s.verdict(ir.Verdict) + "  " + clean(ir.Container) + "  " + clean(ir.Image)
			if ir.Digest != "" {
				line += "  " + clean(vouch.ShortDigest(ir.Digest))
			}
			if ir.Mode != "" && ir.Mode != vouch.ModeEnforce {
				line += "  (mode " + clean(string(ir.Mode)) + ")"
			}
			b.WriteString(line + "\n")
			if ir.Reason != "" {
				b.WriteString("      " + clean(ir.Reason) + "\n")
			}
		}
	}
	if len(r.Workloads) > 0 {
		b.WriteString("\n")
	}
	var parts []string
	for _, v := range []vouch.Verdict{vouch.Allowed, vouch.Denied, vouch.Undecided} {
		if c := counts[v]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, v))
		}
	}
	line := fmt.Sprintf("%d %s, %d %s, %d %s verified",
		len(r.Workloads), plural(len(r.Workloads), "workload", "workloads"),
		containers, plural(containers, "container", "containers"),
		r.Verified, plural(r.Verified, "image", "images"))
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	b.WriteString(line + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// AuditJSON writes an audit as the indented JSON document `vouch audit -o
// json` prints; the struct tags of audit.Report define the format.
func AuditJSON(w io.Writer, r *audit.Report) error {
	if r == nil {
		return errors.New("render: no audit report")
	}
	return encode(w, r)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
