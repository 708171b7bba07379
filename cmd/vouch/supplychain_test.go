package main

import (
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
)

// spdxDoc is a small SPDX 2.3 SBOM with the given packages (name, license).
func spdxDoc(created time.Time, packages ...[2]string) []byte {
	var pkgs []string
	for i, p := range packages {
		pkgs = append(pkgs, fmt.Sprintf(`{"SPDXID":"SPDXRef-Package-%d","name":%q,"versionInfo":"1.0","downloadLocation":"NOASSERTION","licenseConcluded":%q}`, i, p[0], p[1]))
	}
	return []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app","documentNamespace":"https://example.com/app","creationInfo":{"created":%q,"creators":["Tool: test"]},"packages":[%s]}`,
		created.UTC().Format(time.RFC3339), strings.Join(pkgs, ",")))
}

// TestSupplyChainPolicy is issue 5's bar: a subject with a signed SBOM and a
// fresh, signed, clean vulnerability report is allowed; removing the SBOM's
// signature, adding a GPL-3.0-only package under a GPL deny-list, or adding
// a critical CVE each denies it with a reason that names the culprit. Real
// registries, real notation-go signatures, the real config file path.
func TestSupplyChainPolicy(t *testing.T) {
	sarif := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", "verifier", "vulnreport", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	clean, critical := sarif("trivy-low.sarif"), sarif("trivy-log4j.sarif")
	now := time.Now()
	okSBOM := spdxDoc(now, [2]string{"zlib", "Zlib"}, [2]string{"busybox", "GPL-2.0-only"})
	gplSBOM := spdxDoc(now, [2]string{"zlib", "Zlib"}, [2]string{"readline", "GPL-3.0-only"})

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			signer := testbed.NewNotationSigner(t)
			p := testbed.NewPusher(t, reg.Host, "supply/app")
			attach := func(subject ocispec.Descriptor, artifactType string, data []byte, signed bool) {
				m := p.ArtifactManifest(subject, artifactType, artifactType, data)
				m.Annotations = map[string]string{ocispec.AnnotationCreated: now.UTC().Format(time.RFC3339)}
				d := p.Manifest(ocispec.MediaTypeImageManifest, m, "")
				if signed {
					signer.Sign(p, d)
				}
			}
			image := func(tag string, sbom []byte, sbomSigned bool, report []byte) {
				img := p.Image(tag, tag)
				signer.Sign(p, img)
				attach(img, "application/spdx+json", sbom, sbomSigned)
				attach(img, "application/sarif+json", report, true)
			}
			image("good", okSBOM, true, clean)
			image("unsigned-sbom", okSBOM, false, clean)
			image("gpl", gplSBOM, true, clean)
			image("critical", okSBOM, true, critical)

			dir := t.TempDir()
			write := func(name, body string) string {
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			write("trustpolicy.json", `{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}`)
			cfg := write("vouch.yaml", fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
trustStores:
  - name: ca:test
    files: [%q]
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: trustpolicy.json}}
  - {name: sbom, type: sbom, sbom: {deniedLicenses: [GPL-3.0-only]}}
  - {name: vulns, type: vulnreport, vulnreport: {deniedSeverities: [critical], maxAge: 24h}}
policy:
  scopes:
    - name: all
      repositories: ["*"]
      require:
        - artifactType: application/vnd.cncf.notary.signature
        - artifactType: application/spdx+json
          require: [{artifactType: application/vnd.cncf.notary.signature}]
        - artifactType: application/sarif+json
          require: [{artifactType: application/vnd.cncf.notary.signature}]
`, signer.CAFile))

			tests := []struct {
				tag     string
				allowed bool
				culprit string
			}{
				{"good", true, ""},
				{"unsigned-sbom", false, "no application/spdx+json verified"},
				{"gpl", false, "readline"},
				{"critical", false, "CVE-2021-44228"},
			}
			for _, tt := range tests {
				t.Run(tt.tag, func(t *testing.T) {
					code, out, stderr := vouchRun(t, "verify", "-o", "json", "--config", cfg, reg.Host+"/supply/app:"+tt.tag)
					var doc vouch.Reports
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatalf("exit %d: %v\n%s", code, err, stderr)
					}
					r := doc.Subjects[0]
					if (r.Verdict == vouch.Allowed) != tt.allowed || (code == exitAllowed) != tt.allowed {
						t.Fatalf("exit %d, verdict %s: %s", code, r.Verdict, r.Reason)
					}
					t.Logf("%s: %s", r.Verdict, r.Reason)
					if !strings.Contains(r.Reason, tt.culprit) {
						t.Fatalf("reason does not name %q: %s", tt.culprit, r.Reason)
					}
				})
			}
		})
	}
}
