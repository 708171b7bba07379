//go:build policycode

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy/policytest"
)

// TestPolicyThreeWays is issue 14's bar: the shipped config policies
// (examples/config) and their Rego and CEL versions (examples/policies)
// give identical verdicts on the same real reports: a real registry (both
// kinds), real notation-go signatures by a trusted and an untrusted CA,
// real SPDX SBOMs checked by the sbom verifier and SARIF reports checked
// by the vulnreport verifier, recorded once by `vouch verify --verify-all
// -o json`. Then `vouch policy test --compare` finds exactly the subjects
// whose verdict changes between the two shipped policies, and a test
// suite passes and fails as it should.
func TestPolicyThreeWays(t *testing.T) {
	readTestdata := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", "verifier", "vulnreport", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	clean, critical := readTestdata("trivy-low.sarif"), readTestdata("trivy-log4j.sarif")
	now := time.Now()
	okSBOM := spdxDoc(now, [2]string{"zlib", "Zlib"})
	gplSBOM := spdxDoc(now, [2]string{"readline", "GPL-3.0-only"})

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			trusted, untrusted := testbed.NewNotationSigner(t), testbed.NewNotationSigner(t)
			type image struct {
				tag                      string
				trustedSig, untrustedSig bool
				sbom                     []byte
				sbomSigned               bool
				sarif                    []byte
			}
			images := []image{
				{"good", true, false, okSBOM, true, clean},
				{"unsigned", false, false, okSBOM, true, clean},
				{"untrusted", false, true, okSBOM, true, clean},
				{"both-signers", true, true, okSBOM, true, clean},
				{"unsigned-sbom", true, false, okSBOM, false, clean},
				{"gpl", true, false, gplSBOM, true, clean},
				{"no-sbom", true, false, nil, false, clean},
				{"critical", true, false, okSBOM, true, critical},
			}
			var subjects []string
			for _, repo := range []string{"prod/app", "staging/app", "other/app"} {
				p := testbed.NewPusher(t, reg.Host, repo)
				attach := func(subject ocispec.Descriptor, artifactType string, data []byte, signed bool) {
					m := p.ArtifactManifest(subject, artifactType, artifactType, data)
					m.Annotations = map[string]string{ocispec.AnnotationCreated: now.UTC().Format(time.RFC3339)}
					d := p.Manifest(ocispec.MediaTypeImageManifest, m, "")
					if signed {
						trusted.Sign(p, d)
					}
				}
				for _, im := range images {
					img := p.Image(im.tag, repo+im.tag)
					if im.trustedSig {
						trusted.Sign(p, img)
					}
					if im.untrustedSig {
						untrusted.Sign(p, img)
					}
					if im.sbom != nil {
						attach(img, "application/spdx+json", im.sbom, im.sbomSigned)
					}
					attach(img, "application/sarif+json", im.sarif, true)
					subjects = append(subjects, reg.Host+"/"+repo+":"+im.tag)
				}
			}

			dir := t.TempDir()
			write := func(name, body string) string {
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			write("trustpolicy.json", `{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}`)
			header := fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
trustStores:
  - name: ca:test
    files: [%q]
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: trustpolicy.json}}
  - {name: sbom, type: sbom, sbom: {deniedLicenses: [GPL-3.0-only]}}
  - {name: vulns, type: vulnreport, vulnreport: {deniedSeverities: [critical], maxAge: 24h}}
