package vulnreport_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// now is the time the fixture cases are checked at: a few hours after the
// fixtures' annotation times.
var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newVerifier(t testing.TB, c vulnreport.Config) *vulnreport.Verifier {
	t.Helper()
	v, err := vulnreport.New("vulns", c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// annotated is an artifact manifest's annotations with a creation time.
func annotated(created string) map[string]string {
	return map[string]string{ocispec.AnnotationCreated: created}
}

// TestParseScanners reads the fixtures shaped as Trivy 0.74 and Grype write
// SARIF, and checks what vouch takes from each: the scanner, the ids, the
// severity from every place the scanners put it, and the package.
func TestParseScanners(t *testing.T) {
	for _, tc := range []struct {
		file    string
		scanner string
		want    []vulnreport.Finding
	}{
		{"trivy-log4j.sarif", "Trivy 0.74.0", []vulnreport.Finding{
			{RuleID: "CVE-2021-44228", IDs: []string{"CVE-2021-44228"}, Severity: vulnreport.Critical, Score: 10, Package: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Level: "error"},
			{RuleID: "CVE-2021-45046", IDs: []string{"CVE-2021-45046"}, Severity: vulnreport.Critical, Score: 9, Package: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Level: "error"},
			{RuleID: "CVE-2024-5535", IDs: []string{"CVE-2024-5535"}, Severity: vulnreport.Low, Score: 2, Package: "libssl3", Version: "3.3.1-r0", Level: "note"},
		}},
		{"grype-log4j.sarif", "grype 0.104.0", []vulnreport.Finding{
			{RuleID: "CVE-2021-44228-log4j-core", IDs: []string{"CVE-2021-44228"}, Severity: vulnreport.Critical, Score: 10, Package: "log4j-core", Version: "2.14.1"},
			{RuleID: "CVE-2024-5535-libssl3", IDs: []string{"CVE-2024-5535"}, Severity: vulnreport.Low, Score: 2, Package: "libssl3", Version: "3.3.1-r0"},
		}},
		// Grype's vendor severity (critical) outranks its CVSS score (1.0).
		{"grype-vendor-critical.sarif", "grype 0.104.0", []vulnreport.Finding{
			{RuleID: "CVE-2023-0001-package-2", IDs: []string{"CVE-2023-0001"}, Severity: vulnreport.Critical, Score: 1, Package: "package-2", Version: "2.2.2"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Runs) != 1 || rep.Runs[0].Tool+" "+rep.Runs[0].Version != tc.scanner {
				t.Errorf("runs %+v, want one by %s", rep.Runs, tc.scanner)
			}
			if len(rep.Findings) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(rep.Findings), len(tc.want), rep.Findings)
			}
			for i, w := range tc.want {
				g := rep.Findings[i]
				if g.RuleID != w.RuleID || strings.Join(g.IDs, ",") != strings.Join(w.IDs, ",") || g.Severity != w.Severity ||
					g.Score != w.Score || g.Package != w.Package || g.Version != w.Version || g.Level != w.Level {
					t.Errorf("finding %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// TestCheck is the decision table: a fixture, a configuration, the
// manifest's creation annotation, and the outcome, reason and details.
func TestCheck(t *testing.T) {
	critical := vulnreport.Config{DeniedSeverities: []string{"critical"}}
	for _, tc := range []struct {
		name     string
		file     string
		config   vulnreport.Config
		created  string // org.opencontainers.image.created, when not ""
		outcome  vouch.Outcome
		reasons  []string
		details  map[string]any
		denied   []string // ids in Details["deniedFindings"]
		moreThan int
	}{
		{
			name: "trivy log4j, critical denied", file: "trivy-log4j.sarif", config: critical, created: "2026-11-24T09:00:00Z",
			outcome: vouch.Failed,
			reasons: []string{"Trivy 0.74.0 report of 2026-11-24T09:00:00Z: 2 findings denied: CVE-2021-44228 (critical 10.0, org.apache.logging.log4j:log4j-core 2.14.1), CVE-2021-45046 (critical 9.0, org.apache.logging.log4j:log4j-core 2.14.1)"},
			details: map[string]any{"scanner": "Trivy 0.74.0", "findings": 3, "scanned": "2026-11-24T09:00:00Z", "timeSource": "annotation org.opencontainers.image.created"},
			denied:  []string{"CVE-2021-44228", "CVE-2021-45046"},
		},
		{
			name: "grype log4j, critical denied", file: "grype-log4j.sarif", config: critical,
			outcome: vouch.Failed,
			reasons: []string{"grype 0.104.0 report: 1 finding denied: CVE-2021-44228 (critical 10.0, log4j-core 2.14.1)"},
			denied:  []string{"CVE-2021-44228"},
		},
		{
			name: "grype vendor critical under a low score", file: "grype-vendor-critical.sarif", config: critical,
			outcome: vouch.Failed, reasons: []string{"CVE-2023-0001 (critical 1.0, package-2 2.2.2)"},
		},
		{
			name: "trivy log4j, CVE deny-list", file: "trivy-log4j.sarif", config: vulnreport.Config{DeniedCVEs: []string{"cve-2021-44228"}},
			outcome: vouch.Failed, reasons: []string{"1 finding denied: CVE-2021-44228 (denied id, critical 10.0"},
			denied: []string{"CVE-2021-44228"},
		},
		{
			name: "grype rule id holds the CVE", file: "grype-log4j.sarif", config: vulnreport.Config{DeniedCVEs: []string{"CVE-2021-44228"}},
			outcome: vouch.Failed, reasons: []string{"1 finding denied: CVE-2021-44228 (denied id"},
		},
		{
			name: "whole rule id in the deny-list", file: "grype-log4j.sarif", config: vulnreport.Config{DeniedCVEs: []string{"CVE-2024-5535-libssl3"}},
			outcome: vouch.Failed, reasons: []string{"CVE-2024-5535 (denied id, low 2.0, libssl3 3.3.1-r0)"},
		},
		{
			name: "trivy only low findings pass a high/critical deny-list", file: "trivy-low.sarif",
			config:  vulnreport.Config{DeniedSeverities: []string{"critical", "HIGH"}, DeniedCVEs: []string{"CVE-2021-44228"}},
			outcome: vouch.Passed,
			reasons: []string{"Trivy 0.74.0 report: 2 findings (0 critical, 0 high, 0 medium, 2 low, 0 unknown), none denied"},
			details: map[string]any{"findings": 2},
		},
		{
			name: "grype only low findings pass", file: "grype-low.sarif", config: vulnreport.Config{DeniedSeverities: []string{"critical", "high", "medium"}},
			outcome: vouch.Passed, reasons: []string{"grype 0.104.0 report: 2 findings (0 critical, 0 high, 0 medium, 2 low, 0 unknown), none denied"},
		},
		{
			name: "low denied", file: "grype-low.sarif", config: vulnreport.Config{DeniedSeverities: []string{"low"}},
			outcome: vouch.Failed, reasons: []string{"2 findings denied: CVE-2024-5535 (low 2.0, libssl3 3.3.1-r0), CVE-2024-2511 (low 3.7, libcrypto3 3.3.0-r0)"},
		},
		{
			name: "stale by invocation time", file: "stale.sarif", config: vulnreport.Config{MaxAge: "7d"}, created: "2026-11-24T09:00:00Z",
			outcome: vouch.Failed,
			reasons: []string{"Trivy 0.74.0 report of 2021-12-10T08:01:30Z: the report is 1810d3h old, over maxAge 7d (scanned 2021-12-10T08:01:30Z, from the report's invocations); scan the image again"},
			details: map[string]any{"scanned": "2021-12-10T08:01:30Z", "timeSource": "the report's invocations"},
		},
		{
			name: "stale by annotation", file: "trivy-low.sarif", config: vulnreport.Config{MaxAge: "168h"}, created: "2026-10-01T00:00:00Z",
			outcome: vouch.Failed, reasons: []string{"the report is 54d12h old, over maxAge 7d (scanned 2026-10-01T00:00:00Z, from annotation org.opencontainers.image.created)"},
		},
		{
			name: "fresh by annotation", file: "trivy-low.sarif", config: vulnreport.Config{MaxAge: "7d", DeniedSeverities: []string{"critical"}}, created: "2026-11-24T09:00:00Z",
			outcome: vouch.Passed, reasons: []string{"none denied, scanned 3h ago, within maxAge 7d"},
		},
		{
			name: "annotation ignored when configured", file: "trivy-low.sarif", config: vulnreport.Config{MaxAge: "7d", CreatedAnnotation: "none"}, created: "2026-11-24T09:00:00Z",
			outcome: vouch.Failed, reasons: []string{"the report's age cannot be checked against maxAge 7d: no run records when it scanned (runs[].invocations[].endTimeUtc)"},
		},
		{
			name: "other annotation", file: "trivy-low.sarif", config: vulnreport.Config{MaxAge: "7d", CreatedAnnotation: "org.example.scanned"}, created: "2026-11-24T09:00:00Z",
			outcome: vouch.Failed, reasons: []string{"no run records when it scanned (runs[].invocations[].endTimeUtc) and the artifact has no org.example.scanned annotation"},
		},
		{
			name: "no time at all", file: "grype-low.sarif", config: vulnreport.Config{MaxAge: "7d"},
			outcome: vouch.Failed, reasons: []string{"and the artifact has no org.opencontainers.image.created annotation"},
		},
		{
			name: "malformed annotation", file: "grype-low.sarif", config: vulnreport.Config{MaxAge: "7d"}, created: "yesterday",
			outcome: vouch.Failed, reasons: []string{`the artifact's org.opencontainers.image.created annotation "yesterday" is not an RFC 3339 time`},
		},
		{
			name: "annotation in the future", file: "grype-low.sarif", config: vulnreport.Config{MaxAge: "7d"}, created: "2027-01-01T00:00:00Z",
			outcome: vouch.Failed, reasons: []string{"the report's time 2027-01-01T00:00:00Z (annotation org.opencontainers.image.created) is in the future"},
		},
		{
			name: "stale and denied at once", file: "stale.sarif", config: vulnreport.Config{MaxAge: "7d", DeniedSeverities: []string{"low"}},
			outcome: vouch.Failed, reasons: []string{"2 findings denied", "; the report is 1810d3h old"},
		},
		{
			name: "no checks", file: "trivy-log4j.sarif", outcome: vouch.Passed,
			reasons: []string{"3 findings (2 critical, 0 high, 0 medium, 1 low, 0 unknown), no checks configured"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var ann map[string]string
			if tc.created != "" {
				ann = annotated(tc.created)
			}
			res := newVerifier(t, tc.config).Check(rep, ann, now)
			checkResult(t, res, tc.outcome, tc.reasons, tc.details)
			if tc.denied != nil {
				var ids []string
				for _, d := range res.Details["deniedFindings"].([]any) {
					ids = append(ids, d.(map[string]any)["id"].(string))
				}
				if strings.Join(ids, ",") != strings.Join(tc.denied, ",") {
					t.Errorf("denied findings %v, want %v", ids, tc.denied)
				}
			}
		})
	}
}

func checkResult(t *testing.T, res vouch.Result, outcome vouch.Outcome, reasons []string, details map[string]any) {
	t.Helper()
	if res.Outcome != outcome {
		t.Errorf("outcome %s, want %s (reason: %s)", res.Outcome, outcome, res.Reason)
	}
	for _, r := range reasons {
		if !strings.Contains(res.Reason, r) {
			t.Errorf("reason %q\ndoes not contain %q", res.Reason, r)
		}
	}
	for k, want := range details {
		if got := res.Details[k]; got != want {
			t.Errorf("Details[%q] = %#v, want %#v", k, got, want)
		}
	}
}

// TestDeniedFindingsCapped lists at most MaxListed denied findings in
// Details and counts the rest; the reason names the first three.
func TestDeniedFindingsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","version":"0.74.0","rules":[]}},"results":[`)
	for i := 0; i < 25; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"ruleId":"CVE-2024-` + string(rune('A'+i)) + `","level":"error","message":{"text":"Package: p` + string(rune('a'+i)) + `\nInstalled Version: 1.0\nSeverity: HIGH"}}`)
	}
	b.WriteString(`]}]}`)
	rep, err := vulnreport.ParseSARIF([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	res := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"high"}}).Check(rep, nil, now)
	if got := len(res.Details["deniedFindings"].([]any)); got != vulnreport.MaxListed {
		t.Errorf("%d denied findings listed, want %d", got, vulnreport.MaxListed)
	}
	if got := res.Details["moreDeniedFindings"]; got != 5 {
		t.Errorf("moreDeniedFindings = %v, want 5", got)
	}
	checkResult(t, res, vouch.Failed, []string{"25 findings denied: CVE-2024-A (high, pa 1.0), CVE-2024-B (high, pb 1.0), CVE-2024-C (high, pc 1.0), and 22 more"}, nil)
}

// TestMalformed feeds reports that are not what a scanner writes: each
// must be refused with a reason, never a crash.
func TestMalformed(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"truncated", string(fixture(t, "malformed.sarif")), "malformed JSON"},
		{"not JSON", "<sarif/>", "malformed JSON at byte 1"},
		{"deeply nested", `{"version":"2.1.0","runs":[{"properties":` + deep + `}]}`, "JSON nested deeper than 100 levels"},
		{"deep arrays", strings.Repeat("[", 1<<20), "JSON nested deeper than 100 levels"},
		{"empty", "", "malformed JSON"},
		{"null", "null", "no version"},
		{"array", "[]", "the document is a JSON array, not an object"},
		{"version 2.0", `{"version":"2.0.0","runs":[]}`, `unsupported SARIF version "2.0.0"`},
		{"no runs", `{"version":"2.1.0"}`, "no runs array"},
		{"empty runs", `{"version":"2.1.0","runs":[]}`, "nothing shows that a scan happened"},
		{"no tool", `{"version":"2.1.0","runs":[{"results":[]}]}`, "runs[0] names no tool"},
		{"no results", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}}}]}`, "runs[0] (Trivy) has no results array"},
		{"failed scan", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}},"invocations":[{"executionSuccessful":false}],"results":[]}]}`, "reports that the scan failed"},
		{"bad time", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}},"invocations":[{"endTimeUtc":"yesterday"}],"results":[]}]}`, `runs[0].invocations[0].endTimeUtc: "yesterday" is not an RFC 3339 time`},
		{"wrong type", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}},"results":[{"ruleId":5}]}]}`, "runs.results.ruleId: expected a string, got number"},
		{"suppressions not an array", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"x","suppressions":{"kind":"external"}}]}]}`, "runs.results.suppressions: expected an array"},
		{"suppression status not a string", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"x","suppressions":[{"status":true}]}]}]}`, "runs.results.suppressions.status: expected a string"},
		{"tags not strings", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"x","properties":{"tags":[1]}}]}},"results":[]}]}`, "runs.tool.driver.rules.properties.tags: expected a string, got number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vulnreport.ParseSARIF([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestTolerant reads shapes that SARIF allows and scanners vary on.
