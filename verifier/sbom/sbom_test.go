package sbom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// now is the time the fixture cases are checked at: four days after the
// fixtures were "made".
var now = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parse(t testing.TB, name string) *sbom.Document {
	t.Helper()
	var doc *sbom.Document
	var err error
	if strings.HasSuffix(name, ".cdx.json") {
		doc, err = sbom.ParseCycloneDX(fixture(t, name))
	} else {
		doc, err = sbom.ParseSPDX(fixture(t, name))
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

func newVerifier(t testing.TB, c sbom.Config) *sbom.Verifier {
	t.Helper()
	v, err := sbom.New("sbom", c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestParse reads each fixture and checks what vouch takes from it: the
// format, the creation time, the tools, and each package with the license
// that counts.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file     string
		format   string
		version  string
		created  string
		tools    []string
		packages []string // name@version license [root]
	}{
		{"alpine.spdx.json", sbom.FormatSPDX, "SPDX-2.3", "2026-11-20T08:00:00Z", []string{"hand-written-1.0"}, []string{
			"demo/img@v1 NOASSERTION root", // the image: both licenses NOASSERTION
			"musl@1.2.5-r0 MIT",            // concluded NOASSERTION: the declared license counts
			"busybox@1.36.1-r29 GPL-2.0-only",
			"readline@8.2.10-r0 GPL-3.0-only", // the conclusion wins over the declaration
			"dual@2.0.0 MIT OR GPL-3.0-only",
			"openjdk-lib@21.0.5 GPL-2.0-only WITH Classpath-exception-2.0",
			"mystery@0.1 NOASSERTION",
			"oldtool@3.1 GPL v3",
			"log4j-core@2.14.1 Apache-2.0",
		}},
		{"minimal-2.2.spdx.json", sbom.FormatSPDX, "SPDX-2.2", "2026-11-23T00:00:00Z", []string{"hand-written-1.0"}, []string{
			"zlib@1.3.1 Zlib root", // documentDescribes
		}},
		{"missing-fields.spdx.json", sbom.FormatSPDX, "SPDX-2.3", "", nil, []string{
			"nameless-version@ ",
			"@1.0 ",
		}},
		{"app.cdx.json", sbom.FormatCycloneDX, "1.6", "2026-11-20T08:00:00Z", []string{"hand-written-1.0"}, []string{
			"demo/img@v1  root", // metadata.component
			"musl@1.2.5-r0 MIT",
			"readline@8.2.10-r0 GPL-3.0-or-later",
			"dual@2.0.0 MIT OR GPL-3.0-only",
			"two-licenses@1.1 Apache-2.0 AND GPL-3.0-only",
			"named-license@0.9 The Apache Software License, Version 2.0",
			"unlicensed@0.0.1 ",
			"app@1.0.0 Apache-2.0",
			"log4j-core@2.14.1 Apache-2.0", // nested in app
		}},
		{"legacy-1.4.cdx.json", sbom.FormatCycloneDX, "1.4", "2026-11-23T00:00:00+01:00", []string{"old-scanner-0.3"}, []string{
			"zlib@1.3.1 Zlib",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			doc := parse(t, tc.file)
			if doc.Format != tc.format || doc.SpecVersion != tc.version || doc.CreatedText != tc.created {
				t.Errorf("format %s %s created %q, want %s %s %q", doc.Format, doc.SpecVersion, doc.CreatedText, tc.format, tc.version, tc.created)
			}
			if tc.created != "" && doc.Created.IsZero() {
				t.Errorf("created %q did not parse", tc.created)
			}
			if strings.Join(doc.Tools, ",") != strings.Join(tc.tools, ",") {
				t.Errorf("tools %q, want %q", doc.Tools, tc.tools)
			}
			var got []string
			for _, p := range doc.Packages {
				s := p.Name + "@" + p.Version + " " + p.License
				if p.Root {
					s += " root"
				}
				got = append(got, s)
			}
			if strings.Join(got, "\n") != strings.Join(tc.packages, "\n") {
				t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.packages, "\n"))
			}
		})
	}
}