`, trusted.CAFile)
			// withPolicy writes a config with the test's trust and verifiers
			// and the policy section of the example file, its repository
			// patterns aimed at the test registry and its Rego files found.
			withPolicy := func(example string) string {
				data, err := os.ReadFile(example)
				if err != nil {
					t.Fatal(err)
				}
				var doc map[string]any
				if err := yaml.Unmarshal(data, &doc); err != nil {
					t.Fatal(err)
				}
				pol, err := yaml.Marshal(map[string]any{"policy": doc["policy"]})
				if err != nil {
					t.Fatal(err)
				}
				abs, err := filepath.Abs(filepath.Dir(example))
				if err != nil {
					t.Fatal(err)
				}
				s := strings.NewReplacer("registry.example.com", reg.Host, "'oci-layout:*'", "'*'", "oci-layout:*", "'*'").Replace(string(pol))
				s = strings.ReplaceAll(s, "- signed", "- "+abs+"/signed")
				s = strings.ReplaceAll(s, "- production.rego", "- "+abs+"/production.rego")
				name := strings.ReplaceAll(strings.TrimPrefix(example, "../../examples/"), "/", "-")
				return write(name, header+s)
			}

			// Record once, every referrer checked.
			base := withPolicy("../../examples/config/quickstart.yaml")
			code, out, stderr := vouchRun(t, append([]string{"verify", "--verify-all", "-o", "json", "--config", base}, subjects...)...)
			if code == exitUndecided {
				t.Fatalf("recording: exit %d\n%s", code, stderr)
			}
			reportsFile := write("reports.json", out)
			rs, err := policytest.ReadReports(reportsFile)
			if err != nil {
				t.Fatal(err)
			}

			ctx := context.Background()
			decider := func(path string) *policytest.Decider {
				cfg, err := config.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				d, err := policytest.NewDecider(ctx, *cfg.Policy, []string{"notation", "sbom", "vulns"})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			verdicts := map[string]map[string]policytest.Outcome{}
			for _, shipped := range []string{"quickstart", "vouch"} {
				files := []string{
					withPolicy("../../examples/config/" + shipped + ".yaml"),
					withPolicy("../../examples/policies/" + shipped + "-rego.yaml"),
					withPolicy("../../examples/policies/" + shipped + "-cel.yaml"),
				}
				ds := []*policytest.Decider{decider(files[0]), decider(files[1]), decider(files[2])}
				seen := map[vouch.Verdict]int{}
				verdicts[shipped] = map[string]policytest.Outcome{}
				for _, r := range rs.Subjects {
					var got []policytest.Outcome
					for _, d := range ds {
						got = append(got, d.Decide(ctx, r, ""))
					}
					t.Logf("%s %s: config %s (%s) | Rego %s (%s) | CEL %s (%s)", shipped, r.Subject, got[0].Verdict, got[0].Reason, got[1].Verdict, got[1].Reason, got[2].Verdict, got[2].Reason)
					for i := 1; i < 3; i++ {
						if got[i].Verdict != got[0].Verdict || got[i].Waived != got[0].Waived {
							t.Errorf("%s %s: %s gives %s (waived %v: %s), the config policy %s (waived %v: %s)", shipped, r.Subject, []string{"", "Rego", "CEL"}[i],
								got[i].Verdict, got[i].Waived, got[i].Reason, got[0].Verdict, got[0].Waived, got[0].Reason)
						}
					}
					seen[got[0].Verdict]++
					verdicts[shipped][r.Subject] = got[0]
				}
				if seen[vouch.Allowed] == 0 || seen[vouch.Denied] == 0 {
					t.Fatalf("%s: verdicts %v: the subjects do not tell policies apart", shipped, seen)
				}
				// The CLI agrees: nothing changes from the config policy to
				// its Rego and CEL versions.
				for _, f := range files[1:] {
					code, out, stderr := vouchRun(t, "policy", "test", "--compare", files[0], f, "--report", reportsFile)
					if code != exitAllowed || !strings.Contains(out, fmt.Sprintf("0 of %d subjects change verdict", len(rs.Subjects))) {
						t.Fatalf("compare %s %s: exit %d\n%s%s", files[0], f, code, out, stderr)
					}
				}
			}

			// The what-if: from quickstart's policy (signature and signed
			// SBOM everywhere) to vouch.yaml's (signature by default, SBOM
			// in production, staging only warns).
			var want []string
			for _, tag := range []string{"unsigned-sbom", "gpl", "no-sbom"} {
				want = append(want, reg.Host+"/other/app:"+tag)
			}
			for _, tag := range []string{"unsigned", "untrusted", "unsigned-sbom", "gpl", "no-sbom"} {
				want = append(want, reg.Host+"/staging/app:"+tag)
			}
			code, out, stderr = vouchRun(t, "policy", "test", "-o", "json", "--compare",
				withPolicy("../../examples/config/quickstart.yaml"), withPolicy("../../examples/policies/vouch-rego.yaml"), "--report", reportsFile)
			var cmp struct {
				Changes []policytest.Change `json:"changes"`
			}
			if err := json.Unmarshal([]byte(out), &cmp); err != nil || code != exitDenied {
				t.Fatalf("compare: exit %d, %v\n%s%s", code, err, out, stderr)
			}
			var got []string
			for _, c := range cmp.Changes {
				got = append(got, c.Subject)
				if c.Old.Verdict != vouch.Denied || c.New.Verdict != vouch.Allowed || c.Old.Reason == "" || c.New.Reason == "" {
					t.Errorf("change %+v: want denied to allowed, with both reasons", c)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("compare lists\n%v\nwant\n%v", got, want)
			}

			// A suite: right expectations pass, a wrong one fails the run.
			suite := func(wrong bool) string {
				verdict := "denied"
				if wrong {
					verdict = "allowed"
				}
				return write(fmt.Sprintf("suite-%v.yaml", wrong), fmt.Sprintf(`version: vouch.policy.test/v1
config: %s
cases:
  - {name: good in prod, report: reports.json, subject: %q, verdict: allowed}
  - {name: untrusted in prod, report: reports.json, subject: %q, verdict: denied, reason: verified by notation}
  - {name: unsigned SBOM in staging warns, report: reports.json, subject: %q, verdict: allowed}
  - {name: unsigned in other, report: reports.json, subject: %q, verdict: %s}
  - {name: good in prod verified live, subject: %q, verdict: allowed}
`, filepath.Base(withPolicy("../../examples/policies/vouch-cel.yaml")), reg.Host+"/prod/app:good", reg.Host+"/prod/app:untrusted",
					reg.Host+"/staging/app:unsigned-sbom", reg.Host+"/other/app:unsigned", verdict, reg.Host+"/prod/app:good"))
			}
			if code, out, stderr := vouchRun(t, "policy", "test", "--suite", suite(false)); code != exitAllowed || !strings.Contains(out, "5 passed, 0 failed") {
				t.Fatalf("suite: exit %d\n%s%s", code, out, stderr)
			} else {
				t.Logf("suite:\n%s", out)
			}
			if code, out, stderr := vouchRun(t, "policy", "test", "--suite", suite(true)); code != exitDenied || !strings.Contains(out, "4 passed, 1 failed") || !regexp.MustCompile(`FAIL +unsigned in other `).MatchString(out) {
				t.Fatalf("wrong suite: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}
