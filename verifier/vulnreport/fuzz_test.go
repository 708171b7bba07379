package vulnreport

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseSARIF feeds arbitrary bytes to the SARIF reader, which reads
// what scanners (or anyone who can push to a repository) attach to images,
// and checks the verdict on whatever it accepts.
func FuzzParseSARIF(f *testing.F) {
	files, err := filepath.Glob("testdata/*.sarif")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"CVE-1","properties":{"security-severity":9.8}}]}},"results":[{"ruleIndex":0},{"rule":{"index":7}},{"ruleId":"GHSA-jfh8-c2jp-5v3q","kind":"fail"}],"invocations":[{"endTimeUtc":"2026-01-02T03:04:05Z"}]}]}`))
	f.Add([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"CVE-2021-44228","message":{"text":"Severity: CRITICAL"},"suppressions":[{"kind":"external","justification":"vex"},{"kind":"inSource","status":"underReview"}]},{"ruleId":"CVE-2","suppressions":[{"kind":"external","status":"accepted"}]},{"ruleId":"CVE-3","suppressions":[]}]}]}`))
	v, err := New("fuzz", Config{DeniedSeverities: []string{"critical", "unknown"}, DeniedCVEs: []string{"CVE-2021-44228"}, MaxAge: "7d", ListFindings: true})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseSARIF(data)
		if err != nil {
			if rep != nil {
				t.Fatal("a report and an error")
			}
			return
		}
		if len(rep.Runs) == 0 {
			t.Fatal("accepted a log without runs")
		}
		for _, f := range rep.Findings {
			if f.Severity < Unknown || f.Severity > Critical || f.Score < 0 || f.Score > 10 || f.ID() == "" {
				t.Fatalf("finding out of range: %+v", f)
			}
			if s := f.Suppression; s != nil && (len(s.Justification) > MaxJustification+len("…") || len(s.Kind) > 40+len("…")) {
				t.Fatalf("suppression not bounded: %+v", s)
			}
		}
		res := v.Check(rep, map[string]string{DefaultCreatedAnnotation: "2026-11-24T10:00:00Z"}, now)
		if res.Outcome == "" || res.Reason == "" {
			t.Fatalf("result without outcome or reason: %+v", res)
		}
		if data, err := json.Marshal(res.Details["findingList"]); err != nil || len(data) > MaxListBytes {
			t.Fatalf("findingList of %d bytes: %v", len(data), err)
		}
		// Suppressed findings are never denied.
		allSuppressed := true
		for _, f := range rep.Findings {
			allSuppressed = allSuppressed && f.Suppression != nil
		}
		if _, denied := res.Details["deniedFindings"]; denied && allSuppressed {
			t.Fatalf("a suppressed finding denied: %s", res.Reason)
		}
	})
}
