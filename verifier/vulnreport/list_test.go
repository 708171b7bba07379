package vulnreport_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// TestListFindings: with listFindings, the details list every finding of
// the Trivy and Grype fixtures once per rule and package, the counted ones
// first, with their severity, level, message and whether an accepted
// suppression takes them out; the result is otherwise the same. Without
// the option they list none.
func TestListFindings(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // id severity level suppressed package
	}{
		{"trivy-suppressed.sarif", []string{
			"CVE-2021-45046 critical error false org.apache.logging.log4j:log4j-core",
			"CVE-2021-44228 critical error true org.apache.logging.log4j:log4j-core",
			"CVE-2024-5535 low note true libssl3",
		}},
		{"grype-suppressed.sarif", []string{
			"CVE-2021-44228 critical  false log4j-core",
			"CVE-2024-5535 low  true libssl3",
		}},
		{"trivy-low.sarif", []string{
			"CVE-2024-5535 low note false libssl3",
			"CVE-2024-2511 low note false libcrypto3",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := vulnreport.ParseSARIF(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			c := vulnreport.Config{DeniedSeverities: []string{"critical"}}
			off := newVerifier(t, c).Check(rep, nil, now)
			c.ListFindings = true
			on := newVerifier(t, c).Check(rep, nil, now)
			if _, ok := off.Details["findingList"]; ok {
				t.Errorf("findingList without listFindings: %v", off.Details)
			}
			if on.Outcome != off.Outcome || on.Reason != off.Reason {
				t.Errorf("listing changed the result: %s %q, was %s %q", on.Outcome, on.Reason, off.Outcome, off.Reason)
			}
			var got []string
			for _, f := range listOf(on.Details["findingList"]) {
				got = append(got, fmt.Sprint(f["id"], " ", f["severity"], " ", f["level"], " ", f["suppressed"], " ", f["package"]))
				if m := f["message"].(string); m == "" || len(m) > 256+8 {
					t.Errorf("%v: message of %d bytes", f["id"], len(m))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("findingList\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			t.Logf("first: %v", listOf(on.Details["findingList"])[0])
		})
	}
}

// TestListFindingsBounded: the listing stops at MaxFindingList entries, or
// sooner at MaxListBytes, and counts the rest; repeats of a rule and
// package at other locations are listed once.
func TestListFindingsBounded(t *testing.T) {
	// Grype writes no level; the message is what the listing bounds.
	sarif := func(n int, message string) *vulnreport.Report {
		var b strings.Builder
		b.WriteString(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","version":"0.74.0","rules":[]}},"results":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			// Each finding twice, at two locations.
			for j := range 2 {
				if j > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"ruleId":"CVE-2024-%d","level":"warning","message":{"text":"Severity: MEDIUM%s"}}`, i, message)
			}
		}
		b.WriteString(`]}]}`)
		rep, err := vulnreport.ParseSARIF([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	v := newVerifier(t, vulnreport.Config{ListFindings: true})
	for _, tc := range []struct {
		name   string
		rep    *vulnreport.Report
		n      int
		listed int
	}{
		{"few", sarif(30, ""), 30, 30},
		{"many", sarif(vulnreport.MaxFindingList+300, ""), vulnreport.MaxFindingList + 300, vulnreport.MaxFindingList},
		{"long messages", sarif(3000, strings.Repeat("y", 5000)), 3000, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := v.Check(tc.rep, nil, now)
			list := res.Details["findingList"].([]any)
			more, _ := res.Details["moreFindingList"].(int)
			if len(list)+more != tc.n {
				t.Fatalf("%d listed + %d more, want %d in all", len(list), more, tc.n)
			}
			if tc.listed >= 0 && len(list) != tc.listed {
				t.Errorf("%d listed, want %d", len(list), tc.listed)
			}
			if tc.listed < 0 && more == 0 {
				t.Errorf("all %d listed, want the byte budget to stop the listing", len(list))
			}
			data, err := json.Marshal(list)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > vulnreport.MaxListBytes {
				t.Errorf("the listing is %d bytes as JSON, over MaxListBytes %d", len(data), vulnreport.MaxListBytes)
			}
			t.Logf("%d listed, %d more, %d bytes as JSON", len(list), more, len(data))
		})
	}
}