func TestTolerant(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		severity   vulnreport.Severity
		findings   int
	}{
		{"numeric security-severity", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"CVE-1","properties":{"security-severity":9.8}}]}},"results":[{"ruleId":"CVE-1"}]}]}`, vulnreport.Critical, 1},
		{"score on the result", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"CVE-1","properties":{"security-severity":"7.5"}}]}]}`, vulnreport.High, 1},
		{"rule by index only", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"CVE-1","properties":{"security-severity":"5.0"}}]}},"results":[{"ruleIndex":0}]}]}`, vulnreport.Medium, 1},
		{"rule by reference", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"CVE-1","properties":{"tags":["HIGH"]}}]}},"results":[{"rule":{"id":"CVE-1"}}]}]}`, vulnreport.High, 1},
		// Older Grype wrote ruleIndex 0 for every result: the ruleId wins.
		{"wrong ruleIndex", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"grype","rules":[{"id":"CVE-1-a","properties":{"security-severity":"2.0"}},{"id":"CVE-2-b","properties":{"security-severity":"9.1"}}]}},"results":[{"ruleId":"CVE-2-b","ruleIndex":0}]}]}`, vulnreport.Critical, 1},
		{"out of range score ignored", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"CVE-1","properties":{"security-severity":"99"}}]}},"results":[{"ruleId":"CVE-1"}]}]}`, vulnreport.Unknown, 1},
		{"unknown severity", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","rules":[{"id":"CVE-1","properties":{"security-severity":"0.0","tags":["vulnerability","security","UNKNOWN"]}}]}},"results":[{"ruleId":"CVE-1","level":"note"}]}]}`, vulnreport.Unknown, 1},
		{"pass results are not findings", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"x","kind":"pass"},{"ruleId":"y","baselineState":"absent"}]}]}`, 0, 0},
		{"unknown fields", `{"version":"2.1.0","$schema":"x","inlineExternalProperties":[{}],"runs":[{"tool":{"driver":{"name":"T"},"extensions":[{"name":"e"}]},"results":[],"artifacts":[{"x":1}]}]}`, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != tc.findings {
				t.Fatalf("%d findings, want %d", len(rep.Findings), tc.findings)
			}
			if tc.findings > 0 && rep.Findings[0].Severity != tc.severity {
				t.Errorf("severity %s, want %s", rep.Findings[0].Severity, tc.severity)
			}
		})
	}
}

func TestSeverityOfScore(t *testing.T) {
	for score, want := range map[float64]vulnreport.Severity{
		10: vulnreport.Critical, 9: vulnreport.Critical, 8.9: vulnreport.High, 7: vulnreport.High, 6.9: vulnreport.Medium,
		4: vulnreport.Medium, 3.9: vulnreport.Low, 0.1: vulnreport.Low, 0: vulnreport.Unknown,
	} {
		if got := vulnreport.SeverityOfScore(score); got != want {
			t.Errorf("SeverityOfScore(%v) = %s, want %s", score, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		config vulnreport.Config
		want   string
	}{
		{vulnreport.Config{DeniedSeverities: []string{"critical", "High", "medium", "low", "unknown"}, DeniedCVEs: []string{"CVE-2021-44228", "GHSA-jfh8-c2jp-5v3q", "AVD-DS-0002"}, MaxAge: "7d"}, ""},
		{vulnreport.Config{DeniedSeverities: []string{"critical", "severe"}}, `verifiers[0].vulnreport.deniedSeverities[1]: "severe" is not a severity (critical, high, medium, low or unknown)`},
		{vulnreport.Config{DeniedSeverities: []string{"negligible"}}, `deniedSeverities[0]: "negligible" is not a severity`},
		{vulnreport.Config{DeniedCVEs: []string{"CVE 2021"}}, `verifiers[0].vulnreport.deniedCVEs[0]: "CVE 2021" is not a vulnerability id`},
		{vulnreport.Config{DeniedCVEs: []string{""}}, `deniedCVEs[0]: "" is not a vulnerability id`},
		{vulnreport.Config{MaxAge: "a week"}, `verifiers[0].vulnreport.maxAge: "a week" is not a duration`},
		{vulnreport.Config{MaxAge: "-1h"}, `maxAge: "-1h": must be positive`},
		{vulnreport.Config{MaxAge: "0d"}, `maxAge: "0d": must be positive`},
		{vulnreport.Config{CreatedAnnotation: "a b"}, `verifiers[0].vulnreport.createdAnnotation: "a b" is not an annotation key`},
	} {
		err := tc.config.Validate("verifiers[0].vulnreport")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.config, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.config, err, tc.want)
		}
	}
}

func TestHandles(t *testing.T) {
	v := newVerifier(t, vulnreport.Config{})
	for typ, want := range map[string]bool{
		"application/sarif+json":                true,
		"Application/SARIF+JSON; charset=utf-8": true,
		"application/spdx+json":                 false,
		"application/json":                      false,
		"":                                      false,
		"application/vnd.dev.sigstore.bundle.v0.3+json":   true,
		"application/vnd.dev.cosign.artifact.att.v1+json": true,
		"application/vnd.docker.attestation-manifest":     true,
		"application/vnd.dev.cosign.artifact.sig.v1+json": false,
	} {
		if got := v.Handles(typ); got != want {
			t.Errorf("Handles(%q) = %v, want %v", typ, got, want)
		}
	}
}

// allow is a policy that allows everything: the tests read the results.
var allow = vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
	return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
})

// reportResults returns the results of the verifier named "vulns" on the
// referrers of root, in the order found.
func reportResults(root *vouch.Node) []vouch.Result {
	var out []vouch.Result
	root.Walk(func(n *vouch.Node, _ int) {
		for _, r := range n.Results {
			if r.Verifier == "vulns" {
				out = append(out, r)
			}
		}
	})
	return out
}

// TestRegistry attaches reports to images in both test registries, as
// the oras CLI does (which stamps org.opencontainers.image.created) and as
// oras-go does with a chosen annotation, and verifies them through the
// Executor and the registry store.
func TestRegistry(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical", "high"}, MaxAge: "7d"})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow}
	dir := t.TempDir()
	for _, name := range []string{"trivy-log4j.sarif", "grype-low.sarif"} {
		if err := os.WriteFile(filepath.Join(dir, name), fixture(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/vulns")

			// The oras CLI, as users attach scanner output.
			img := p.Image("", "scanned on "+reg.Name)
			ref := reg.Host + "/demo/vulns@" + img.Digest.String()
			runIn(t, dir, "oras", "attach", "--plain-http", "--artifact-type", vulnreport.MediaType, ref, "trivy-log4j.sarif:"+vulnreport.MediaType)
			runIn(t, dir, "oras", "attach", "--plain-http", "--artifact-type", vulnreport.MediaType, ref, "grype-low.sarif:"+vulnreport.MediaType)
			// oras-go: a report stamped long ago, and one that is not JSON.
			stale := p.ArtifactManifest(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "grype-low.sarif"))
			stale.Annotations = annotated("2025-01-01T00:00:00Z")
			p.Manifest(ocispec.MediaTypeImageManifest, stale, "")
			p.Attach(img, vulnreport.MediaType, vulnreport.MediaType, fixture(t, "malformed.sarif"))

			report, err := exec.Verify(ctx, testbed.Ref(t, ref))
			if err != nil {
				t.Fatal(err)
			}
			results := reportResults(report.Root)
			if len(results) != 4 {
				t.Fatalf("%d results, want 4: %+v", len(results), results)
			}
			var got []string
			for _, r := range results {
				got = append(got, string(r.Outcome)+": "+r.Reason)
			}
			for _, want := range []string{
				"failed: Trivy 0.74.0 report of ", "2 findings denied: CVE-2021-44228 (critical 10.0, org.apache.logging.log4j:log4j-core 2.14.1), CVE-2021-45046",
				"passed: grype 0.104.0 report of ", "2 findings (0 critical, 0 high, 0 medium, 2 low, 0 unknown), none denied, scanned ",
				"failed: grype 0.104.0 report of 2025-01-01T00:00:00Z: the report is ",
				"failed: malformed SARIF report: malformed JSON",
			} {
				if !strings.Contains(strings.Join(got, "\n"), want) {
					t.Errorf("results:\n%s\nhave no %q", strings.Join(got, "\n"), want)
				}
			}
		})
	}
}

// runIn runs a testbed program in dir (oras takes the files it attaches
// by relative path), failing the test with its output when it fails.
func runIn(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(testbed.Bin(t, name), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestSuppressions checks that accepted suppressions take findings out of
// the deny-lists, that suppressions under review or rejected do not, and
// what the reason and Details say about them. The fixtures are
// trivy-log4j.sarif and grype-log4j.sarif with suppressions added:
// trivy-suppressed.sarif suppresses CVE-2021-44228 externally with no
// status (accepted), CVE-2021-45046 under review, and CVE-2024-5535 in
// source, accepted; grype-suppressed.sarif gives CVE-2021-44228 an
// accepted and a rejected suppression, and CVE-2024-5535 two accepted ones.
func TestSuppressions(t *testing.T) {
	type suppressed struct{ id, kind, justification, deniedOtherwise string }
	for _, tc := range []struct {
		name       string
		file       string
		config     vulnreport.Config
		outcome    vouch.Outcome
		reasons    []string
		details    map[string]any
		denied     []string
		suppressed []suppressed
	}{
		{
			name: "trivy: accepted and absent status suppress, underReview does not", file: "trivy-suppressed.sarif",
			config:  vulnreport.Config{DeniedSeverities: []string{"critical", "low"}},
			outcome: vouch.Failed,
			reasons: []string{"Trivy 0.74.0 report: 1 finding denied: CVE-2021-45046 (critical 9.0, org.apache.logging.log4j:log4j-core 2.14.1); 2 findings suppressed (accepted; 2 would otherwise be denied)"},
			details: map[string]any{"findings": 1, "suppressed": 2},
			denied:  []string{"CVE-2021-45046"},
			suppressed: []suppressed{
				{"CVE-2021-44228", "external", "VEX: log4j-core is present but the JndiLookup class is removed from the jar (vulnerable_code_not_present)", "denied severity critical"},
				{"CVE-2024-5535", "inSource", "libssl3 is not used by the application", "denied severity low"},
			},
		},
		{
			name: "trivy: a suppressed id in deniedCVEs passes", file: "trivy-suppressed.sarif",
			config:  vulnreport.Config{DeniedCVEs: []string{"CVE-2021-44228"}},
			outcome: vouch.Passed,
			reasons: []string{"Trivy 0.74.0 report: 1 finding (1 critical, 0 high, 0 medium, 0 low, 0 unknown), 2 findings suppressed (accepted; 1 would otherwise be denied), none denied"},
			details: map[string]any{"findings": 1, "suppressed": 2},
			suppressed: []suppressed{
				{"CVE-2021-44228", "external", "VEX: log4j-core is present but the JndiLookup class is removed from the jar (vulnerable_code_not_present)", "denied id CVE-2021-44228"},
				{"CVE-2024-5535", "inSource", "libssl3 is not used by the application", ""},
			},
		},
		{
			name: "trivy: no checks", file: "trivy-suppressed.sarif", outcome: vouch.Passed,
			reasons: []string{"1 finding (1 critical, 0 high, 0 medium, 0 low, 0 unknown), 2 findings suppressed (accepted), no checks configured"},
		},
		{
			name: "grype: a rejected suppression beside an accepted one does not suppress", file: "grype-suppressed.sarif",
			config:  vulnreport.Config{DeniedSeverities: []string{"critical"}},
			outcome: vouch.Failed,
			reasons: []string{"grype 0.104.0 report: 1 finding denied: CVE-2021-44228 (critical 10.0, log4j-core 2.14.1); 1 finding suppressed (accepted)"},
			details: map[string]any{"findings": 1, "suppressed": 1},
			denied:  []string{"CVE-2021-44228"},
			// Of two accepted suppressions the first is shown, its control
			// and bidi characters turned into spaces.
			suppressed: []suppressed{{"CVE-2024-5535", "external", "not reachable [31m from the entry point", ""}},
		},
		{
			name: "grype: suppressed low passes a low deny-list", file: "grype-suppressed.sarif",
			config:  vulnreport.Config{DeniedSeverities: []string{"low"}},
			outcome: vouch.Passed,
			reasons: []string{"grype 0.104.0 report: 1 finding (1 critical, 0 high, 0 medium, 0 low, 0 unknown), 1 finding suppressed (accepted; 1 would otherwise be denied), none denied"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res := newVerifier(t, tc.config).Check(rep, nil, now)
			checkResult(t, res, tc.outcome, tc.reasons, tc.details)
			var ids []string
			for _, d := range listOf(res.Details["deniedFindings"]) {
				ids = append(ids, d["id"].(string))
			}
			if strings.Join(ids, ",") != strings.Join(tc.denied, ",") {
				t.Errorf("denied findings %v, want %v", ids, tc.denied)
			}
			if tc.suppressed == nil {
				return
			}
			var got []suppressed
			for _, d := range listOf(res.Details["suppressedFindings"]) {
				why, _ := d["deniedOtherwise"].(string)
				got = append(got, suppressed{d["id"].(string), d["kind"].(string), d["justification"].(string), why})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.suppressed) {
				t.Errorf("suppressed findings\n got %q\nwant %q", got, tc.suppressed)
			}
		})
	}
}

func listOf(v any) []map[string]any {
	var out []map[string]any
	items, _ := v.([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any))
	}
	return out
}

// TestSuppressionStatus decides, for one result's suppressions array, whether
// the finding is suppressed (SARIF 2.1.0 §3.27.23, §3.35.3).
func TestSuppressionStatus(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name, suppressions string
		want               *vulnreport.Suppression
	}{
		{"absent", ``, nil},
		{"null", `,"suppressions":null`, nil},
		{"empty: not suppressed", `,"suppressions":[]`, nil},
		{"no status is accepted", `,"suppressions":[{"kind":"external","justification":"vex"}]`, &vulnreport.Suppression{Kind: "external", Justification: "vex"}},
		{"null status is accepted", `,"suppressions":[{"kind":"external","status":null}]`, &vulnreport.Suppression{Kind: "external"}},
		{"accepted", `,"suppressions":[{"kind":"inSource","status":"accepted","justification":"ok"}]`, &vulnreport.Suppression{Kind: "inSource", Justification: "ok"}},
		{"underReview", `,"suppressions":[{"kind":"external","status":"underReview"}]`, nil},
		{"rejected", `,"suppressions":[{"kind":"external","status":"rejected"}]`, nil},
		{"status SARIF does not define", `,"suppressions":[{"kind":"external","status":"Accepted"}]`, nil},
		{"accepted and underReview", `,"suppressions":[{"kind":"external","status":"accepted"},{"kind":"inSource","status":"underReview"}]`, nil},
		{"underReview and accepted", `,"suppressions":[{"kind":"inSource","status":"underReview"},{"kind":"external"}]`, nil},
		{"accepted and rejected", `,"suppressions":[{"kind":"external"},{"kind":"external","status":"rejected"}]`, nil},
		{"several accepted: the first is shown", `,"suppressions":[{"kind":"inSource","justification":"a"},{"kind":"external","status":"accepted","justification":"b"}]`, &vulnreport.Suppression{Kind: "inSource", Justification: "a"}},
		{"long justification is cut", `,"suppressions":[{"kind":"external","justification":"` + long + `"}]`, &vulnreport.Suppression{Kind: "external", Justification: long[:vulnreport.MaxJustification] + "…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"CVE-2021-44228","message":{"text":"Severity: CRITICAL"}` + tc.suppressions + `}]}]}`))
			if err != nil {
				t.Fatal(err)
			}
			got := rep.Findings[0].Suppression
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("suppression %+v, want %+v", got, tc.want)
			}
			res := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"critical"}}).Check(rep, nil, now)
			if want := map[bool]vouch.Outcome{true: vouch.Failed, false: vouch.Passed}[tc.want == nil]; res.Outcome != want {
				t.Errorf("outcome %s, want %s: %s", res.Outcome, want, res.Reason)
			}
		})
	}
}