// TestCheck is the decision table: a fixture, a configuration, and the
// outcome with the offending packages.
func TestCheck(t *testing.T) {
	gpl := []string{"GPL-3.0-only", "GPL-2.0-only"}
	for _, tc := range []struct {
		name      string
		file      string
		config    sbom.Config
		outcome   vouch.Outcome
		reason    []string
		offending []string // name: problem
	}{
		{
			name: "GPL deny-list on an SPDX SBOM", file: "alpine.spdx.json", config: sbom.Config{DeniedLicenses: gpl},
			outcome: vouch.Failed,
			reason:  []string{"SPDX-2.3 SBOM of 9 packages: 4 of 9 packages fail the policy: busybox 1.36.1-r29 (denied license GPL-2.0-only), readline 8.2.10-r0 (denied license GPL-3.0-only), openjdk-lib 21.0.5 (denied license GPL-2.0-only WITH Classpath-exception-2.0), and 1 more"},
			offending: []string{
				"busybox: denied license GPL-2.0-only",
				"readline: denied license GPL-3.0-only",
				"openjdk-lib: denied license GPL-2.0-only WITH Classpath-exception-2.0",
				`oldtool: unparsable license "GPL v3": unexpected "v3" after a complete expression`,
			},
		},
		{
			name: "GPL-3.0-only alone, unparsable allowed", file: "alpine.spdx.json",
			config:    sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, AllowUnparsableLicenses: true},
			outcome:   vouch.Failed,
			reason:    []string{"1 of 9 packages fails the policy: readline 8.2.10-r0 (denied license GPL-3.0-only)"},
			offending: []string{"readline: denied license GPL-3.0-only"},
		},
		{
			name: "exception entry", file: "alpine.spdx.json",
			config:    sbom.Config{DeniedLicenses: []string{"GPL-2.0-only WITH Classpath-exception-2.0"}},
			outcome:   vouch.Failed,
			offending: []string{"openjdk-lib: denied license GPL-2.0-only WITH Classpath-exception-2.0", `oldtool: unparsable license "GPL v3"`},
		},
		{
			name: "licenses required", file: "alpine.spdx.json", config: sbom.Config{RequireLicenses: true},
			outcome:   vouch.Failed,
			reason:    []string{"1 of 9 packages fails the policy: mystery 0.1 (license NOASSERTION)"},
			offending: []string{"mystery: license NOASSERTION"}, // the image itself is exempt
		},
		{
			name: "denied packages by name, range and purl", file: "alpine.spdx.json",
			config:  sbom.Config{DeniedPackages: []string{"busybox@<1.36.1", "pkg:maven/org.apache.logging.log4j/log4j-core@<2.17.1", "Mystery"}},
			outcome: vouch.Failed,
			offending: []string{
				"mystery: denied package Mystery",
				"log4j-core: denied package pkg:maven/org.apache.logging.log4j/log4j-core@<2.17.1",
			},
		},
		{
			name: "busybox's release suffix is later than its version", file: "alpine.spdx.json",
			config: sbom.Config{DeniedPackages: []string{"busybox@<=1.36.1"}}, outcome: vouch.Passed,
			reason: []string{"SPDX-2.3 SBOM of 9 packages: no denied package"},
		},
		{
			name: "every check passes", file: "minimal-2.2.spdx.json",
			config:  sbom.Config{DeniedLicenses: gpl, RequireLicenses: true, DeniedPackages: []string{"zlib@<1.2.12"}, MaxAge: "7d"},
			outcome: vouch.Passed,
			reason:  []string{"SPDX-2.2 SBOM of 1 package: no denied license, every package licensed, no denied package, created 32h ago, within maxAge 7d"},
		},
		{
			name: "no checks", file: "alpine.spdx.json", outcome: vouch.Passed,
			reason: []string{"SPDX-2.3 SBOM of 9 packages: well-formed (no checks configured)"},
		},
		{
			name: "stale", file: "stale.spdx.json", config: sbom.Config{MaxAge: "30d"}, outcome: vouch.Failed,
			reason: []string{"SPDX-2.3 SBOM of 1 package: the SBOM is 2519d8h old, over maxAge 30d (created 2020-01-01T00:00:00Z); generate a new one"},
		},
		{
			name: "stale and denied", file: "stale.spdx.json", config: sbom.Config{MaxAge: "30d", DeniedPackages: []string{"zlib@<1.2.12"}}, outcome: vouch.Failed,
			reason:    []string{"1 of 1 package fails the policy: zlib 1.2.11 (denied package zlib@<1.2.12, compared as generic versions); the SBOM is 2519d8h old"},
			offending: []string{"zlib: denied package zlib@<1.2.12"},
		},
		{
			name: "no creation time with maxAge", file: "missing-fields.spdx.json", config: sbom.Config{MaxAge: "30d"}, outcome: vouch.Failed,
			reason: []string{"the SBOM states no creation time, so its age cannot be checked against maxAge 30d"},
		},
		{
			name: "missing names, versions and licenses", file: "missing-fields.spdx.json",
			config: sbom.Config{RequireLicenses: true, DeniedPackages: []string{"nameless-version@<2"}}, outcome: vouch.Failed,
			offending: []string{"nameless-version: no license; denied package nameless-version@<2 (version unknown)", ": no license"},
			reason:    []string{"(unnamed) 1.0 (no license)"},
		},
		{
			name: "CycloneDX GPL-3.0 deny-list", file: "app.cdx.json",
			config:  sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}},
			outcome: vouch.Failed,
			offending: []string{
				"readline: denied license GPL-3.0-or-later",
				"two-licenses: denied license GPL-3.0-only",
				`named-license: unparsable license "The Apache Software License, Version 2.0": unexpected "Apache" after a complete expression`,
			},
		},
		{
			name: "CycloneDX nested denied package, licenses required", file: "app.cdx.json",
			config:    sbom.Config{RequireLicenses: true, DeniedPackages: []string{"log4j-core@>=2.0.0,<2.17.1"}},
			outcome:   vouch.Failed,
			offending: []string{"unlicensed: no license", "log4j-core: denied package log4j-core@>=2.0.0,<2.17.1"},
		},
		{
			name: "CycloneDX timestamp with an offset", file: "legacy-1.4.cdx.json", config: sbom.Config{MaxAge: "48h"}, outcome: vouch.Passed,
			reason: []string{"CycloneDX-1.4 SBOM of 1 component: created 33h ago, within maxAge 2d"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := newVerifier(t, tc.config).Check(parse(t, tc.file), now)
			if res.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s (reason: %s)", res.Outcome, tc.outcome, res.Reason)
			}
			for _, r := range tc.reason {
				if !strings.Contains(res.Reason, r) {
					t.Errorf("reason %q\ndoes not contain %q", res.Reason, r)
				}
			}
			var got []string
			if list, ok := res.Details["offendingPackages"].([]any); ok {
				for _, o := range list {
					m := o.(map[string]any)
					got = append(got, fmt.Sprintf("%s: %s", m["name"], m["problem"]))
				}
			}
			if len(got) != len(tc.offending) {
				t.Fatalf("offending packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.offending, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.offending[i]) {
					t.Errorf("offending package %d: %q, want %q", i, got[i], tc.offending[i])
				}
			}
		})
	}
}

