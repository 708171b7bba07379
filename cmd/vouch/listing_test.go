//go:build policycode

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// listingRego denies an image whose SBOM lists busybox from Alpine, which
// no typed option of the sbom verifier below denies, and says what to turn
// on when the sbom verifier lists no packages.
const listingRego = `package vouch

spdx := "application/spdx+json"

sbom_results contains r if {
	some s in input.referrers
	s.artifactType == spdx
	some r in s.results
	r.verifier == "sbom"
}

deny contains msg if {
	some r in sbom_results
	some p in r.details.packageList
	p.ecosystem == "apk"
	p.name == "busybox"
	msg := sprintf("package %s %s (%s) is not allowed", [p.name, p.version, p.purl])
}

deny contains "the sbom verifier lists no packages: set listPackages: true" if {
	some r in sbom_results
	not r.details.packageList
}
`

// listingCEL denies an image whose vulnerability report has an
// unsuppressed finding of low severity, which the typed deny-list
// (critical) lets through, and says what to turn on when the vulns
// verifier lists no findings.
const listingCEL = `
      cel:
        validations:
          - expression: >-
              input.referrers.all(s, s.artifactType != "application/sarif+json" ||
                s.results.all(x, x.verifier != "vulns" || has(x.details.findingList)))
            message: "the vulns verifier lists no findings: set listFindings: true"
          - expression: >-
              input.referrers.all(s, s.artifactType != "application/sarif+json" ||
                s.results.all(x, x.verifier != "vulns" || !has(x.details.findingList) ||
                  x.details.findingList.all(f, f.suppressed || f.severity != "low")))
            message: a low-severity finding is not suppressed
`

// TestPolicyOnListedDetails is issue 14's listing: with listPackages and
// listFindings on, a Rego policy denies an image for a package its SBOM
// lists and a CEL policy for a finding's severity, though the typed
// verifier options deny neither; with them off, the same policies deny
// with the message that says which option to turn on. A real registry,
// an SPDX SBOM by syft and a Trivy SARIF report attached as referrers.
func TestPolicyOnListedDetails(t *testing.T) {
	fixture := func(dir, name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", "verifier", dir, "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// The SBOM is what the real syft CLI writes for a file system holding
	// an Alpine package database.
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for name, body := range map[string]string{
		"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
		"lib/apk/db/installed": "P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\n" +
			"P:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\n" +
			"P:zlib\nV:1.3.1-r1\nA:x86_64\nL:Zlib\no:zlib\n\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	syft := exec.Command(testbed.Bin(t, "syft"), "scan", "-q", "dir:"+root, "-o", "spdx-json")
	syft.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false", "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	spdx, err := syft.Output()
	if err != nil {
		t.Fatalf("syft: %v", err)
	}

	reg := testbed.Both(t)[0]
	p := testbed.NewPusher(t, reg.Host, "listing/app")
	img := p.Image("v1", "listing")
	p.Attach(img, "application/spdx+json", "application/spdx+json", spdx)
	p.Attach(img, "application/sarif+json", "application/sarif+json", fixture("vulnreport", "trivy-low.sarif"))
	ref := reg.Host + "/listing/app:v1"

	regoFile := filepath.Join(dir, "packages.rego")
	if err := os.WriteFile(regoFile, []byte(listingRego), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(list bool, policy string) string {
		body := fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
verifiers:
  - {name: sbom, type: sbom, sbom: {deniedLicenses: [AGPL-3.0-only], listPackages: %v}}
  - {name: vulns, type: vulnreport, vulnreport: {deniedSeverities: [critical], listFindings: %v}}
policy:
  scopes:
    - name: all
      repositories: ["*"]
%s`, list, list, policy)
		path := filepath.Join(dir, fmt.Sprintf("vouch-%v-%d.yaml", list, len(policy)))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	rego := "      rego:\n        files: [" + regoFile + "]\n"
	for _, tc := range []struct {
		name   string
		config string
		want   string
	}{
		{"Rego on a listed package", config(true, rego), "package busybox 1.36.1-r29 (pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3"},
		{"Rego without the listing", config(false, rego), "the sbom verifier lists no packages: set listPackages: true"},
		{"CEL on a listed finding", config(true, listingCEL), "a low-severity finding is not suppressed"},
		{"CEL without the listing", config(false, listingCEL), "the vulns verifier lists no findings: set listFindings: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := vouchRun(t, "verify", "--config", tc.config, ref)
			if code != exitDenied || !strings.Contains(out+stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, exitDenied, tc.want, out, stderr)
			}
			t.Logf("%s", strings.TrimSpace(out+stderr))
		})
	}
	// The typed options alone allow the image: the listing is what the
	// policies decide on.
	typed := config(true, "      require: [{artifactType: application/spdx+json, verifiers: [sbom]}, {artifactType: application/sarif+json, verifiers: [vulns]}]\n")
	if code, out, stderr := vouchRun(t, "verify", "--config", typed, ref); code != exitAllowed {
		t.Fatalf("typed policy: exit %d, want %d\n%s%s", code, exitAllowed, out, stderr)
	}
}
