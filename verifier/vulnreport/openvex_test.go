package vulnreport

import (
	"strings"
	"testing"
	"time"
)

const img = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestNamesImage(t *testing.T) {
	const repo = "registry.example/team/app"
	tests := []struct {
		id   string
		want bool
	}{
		{"pkg:oci/app@sha256%3A1111111111111111111111111111111111111111111111111111111111111111", true},
		{"pkg:oci/app@" + img, true},
		{"pkg:oci/APP@" + img + "?repository_url=registry.example/team/app&tag=v1", true},
		{"pkg:oci/app@" + img + "?repository_url=https://registry.example/team/app", true},
		{"pkg:oci/app@" + img + "?repository_url=registry.example/other/app", false},
		{"pkg:oci/other@" + img, false},
		{"pkg:oci/app@sha256%3A2222222222222222222222222222222222222222222222222222222222222222", false},
		{"pkg:oci/app", false},
		{"pkg:docker/app@" + img, false},
		{repo + "@" + img, true},
		{"registry.example/team/other@" + img, false},
		{repo + ":v1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := namesImage(tt.id, repo, img); got != tt.want {
			t.Errorf("namesImage(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestParseOpenVEXRefuses(t *testing.T) {
	doc := func(stmt string) string {
		return `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","timestamp":"2026-01-01T00:00:00Z","statements":[` + stmt + `]}`
	}
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", `{`, "unexpected end"},
		{"not OpenVEX", `{"@context":"https://cyclonedx.org","statements":[]}`, "@context"},
		{"no vulnerability", doc(`{"products":[{"@id":"p"}],"status":"fixed"}`), "no vulnerability"},
		{"no products", doc(`{"vulnerability":{"name":"CVE-1"},"status":"fixed"}`), "no products"},
		{"bad status", doc(`{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"p"}],"status":"wontfix"}`), "status"},
		{"not_affected unjustified", doc(`{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"p"}],"status":"not_affected"}`), "justification"},
		{"unknown justification", doc(`{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"p"}],"status":"not_affected","justification":"trust me"}`), "justification"},
		{"bad time", doc(`{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"p"}],"status":"fixed","timestamp":"yesterday"}`), "RFC 3339"},
		{"too deep", strings.Repeat("[", MaxJSONDepth+1), "deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseOpenVEX([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestApplyVEX checks which statement decides a finding: the latest about
// the finding's vulnerability and this image, scoped to the packages its
// subcomponents name.
func TestApplyVEX(t *testing.T) {
	const repo = "registry.example/team/app"
	product := "pkg:oci/app@" + img
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	st := func(vuln, status, when string, subs ...string) VEXStatement {
		return VEXStatement{Vulnerability: vuln, Status: status, Justification: "component_not_present", Time: at(when),
			Products: []VEXProduct{{IDs: []string{product}, Subcomponents: subs}}}
	}
	tests := []struct {
		name       string
		statements []VEXStatement
		finding    Finding
		suppressed bool
	}{
		{"not affected", []VEXStatement{st("CVE-1", VEXNotAffected, "2026-01-01T00:00:00Z")}, Finding{RuleID: "CVE-1", IDs: []string{"CVE-1"}}, true},
		{"by alias", []VEXStatement{{Vulnerability: "GHSA-xxxx", Aliases: []string{"cve-1"}, Status: VEXFixed, Products: []VEXProduct{{IDs: []string{product}}}}}, Finding{RuleID: "CVE-1-log4j", IDs: []string{"CVE-1"}}, true},
		{"another vulnerability", []VEXStatement{st("CVE-2", VEXNotAffected, "2026-01-01T00:00:00Z")}, Finding{RuleID: "CVE-1", IDs: []string{"CVE-1"}}, false},
		{"affected", []VEXStatement{st("CVE-1", VEXAffected, "2026-01-01T00:00:00Z")}, Finding{RuleID: "CVE-1"}, false},
		{"later affected wins", []VEXStatement{st("CVE-1", VEXNotAffected, "2026-01-01T00:00:00Z"), st("CVE-1", VEXAffected, "2026-02-01T00:00:00Z")}, Finding{RuleID: "CVE-1"}, false},
		{"later fixed wins", []VEXStatement{st("CVE-1", VEXUnderInvestigation, "2026-01-01T00:00:00Z"), st("CVE-1", VEXFixed, "2026-02-01T00:00:00Z")}, Finding{RuleID: "CVE-1"}, true},
		{"a tie suppresses nothing", []VEXStatement{st("CVE-1", VEXFixed, "2026-01-01T00:00:00Z"), st("CVE-1", VEXAffected, "2026-01-01T00:00:00Z")}, Finding{RuleID: "CVE-1"}, false},
		{"subcomponent matches", []VEXStatement{st("CVE-1", VEXNotAffected, "2026-01-01T00:00:00Z", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")},
			Finding{RuleID: "CVE-1", Package: "org.apache.logging.log4j:log4j-core"}, true},
		{"another subcomponent", []VEXStatement{st("CVE-1", VEXNotAffected, "2026-01-01T00:00:00Z", "pkg:apk/alpine/libssl3@3.3.1")},
			Finding{RuleID: "CVE-1", Package: "org.apache.logging.log4j:log4j-core"}, false},
		{"subcomponents and no package", []VEXStatement{st("CVE-1", VEXNotAffected, "2026-01-01T00:00:00Z", "pkg:apk/alpine/libssl3@3.3.1")}, Finding{RuleID: "CVE-1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &Report{Findings: []Finding{tt.finding}}
			applyVEX(rep, []trustedVEX{{digest: "sha256:doc", trustedBy: "notation", doc: &VEXDocument{Statements: tt.statements}}}, nil, repo, []string{img})
			s := rep.Findings[0].Suppression
			if (s != nil) != tt.suppressed {
				t.Fatalf("suppressed = %v, want %v", s != nil, tt.suppressed)
			}
			if s != nil && (s.Kind != "vex" || s.VEX == nil || s.VEX.Document != "sha256:doc" || s.VEX.TrustedBy != "notation") {
				t.Fatalf("suppression %+v %+v", s, s.VEX)
			}
		})
	}
}

// FuzzParseOpenVEX feeds arbitrary bytes to the OpenVEX reader, which
// reads what anyone who can push to a repository attaches, and applies
// whatever it accepts to a report.
func FuzzParseOpenVEX(f *testing.F) {
	f.Add([]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"a","timestamp":"2026-01-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-2021-44228","aliases":["GHSA-jfh8-c2jp-5v3q"]},"products":[{"@id":"pkg:oci/app@sha256%3A1111111111111111111111111111111111111111111111111111111111111111","subcomponents":[{"@id":"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`))
	f.Add([]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"@id":"CVE-1"},"products":[{"identifiers":{"purl":"pkg:oci/app@sha256:1"}}],"status":"fixed","timestamp":"2026-02-01T00:00:00Z"},{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"r/app@sha256:1"}],"status":"under_investigation"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseOpenVEX(data)
		if err != nil {
			return
		}
		rep := &Report{Findings: []Finding{{RuleID: "CVE-1", IDs: []string{"CVE-1"}, Package: "log4j-core"}, {RuleID: "CVE-2021-44228"}}}
		applyVEX(rep, []trustedVEX{{digest: "sha256:doc", doc: doc}}, nil, "r/app", []string{img, "sha256:1"})
		for _, f := range rep.Findings {
			if s := f.Suppression; s != nil && (s.VEX == nil || !suppresses(s.VEX.Status)) {
				t.Fatalf("suppressed by a %+v", s.VEX)
			}
		}
	})
}

func TestParseCycloneDXVEX(t *testing.T) {
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"timestamp":"2026-01-01T00:00:00Z","component":{"bom-ref":"app","purl":"pkg:oci/app@sha256%3A11"}},
		"components":[{"bom-ref":"lib","purl":"pkg:maven/g/lib@1"}],
		"vulnerabilities":[
			{"id":"CVE-1","references":[{"id":"GHSA-x"}],"analysis":{"state":"false_positive"},"affects":[{"ref":"urn:cdx:abc/1#app"}]},
			{"id":"CVE-2","analysis":{"state":"resolved"},"updated":"2026-02-01T00:00:00Z","affects":[{"ref":"lib"},{"ref":"pkg:oci/app@sha256:22"}]},
			{"id":"CVE-3","affects":[{"ref":"app"}]}]}`
	d, err := ParseCycloneDXVEX([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Statements) != 2 {
		t.Fatalf("%d statements, want 2 (CVE-3 has no analysis)", len(d.Statements))
	}
	s1, s2 := d.Statements[0], d.Statements[1]
	if s1.Status != VEXNotAffected || s1.Products[0].IDs[0] != "pkg:oci/app@sha256%3A11" || s1.Aliases[0] != "GHSA-x" || !s1.Time.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("statement 1: %+v", s1)
	}
	if s2.Status != VEXFixed || s2.Products[0].IDs[0] != "pkg:maven/g/lib@1" || s2.Products[1].IDs[0] != "pkg:oci/app@sha256:22" || s2.Time.Month() != time.February {
		t.Fatalf("statement 2: %+v", s2)
	}
	for _, bad := range []struct{ data, want string }{
		{`{"bomFormat":"SPDX"}`, "bomFormat"},
		{`{"bomFormat":"CycloneDX","specVersion":"1.3"}`, "specVersion"},
		{`{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"CVE-1","analysis":{"state":"maybe"},"affects":[{"ref":"a"}]}]}`, "vulnerabilities[0].analysis.state"},
		{`{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"CVE-1","analysis":{"state":"resolved"}}]}`, "no affects"},
	} {
		if _, err := ParseCycloneDXVEX([]byte(bad.data)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.data, err, bad.want)
		}
	}
}

// FuzzParseCycloneDXVEX feeds arbitrary bytes to the CycloneDX VEX reader
// and applies whatever it accepts to a report.
func FuzzParseCycloneDXVEX(f *testing.F) {
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"timestamp":"2026-01-01T00:00:00Z","component":{"bom-ref":"app","purl":"pkg:oci/app@sha256%3A1111111111111111111111111111111111111111111111111111111111111111"}},"vulnerabilities":[{"id":"CVE-1","analysis":{"state":"not_affected","justification":"code_not_reachable"},"affects":[{"ref":"urn:cdx:x/1#app"}]},{"id":"CVE-2021-44228","analysis":{"state":"in_triage"},"affects":[{"ref":"app"}]}]}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"bom-ref":"a","purl":"pkg:oci/app@sha256:1"}],"vulnerabilities":[{"id":"CVE-1","updated":"2026-02-01T00:00:00Z","analysis":{"state":"resolved"},"affects":[{"ref":"a"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseCycloneDXVEX(data)
		if err != nil {
			return
		}
		rep := &Report{Findings: []Finding{{RuleID: "CVE-1", IDs: []string{"CVE-1"}}, {RuleID: "CVE-2021-44228"}}}
		applyVEX(rep, []trustedVEX{{digest: "sha256:doc", doc: doc}}, nil, "r/app", []string{img, "sha256:1"})
		for _, f := range rep.Findings {
			if s := f.Suppression; s != nil && (s.VEX == nil || !suppresses(s.VEX.Status)) {
				t.Fatalf("suppressed by a %+v", s.VEX)
			}
		}
	})
}