// bigSPDX makes an SPDX document of n packages, every tenth one GPL-3.0.
func bigSPDX(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"big","documentNamespace":"https://vouch.example/big",` +
		`"creationInfo":{"creators":["Tool: generator-1"],"created":"2026-11-24T00:00:00Z"},"packages":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		license := "MIT OR Apache-2.0"
		if i%10 == 0 {
			license = "(GPL-3.0-only AND BSD-3-Clause)"
		}
		fmt.Fprintf(&b, `{"name":"pkg-%d","SPDXID":"SPDXRef-Package-%d","versionInfo":"1.%d.0","downloadLocation":"NOASSERTION",`+
			`"licenseConcluded":%q,"copyrightText":"NOASSERTION","externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:npm/pkg-%d@1.%d.0"}]}`,
			i, i, i, license, i, i)
	}
	b.WriteString(`],"relationships":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"spdxElementId":"SPDXRef-DOCUMENT","relatedSpdxElement":"SPDXRef-Package-%d","relationshipType":"DESCRIBES"}`, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// bigCycloneDX makes a CycloneDX 1.6 BOM of n components, every tenth one
// GPL-3.0.
func bigCycloneDX(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"timestamp":"2026-11-24T00:00:00Z"},"components":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		license := `{"expression":"MIT OR Apache-2.0"}`
		if i%10 == 0 {
			license = `{"license":{"id":"GPL-3.0-only"}},{"license":{"id":"BSD-3-Clause"}}`
		}
		fmt.Fprintf(&b, `{"bom-ref":"c%d","type":"library","name":"pkg-%d","version":"1.%d.0","licenses":[%s],"purl":"pkg:npm/pkg-%d@1.%d.0"}`, i, i, i, license, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestLargeSBOM checks SBOMs of 10,000 packages in each format, 1,000 of
// them under a denied license, and logs how long parsing and checking take.
func TestLargeSBOM(t *testing.T) {
	data := bigSPDX(10000)
	v := newVerifier(t, sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, DeniedPackages: []string{"pkg-5@<1.5.1", "left-pad"}, RequireLicenses: true})
	start := time.Now()
	doc, err := sbom.ParseSPDX(data)
	if err != nil {
		t.Fatal(err)
	}
	parsed := time.Since(start)
	res := v.Check(doc, now)
	checked := time.Since(start) - parsed
	t.Logf("SPDX of 10,000 packages (%d KiB): parsed in %v, checked in %v", len(data)>>10, parsed.Round(time.Millisecond), checked.Round(time.Millisecond))
	if res.Outcome != vouch.Failed {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	if n := len(res.Details["offendingPackages"].([]any)); n != sbom.MaxListed {
		t.Errorf("%d offending packages listed, want %d", n, sbom.MaxListed)
	}
	if more := res.Details["moreOffendingPackages"]; more != 1001-sbom.MaxListed {
		t.Errorf("moreOffendingPackages = %v, want %d", more, 1001-sbom.MaxListed)
	}
	want := "SPDX-2.3 SBOM of 10000 packages: 1001 of 10000 packages fail the policy: pkg-0 1.0.0 (denied license GPL-3.0-only), pkg-5 1.5.0 (denied package pkg-5@<1.5.1, compared as semver versions), pkg-10 1.10.0 (denied license GPL-3.0-only), and 998 more"
	if res.Reason != want {
		t.Errorf("reason\n%s\nwant\n%s", res.Reason, want)
	}
	if parsed > 20*time.Second {
		t.Errorf("parsing 10,000 packages took %v", parsed)
	}

	data = bigCycloneDX(10000)
	start = time.Now()
	doc, err = sbom.ParseCycloneDX(data)
	if err != nil {
		t.Fatal(err)
	}
	parsed = time.Since(start)
	res = v.Check(doc, now)
	checked = time.Since(start) - parsed
	t.Logf("CycloneDX of 10,000 components (%d KiB): parsed in %v, checked in %v", len(data)>>10, parsed.Round(time.Millisecond), checked.Round(time.Millisecond))
	if !strings.HasPrefix(res.Reason, "CycloneDX-1.6 SBOM of 10000 components: 1001 of 10000 components fail the policy: pkg-0 1.0.0 (denied license GPL-3.0-only)") {
		t.Errorf("reason %s", res.Reason)
	}
}

// TestMalformed feeds SBOMs that are broken or hostile: each is refused
// with a reason, never a crash or a long stall.
func TestMalformed(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 50000) + "1" + strings.Repeat("}", 50000)
	nulls := `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","relationships":[` + strings.Repeat("null,", 200000) + `null]}`
	for _, tc := range []struct {
		name, format, data, want string
	}{
		{"truncated SPDX", "spdx", string(fixture(t, "malformed.spdx.json")), "malformed JSON"},
		{"empty", "spdx", "", "malformed JSON"},
		{"SPDX array", "spdx", "[]", "the document is a JSON array, not an object"},
		{"deep SPDX", "spdx", `{"spdxVersion":"SPDX-2.3","x":` + deep + `}`, "JSON nested deeper than 100 levels"},
		{"deep CycloneDX", "cdx", `{"bomFormat":"CycloneDX","x":` + deep + `}`, "JSON nested deeper than 100 levels"},
		{"no spdxVersion", "spdx", `{"bomFormat":"CycloneDX"}`, "no spdxVersion: not an SPDX JSON document"},
		{"SPDX 3", "spdx", `{"spdxVersion":"SPDX-3.0"}`, `unsupported spdxVersion "SPDX-3.0"`},
		{"null package", "spdx", `{"spdxVersion":"SPDX-2.3","packages":[null]}`, "packages[0] is null"},
		{"200,000 null relationships", "spdx", nulls, "relationships[0] is null"},
		{"package of wrong type", "spdx", `{"spdxVersion":"SPDX-2.3","packages":[{"name":5}]}`, "expected a string, got number"},
		{"not CycloneDX", "cdx", `{"spdxVersion":"SPDX-2.3"}`, `not a CycloneDX JSON BOM`},
		{"no specVersion", "cdx", `{"bomFormat":"CycloneDX"}`, "no specVersion"},
		{"CycloneDX 1.1", "cdx", `{"bomFormat":"CycloneDX","specVersion":"1.1"}`, `unsupported CycloneDX specVersion "1.1"`},
		{"CycloneDX 2.0", "cdx", `{"bomFormat":"CycloneDX","specVersion":"2.0"}`, `unsupported CycloneDX specVersion "2.0"`},
		{"component of wrong type", "cdx", `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":["x"]}]}`, "expected a string, got array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			var err error
			if tc.format == "cdx" {
				_, err = sbom.ParseCycloneDX([]byte(tc.data))
			} else {
				_, err = sbom.ParseSPDX([]byte(tc.data))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		config sbom.Config
		want   string
	}{
		{sbom.Config{DeniedLicenses: []string{"GPL-3.0-only", "AGPL-3.0-or-later OR SSPL-1.0", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-Proprietary"},
			DeniedPackages: []string{"log4j-core@<2.17.1", "@angular/core", "pkg:npm/left-pad"}, MaxAge: "30d", RequireLicenses: true}, ""},
		{sbom.Config{DeniedLicenses: []string{"MIT", "GPL v3"}}, `verifiers[1].sbom.deniedLicenses[1]: "GPL v3" is not an SPDX license expression: unexpected "v3" after a complete expression`},
		{sbom.Config{DeniedLicenses: []string{"MIT AND GPL-3.0-only"}}, `verifiers[1].sbom.deniedLicenses[0]: "MIT AND GPL-3.0-only": a denied entry is one license`},
		{sbom.Config{DeniedLicenses: []string{"NOASSERTION"}}, `use requireLicenses`},
		{sbom.Config{DeniedPackages: []string{"ok", "bad@"}}, `verifiers[1].sbom.deniedPackages[1]: "bad@": nothing after "@"`},
		{sbom.Config{DeniedPackages: []string{"x@~1.2"}}, `verifiers[1].sbom.deniedPackages[0]: "x@~1.2": "~1.2" is not a version constraint`},
		{sbom.Config{MaxAge: "a month"}, `verifiers[1].sbom.maxAge: "a month" is not a duration`},
		{sbom.Config{MaxAge: "0s"}, `verifiers[1].sbom.maxAge: "0s": must be positive`},
	} {
		err := tc.config.Validate("verifiers[1].sbom")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.config, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.config, err, tc.want)
		}
	}
	if _, err := sbom.New("", sbom.Config{MaxAge: "soon"}); err == nil || !strings.HasPrefix(err.Error(), "sbom.maxAge: ") {
		t.Errorf("New: error %v, want one naming sbom.maxAge", err)
	}
}

func TestHandles(t *testing.T) {
	v := newVerifier(t, sbom.Config{})
	for typ, want := range map[string]bool{
		"application/spdx+json":                           true,
		"application/vnd.cyclonedx+json":                  true,
		"application/vnd.cyclonedx+json;version=1.6":      true,
		"application/vnd.cyclonedx+json; version=1.5":     true,
		"Application/SPDX+JSON":                           true,
		"application/vnd.cyclonedx+xml":                   false,
		"text/spdx":                                       false,
		"application/sarif+json":                          false,
		"application/vnd.dev.sigstore.bundle.v0.3+json":   true,
		"application/vnd.dev.cosign.artifact.att.v1+json": true,
		"application/vnd.in-toto+json":                    true,
		"application/vnd.dev.cosign.artifact.sig.v1+json": false,
		"": false,
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

// sbomResults returns the reasons of the verifier named "sbom" on the
// nodes of root, each prefixed by its outcome.
func sbomResults(root *vouch.Node) []string {
	var out []string
	root.Walk(func(n *vouch.Node, _ int) {
		for _, r := range n.Results {
			if r.Verifier == "sbom" {
				out = append(out, string(r.Outcome)+": "+r.Reason)
			}
		}
	})
	return out
}

func containsAll(t *testing.T, got []string, want ...string) {
	t.Helper()
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("results:\n%s\nhave no %q", all, w)
		}
	}
}

// TestRegistryLayers pushes hand-written SBOMs to both test registries in
// the shapes clients attach them, and verifies them through the Executor
// and the registry store: the SBOM's own media type on the layer, a generic
// layer under an SBOM artifact type, a versioned CycloneDX type, and
// artifacts that hold no single SBOM.
func TestRegistryLayers(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, MaxAge: "30d"})
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow}
	cdxV16 := sbom.MediaTypeCycloneDX + ";version=1.6"
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/sbom-layers")
			img := p.Image("", "layers on "+reg.Name)
			p.Attach(img, sbom.MediaTypeSPDX, sbom.MediaTypeSPDX, fixture(t, "minimal-2.2.spdx.json"))
			p.Attach(img, sbom.MediaTypeCycloneDX, ocispec.MediaTypeImageLayer, fixture(t, "app.cdx.json"))
			p.Attach(img, cdxV16, cdxV16, fixture(t, "legacy-1.4.cdx.json"))
			p.Attach(img, sbom.MediaTypeSPDX, sbom.MediaTypeSPDX, fixture(t, "malformed.spdx.json"))
			two := p.ArtifactManifest(img, sbom.MediaTypeSPDX, sbom.MediaTypeSPDX, fixture(t, "minimal-2.2.spdx.json"))
			two.Layers = append(two.Layers, p.Blob(sbom.MediaTypeCycloneDX, fixture(t, "app.cdx.json")))
			p.Manifest(ocispec.MediaTypeImageManifest, two, "")
			// An image pretending to be an SBOM: no layer is one.
			fake := p.ArtifactManifest(img, sbom.MediaTypeSPDX, "text/plain", []byte("hello"))
			fake.Layers = append(fake.Layers, p.Blob("text/plain", []byte("world")))
			p.Manifest(ocispec.MediaTypeImageManifest, fake, "")

			report, err := exec.Verify(ctx, testbed.Ref(t, reg.Host+"/demo/sbom-layers@"+img.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			got := sbomResults(report.Root)
			if len(got) != 6 {
				t.Fatalf("%d results, want 6:\n%s", len(got), strings.Join(got, "\n"))
			}
			containsAll(t, got,
				"passed: SPDX-2.2 SBOM of 1 package: no denied license, created ",
				"failed: CycloneDX-1.6 SBOM of 9 components: 3 of 9 components fail the policy: readline 8.2.10-r0 (denied license GPL-3.0-or-later), two-licenses 1.1 (denied license GPL-3.0-only), named-license 0.9 (unparsable license",
				"passed: CycloneDX-1.4 SBOM of 1 component: no denied license, created ",
				"failed: malformed SPDX SBOM: malformed JSON",
				"failed: the artifact has 2 SBOM layers; vouch checks an artifact that holds one",
				"failed: none of the artifact's 2 layers has an SBOM media type",
			)
		})
	}
}