// TestSuppressedElsewhere counts a vulnerability that one location
// suppresses and another does not; and caps the suppressed list.
func TestSuppressedElsewhere(t *testing.T) {
	result := func(rule, pkg, suppressions string) string {
		return `{"ruleId":"` + rule + `","message":{"text":"Package: ` + pkg + `\nInstalled Version: 1.0\nSeverity: HIGH"}` + suppressions + `}`
	}
	accepted := `,"suppressions":[{"kind":"external","justification":"vex"}]`
	results := []string{result("CVE-2024-0001", "pa", accepted), result("CVE-2024-0001", "pa", "")}
	for i := range 25 {
		results = append(results, result(fmt.Sprintf("CVE-2024-1%03d", i), "pb", accepted))
	}
	rep, err := vulnreport.ParseSARIF([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","version":"0.74.0"}},"results":[` + strings.Join(results, ",") + `]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res := newVerifier(t, vulnreport.Config{DeniedSeverities: []string{"high"}}).Check(rep, nil, now)
	checkResult(t, res, vouch.Failed, []string{"Trivy 0.74.0 report: 1 finding denied: CVE-2024-0001 (high, pa 1.0); 25 findings suppressed (accepted; 25 would otherwise be denied)"},
		map[string]any{"findings": 1, "suppressed": 25, "moreSuppressedFindings": 5})
	if got := len(listOf(res.Details["suppressedFindings"])); got != vulnreport.MaxListed {
		t.Errorf("%d suppressed findings listed, want %d", got, vulnreport.MaxListed)
	}
}
