package render_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

func text(t *testing.T, reports *vouch.Reports, opts render.TextOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := render.Text(&b, reports, opts); err != nil {
		t.Fatalf("Text: %v", err)
	}
	return b.String()
}

// subjectBlocks splits Text output into its per-subject blocks and the
// summary line.
func subjectBlocks(t *testing.T, out string) (blocks [][]string, summary string) {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end in a newline:\n%s", out)
	}
	parts := strings.Split(strings.TrimSuffix(out, "\n"), "\n\n")
	for _, p := range parts[:len(parts)-1] {
		blocks = append(blocks, strings.Split(p, "\n"))
	}
	return blocks, parts[len(parts)-1]
}

func TestTextSubjects(t *testing.T) {
	reports := sampleReports()
	blocks, summary := subjectBlocks(t, text(t, reports, render.TextOptions{}))
	if len(blocks) != 2 {
		t.Fatalf("got %d subject blocks, want 2", len(blocks))
	}
	if want := "2 subjects: 1 allowed, 1 denied"; summary != want {
		t.Errorf("summary = %q, want %q", summary, want)
	}
	for i, block := range blocks {
		r := reports.Subjects[i]
		mark := map[vouch.Verdict]string{vouch.Allowed: "✓ ALLOWED", vouch.Denied: "✗ DENIED"}[r.Verdict]
		if want := mark + "  " + r.Reference; block[0] != want {
			t.Errorf("subject %d: header = %q, want %q", i, block[0], want)
		}
		if want := "  " + r.Reason; block[1] != want {
			t.Errorf("subject %d: reason line = %q, want %q", i, block[1], want)
		}
		// The rest is the tree, node for node in walk order.
		if got, want := treeOrder(t, block[2:], "  ", false), walkOrder(r.Root); !equal(got, want) {
			t.Errorf("subject %d: tree structure\n got %q\nwant %q\n%s", i, got, want, strings.Join(block, "\n"))
		}
	}
}