// TestRegistryEcosystems attaches SPDX and CycloneDX SBOMs whose packages
// come from five ecosystems to an image in both test registries, and
// checks deny rules whose outcome depends on each ecosystem's version
// order: a Debian epoch, an RPM epoch in the purl, a PyPI pre-release, an
// npm semver pre-release range, and a license not on the SPDX list.
func TestRegistryEcosystems(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/sbom-ecosystems")
			img := p.Image("", "ecosystems on "+reg.Name)
			p.Attach(img, sbom.MediaTypeSPDX, sbom.MediaTypeSPDX, fixture(t, "ecosystems.spdx.json"))
			p.Attach(img, sbom.MediaTypeCycloneDX, sbom.MediaTypeCycloneDX, fixture(t, "ecosystems.cdx.json"))
			ref := testbed.Ref(t, reg.Host+"/demo/sbom-ecosystems@"+img.Digest.String())
			for _, tc := range []struct {
				name   string
				config sbom.Config
				want   []string
			}{
				{
					name: "each ecosystem's order denies",
					config: sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, DeniedPackages: []string{
						"zlib1g@>=1:1.2.13.dfsg-1,<1:1.2.13.dfsg-1+b1", // Debian, with epoch
						"openssl-libs@<1:3.0.7-28.el9",                 // RPM, the epoch from the purl's qualifier
						"django@<5.0",                                  // PyPI: 5.0rc1 is before 5.0
						"pkg:npm/left-pad@>=1.3.0-beta.1,<1.3.0",       // npm: beta.2 is in the range
					}},
					want: []string{
						"zlib1g: denied package zlib1g@>=1:1.2.13.dfsg-1,<1:1.2.13.dfsg-1+b1, compared as Debian versions",
						"openssl-libs: denied package openssl-libs@<1:3.0.7-28.el9, compared as RPM versions",
						"django: denied package django@<5.0, compared as PEP 440 versions",
						"left-pad: denied package pkg:npm/left-pad@>=1.3.0-beta.1,<1.3.0, compared as semver versions",
						"mystery-lib: unknown license Mystery-License-1.0 (not on the SPDX license list)",
					},
				},
				{
					// The generic order would deny the first two: it reads
					// neither epoch.
					name: "each ecosystem's order allows",
					config: sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, AllowUnparsableLicenses: true, DeniedPackages: []string{
						"zlib1g@<1.3",
						"openssl-libs@<3.0.8",
						"django@<5.0rc1",
						"pkg:npm/left-pad@<1.3.0-beta.2",
						"pkg:npm/left-pad@>=1.3.0-beta.10", // beta.2 is before beta.10 in semver
					}},
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					v := newVerifier(t, tc.config)
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow}
					report, err := exec.Verify(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					var results []vouch.Result
					report.Root.Walk(func(n *vouch.Node, _ int) {
						for _, r := range n.Results {
							if r.Verifier == "sbom" {
								results = append(results, r)
							}
						}
					})
					if len(results) != 2 {
						t.Fatalf("%d SBOM results, want 2: %+v", len(results), results)
					}
					for _, r := range results {
						var got []string
						if list, ok := r.Details["offendingPackages"].([]any); ok {
							for _, o := range list {
								m := o.(map[string]any)
								got = append(got, fmt.Sprintf("%s: %s", m["name"], m["problem"]))
							}
						}
						if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
							t.Errorf("%s: offending packages:\n%s\nwant:\n%s", r.Details["format"], strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
						}
						if want := map[bool]vouch.Outcome{true: vouch.Passed, false: vouch.Failed}[len(tc.want) == 0]; r.Outcome != want {
							t.Errorf("%s: outcome %s, want %s: %s", r.Details["format"], r.Outcome, want, r.Reason)
						}
					}
				})
			}
		})
	}
}

// jsonField reads one top-level field of a JSON document, for checks on
// what syft wrote.
func jsonField(t *testing.T, data []byte, field string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m[field]
}
