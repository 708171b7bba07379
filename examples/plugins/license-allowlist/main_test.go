package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/plugin"
)

const spdxType = "application/spdx+json"

var allowList = []any{"MIT", "Apache-2.0", "BSD-3-Clause", "Zlib", "GPL-2.0-or-later WITH GCC-exception-3.1"}

func TestSatisfied(t *testing.T) {
	allowed := map[string]bool{"mit": true, "apache-2.0": true, "gpl-2.0-or-later with gcc-exception-3.1": true, "bsd-3-clause": true}
	cases := []struct {
		expr string
		want bool
		err  string
	}{
		{"MIT", true, ""},
		{"mit", true, ""},
		{"GPL-3.0-only", false, ""},
		{"MIT OR GPL-3.0-only", true, ""},
		{"MIT AND GPL-3.0-only", false, ""},
		{"(MIT OR GPL-3.0-only) AND Apache-2.0", true, ""},
		{"MIT OR GPL-3.0-only AND Apache-2.0", true, ""}, // AND binds tighter
		{"GPL-3.0-only OR MIT AND LGPL-2.1-only", false, ""},
		{"GPL-2.0-or-later WITH GCC-exception-3.1", true, ""},
		{"GPL-2.0-or-later WITH Classpath-exception-2.0", false, ""},
		{"MIT WITH Some-exception", true, ""},
		{"((((BSD-3-Clause))))", true, ""},
		{"MIT AND", false, "unexpected end"},
		{"(MIT", false, "missing )"},
		{"MIT)", false, `unexpected ")"`},
		{"(MIT OR BSD-3-Clause) WITH X", false, "WITH must follow a license identifier"},
		{strings.Repeat("(", 40) + "MIT" + strings.Repeat(")", 40), false, "nest too deep"},
		{strings.Repeat("MIT AND ", 600) + "MIT", false, "too long"},
	}
	for _, c := range cases {
		got, err := satisfied(c.expr, allowed)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%.40q: err %v, want %q", c.expr, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %v, %v; want %v", c.expr, got, err, c.want)
		}
	}
}

// A request the way vouch writes it, for the checks that need no registry.
func TestRunRequestProblems(t *testing.T) {
	sbom := base64.StdEncoding.EncodeToString([]byte(`{"spdxVersion":"SPDX-2.3","packages":[]}`))
	cases := []struct{ name, req, outcome, reason string }{
		{"not JSON", `{`, "error", "the request is not JSON"},
		{"other version", `{"version":"vouch.plugin/v9"}`, "error", "this plugin speaks vouch.plugin/v1"},
		{"no allow-list", `{"version":"vouch.plugin/v1","verifier":{"name":"l","parameters":{}}}`, "error", "parameters.allowed is required"},
		{"bad parameters", `{"version":"vouch.plugin/v1","verifier":{"name":"l","parameters":{"allowed":"MIT"}}}`, "error", "parameters:"},
		{"empty SBOM", `{"version":"vouch.plugin/v1","verifier":{"name":"l","parameters":{"allowed":["MIT"]}},"blobs":[{"descriptor":{},"data":"` + sbom + `"}]}`, "passed", "all licenses of 0 packages are allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(strings.NewReader(c.req))
			if got.Version != Version || got.Outcome != c.outcome || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("got %+v, want %s with %q", got, c.outcome, c.reason)
			}
		})
	}
}

// The sample built as users build it, run by vouch's plugin verifier on
// SBOMs pushed to real registries, through the Executor.
func TestWithVouch(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "license-allowlist")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	verifier := func(params map[string]any) *plugin.Verifier {
		v, err := plugin.New("licenses", plugin.Config{Path: bin, ArtifactTypes: []string{spdxType}, Parameters: params})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	strict := verifier(map[string]any{"allowed": allowList})
	lenient := verifier(map[string]any{"allowed": allowList, "allowNoAssertion": true})
	unconfigured := verifier(nil)

	cases := []struct {
		name   string
		v      *plugin.Verifier
		sbom   []byte
		want   vouch.Outcome
		reason string
	}{
		{"allowed", strict, read("allowed.spdx.json"), vouch.Passed, "all licenses of 4 packages are allowed"},
		{"denied", strict, read("denied.spdx.json"), vouch.Failed,
			"2 license finding(s) not in the allow-list: mystery@0.1.0 (licenseConcluded NOASSERTION), readline@8.2.10-r0 (licenseDeclared GPL-3.0-or-later)"},
		{"denied, NOASSERTION allowed", lenient, read("denied.spdx.json"), vouch.Failed,
			"1 license finding(s) not in the allow-list: readline@8.2.10-r0 (licenseDeclared GPL-3.0-or-later)"},
		{"not SPDX", strict, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), vouch.Failed, "no SPDX 2.x JSON document among the artifact's 1 blobs"},
		{"no allow-list", unconfigured, read("allowed.spdx.json"), vouch.Errored, "parameters.allowed is required"},
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "docker-config.json")
			if err := os.WriteFile(cfg, []byte(`{}`), 0o600); err != nil {
				t.Fatal(err)
			}
			store, err := registry.New(registry.Options{PlainHTTP: true, DockerConfig: cfg})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := fmt.Sprintf("licenses/case%d", i)
					p := testbed.NewPusher(t, reg.Host, repo)
					img := p.Image("v1", repo)
					p.Attach(img, spdxType, spdxType, c.sbom)
					ref, err := vouch.ParseReference(reg.Host + "/" + repo + "@" + img.Digest.String())
					if err != nil {
						t.Fatal(err)
					}
					e := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{c.v}, Policy: policy.Default([]string{c.v.Name()})}
					report, err := e.Verify(context.Background(), ref)
					if err != nil {
						t.Fatal(err)
					}
					if len(report.Root.Referrers) != 1 || len(report.Root.Referrers[0].Results) != 1 {
						t.Fatalf("want one SBOM with one result, got %+v", report.Root.Referrers)
					}
					got := report.Root.Referrers[0].Results[0]
					if got.Outcome != c.want || !strings.Contains(got.Reason, c.reason) {
						t.Fatalf("got %s: %s\nwant %s: %s", got.Outcome, got.Reason, c.want, c.reason)
					}
					// The verdict follows: only an allowed SBOM lets the image in.
					if wantAllowed := c.want == vouch.Passed; (report.Verdict == vouch.Allowed) != wantAllowed {
						t.Fatalf("verdict %s: %s", report.Verdict, report.Reason)
					}
				})
			}
		})
	}
}