func TestTextNodeLines(t *testing.T) {
	out := text(t, sampleReports(), render.TextOptions{})
	for _, want := range []string{
		// The subject: media type and short digest, no mark.
		"  " + imageType + " " + short("app-v1"),
		"  " + indexType + " " + short("index"),
		// A passed signature: mark, type, short digest, reason.
		"  ├── ✓ " + notationType + " " + short("sig") + "  notation: signed by CN=release",
		// A node with two results lists them under it, beside the bar that
		// leads to its own signature.
		"  ├── ✓ " + spdxType + " " + short("sbom") + "  sbom-license: no disallowed license",
		"  │   │     ✓ sbom-license: no disallowed license",
		"  │   │     ✓ sbom-age: generated 2 days ago",
		"  │   └── ✓ " + notationType + " " + short("sbom-sig") + "  notation: signed by CN=sbom-bot",
		// Skipped, and an error found by cosign's tag.
		"  ├── – " + sarifType + " " + short("sarif") + "  no verifier handles artifact type application/sarif+json",
		"  └── ! " + cosignType + " " + short("cosign-sig") + " (cosign tag)  cosign: fetch signature: connection reset",
		// Platform manifests, the failed signature under one, and the
		// quote and backslash left as they are.
		"  ├── [manifest] " + imageType + " " + short("amd64"),
		"  │   └── ✗ " + notationType + " " + short("amd64-sig") + "  notation: signature does not match the subject",
		"  ├── [manifest] " + imageType + " " + short("arm64"),
		"  └── – " + oddType + " " + short("odd") + "  no verifier handles artifact type " + oddType,
	} {
		if !hasLine(out, want) {
			t.Errorf("output has no line\n%q\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("output has ANSI escapes without Color")
	}
}

func TestTextASCII(t *testing.T) {
	reports := sampleReports()
	out := text(t, reports, render.TextOptions{ASCII: true})
	for i, c := range []byte(out) {
		if c >= 0x80 {
			t.Fatalf("byte %d of the output is not ASCII: %q", i, out[max(0, i-20):min(len(out), i+20)])
		}
	}
	for _, want := range []string{
		"[ok] ALLOWED  127.0.0.1:5000/app:v1@",
		"  |-- [ok] " + notationType + " " + short("sig"),
		"  |   |     [ok] sbom-age: generated 2 days ago",
		"  |   \\-- [ok] " + notationType + " " + short("sbom-sig"),
		"  |-- [skip] " + sarifType,
		"  \\-- [ERR] " + cosignType,
		"[FAIL] DENIED  127.0.0.1:5000/multi:v2@",
		"  |   \\-- [FAIL] " + notationType + " " + short("amd64-sig"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ASCII output lacks %q\n%s", want, out)
		}
	}
	blocks, _ := subjectBlocks(t, out)
	for i, block := range blocks {
		if got, want := treeOrder(t, block[2:], "  ", true), walkOrder(reports.Subjects[i].Root); !equal(got, want) {
			t.Errorf("subject %d: ASCII tree structure\n got %q\nwant %q", i, got, want)
		}
	}
}

func TestTextColor(t *testing.T) {
	plain := text(t, sampleReports(), render.TextOptions{})
	colored := text(t, sampleReports(), render.TextOptions{Color: true})
	for _, want := range []string{
		"\x1b[32m✓\x1b[0m " + notationType,
		"\x1b[31m✗\x1b[0m " + notationType,
		"\x1b[33m!\x1b[0m " + cosignType,
		"\x1b[32m✓ ALLOWED\x1b[0m", "\x1b[31m✗ DENIED\x1b[0m",
	} {
		if !strings.Contains(colored, want) {
			t.Errorf("coloured output lacks %q", want)
		}
	}
	ansi := regexp.MustCompile(`\x1b\[[0-9;]*m`)
	if got := ansi.ReplaceAllString(colored, ""); got != plain {
		t.Errorf("coloured output without its colours differs from the plain output:\n%s\n---\n%s", got, plain)
	}
}

func TestTextEscapesTerminalControls(t *testing.T) {
	root := node(vouch.RelSubject, "app", "", "", "",
		node(vouch.RelReferrer, "evil", "application/x\x1b[2Jevil", vouch.Failed,
			"bad\nsignature \u202edeifirev\x07"))
	out := text(t, vouch.Summarize([]*vouch.Report{{
		Reference: "reg/app:v1\x1b]0;pwned\x07", Verdict: vouch.Denied, Reason: "line one\r\nline two", Root: root,
	}}), render.TextOptions{})
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
		t.Errorf("output passes control characters through: %q", out)
	}
	for _, want := range []string{
		"reg/app:v1\\u001b]0;pwned\\u0007",
		"  line one  line two\n",
		"application/x\\u001b[2Jevil " + short("evil") + "  bad signature \\u202edeifirev\\u0007\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTextManyReferrers(t *testing.T) {
	root := wide(70)
	out := text(t, vouch.Summarize([]*vouch.Report{{Reference: "r/wide:v1", Verdict: vouch.Allowed, Root: root}}), render.TextOptions{})
	if got := strings.Count(out, "├── ✓ ") + strings.Count(out, "└── ✓ "); got != 70 {
		t.Errorf("printed %d referrers, want 70", got)
	}
	if strings.Count(out, "└── ") != 1 {
		t.Error("want exactly one last-child connector")
	}
	for _, r := range root.Referrers {
		if !strings.Contains(out, "sha256:"+r.Digest.Encoded()[:12]) {
			t.Errorf("referrer %s missing", r.Digest)
		}
	}
}

func TestTextNoGraph(t *testing.T) {
	out := text(t, vouch.Summarize([]*vouch.Report{{
		Subject: "127.0.0.1:5000/gone:v1", Verdict: vouch.Undecided, Reason: "resolve: connection refused", Mode: "warn",
	}}), render.TextOptions{})
	want := "? UNDECIDED  127.0.0.1:5000/gone:v1  (mode warn)\n  resolve: connection refused\n\n1 subject: 1 undecided\n"
	if out != want {
		t.Errorf("got\n%q\nwant\n%q", out, want)
	}
}

func TestTextSummary(t *testing.T) {
	rep := func(v vouch.Verdict) *vouch.Report { return &vouch.Report{Reference: "r/a:1", Verdict: v} }
	tests := []struct {
		reports []*vouch.Report
		want    string
	}{
		{nil, "0 subjects"},
		{[]*vouch.Report{rep(vouch.Allowed)}, "1 subject: 1 allowed"},
		{[]*vouch.Report{rep(vouch.Denied), rep(vouch.Allowed), rep(vouch.Denied)}, "3 subjects: 1 allowed, 2 denied"},
		{[]*vouch.Report{rep(vouch.Undecided), rep(vouch.Allowed), rep(vouch.Denied)}, "3 subjects: 1 allowed, 1 denied, 1 undecided"},
		{[]*vouch.Report{rep(""), nil}, "1 subject: 1 without a verdict"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			out := text(t, &vouch.Reports{Version: vouch.ReportVersion, Subjects: tt.reports}, render.TextOptions{})
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if got := lines[len(lines)-1]; got != tt.want {
				t.Errorf("summary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTextCycle(t *testing.T) {
	root := node(vouch.RelSubject, "a", "", "", "")
	child := node(vouch.RelReferrer, "b", notationType, vouch.Passed, "ok", root)
	root.Referrers = []*vouch.Node{child}
	var b bytes.Buffer
	if err := render.Tree(&b, root, render.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "└── (cycle)") {
		t.Errorf("cycle not marked:\n%s", b.String())
	}
}

type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWritersReportErrors(t *testing.T) {
	reports, root := sampleReports(), signedImage()
	writers := map[string]func() error{
		"Text":      func() error { return render.Text(failingWriter{}, reports, render.TextOptions{}) },
		"JSON":      func() error { return render.JSON(failingWriter{}, reports) },
		"Tree":      func() error { return render.Tree(failingWriter{}, root, render.TextOptions{}) },
		"GraphJSON": func() error { return render.GraphJSON(failingWriter{}, root) },
		"DOT":       func() error { return render.DOT(failingWriter{}, root, "") },
	}
	for name, write := range writers {
		if err := write(); !errors.Is(err, errWrite) {
			t.Errorf("%s: error = %v, want %v", name, err, errWrite)
		}
	}
	nils := map[string]func() error{
		"Text":      func() error { return render.Text(&bytes.Buffer{}, nil, render.TextOptions{}) },
		"JSON":      func() error { return render.JSON(&bytes.Buffer{}, nil) },
		"Tree":      func() error { return render.Tree(&bytes.Buffer{}, nil, render.TextOptions{}) },
		"GraphJSON": func() error { return render.GraphJSON(&bytes.Buffer{}, nil) },
		"DOT":       func() error { return render.DOT(&bytes.Buffer{}, nil, "") },
	}
	for name, write := range nils {
		if err := write(); err == nil {
			t.Errorf("%s(nil): want an error", name)
		}
	}
}

func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// TestTextWanted: under a denial's reason, Text says what would satisfy
// each unmet requirement, once per distinct wish, terminal controls
// removed.
func TestTextWanted(t *testing.T) {
	want := "a signature of the subject that verifies"
	reports := vouch.Summarize([]*vouch.Report{{
		Subject: "r/a:1", Reference: "r/a:1@sha256:00", Verdict: vouch.Denied, Reason: `scope "prod": no signature found`,
		Explanations: []vouch.Explanation{
			{Requirement: "signature", Reason: "no signature found", Wanted: want},
			{Requirement: "signature", Reason: "no signature found", Wanted: want},
			{Requirement: "application/spdx+json", Reason: "no application/spdx+json found", Wanted: "an SBOM\x1b[31m"},
		},
		Root: &vouch.Node{Relation: vouch.RelSubject, MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:00"},
	}})
	blocks, _ := subjectBlocks(t, text(t, reports, render.TextOptions{}))
	lines := blocks[0]
	if len(lines) < 4 || lines[1] != `  scope "prod": no signature found` || lines[2] != "  wanted: "+want || !strings.HasPrefix(lines[3], "  wanted: an SBOM") || strings.Contains(lines[3], "\x1b") {
		t.Fatalf("lines:\n%s", strings.Join(lines, "\n"))
	}
	if strings.Count(strings.Join(lines, "\n"), "wanted:") != 2 {
		t.Fatalf("a wish twice:\n%s", strings.Join(lines, "\n"))
	}
}
