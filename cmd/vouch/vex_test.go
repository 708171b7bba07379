package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// openVEX writes an OpenVEX 0.2.0 document with one statement per
// vulnerability, each about product.
func openVEX(product, status string, vulns ...string) []byte {
	var stmts []string
	for _, v := range vulns {
		extra := ""
		if status == vulnreport.VEXNotAffected {
			extra = `,"justification":"vulnerable_code_not_in_execute_path","impact_statement":"JNDI lookups are disabled"`
		}
		stmts = append(stmts, fmt.Sprintf(`{"vulnerability":{"name":%q},"products":[{"@id":%q}],"status":%q%s}`, v, product, status, extra))
	}
	return []byte(fmt.Sprintf(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.com/vex/%d","author":"Example Security","timestamp":%q,"version":1,"statements":[%s]}`,
		time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339), strings.Join(stmts, ",")))
}

// TestVEX is issue 16's VEX bar: a vulnerability report with critical
// findings is allowed when an OpenVEX document attached with the real
// `oras attach` and signed by a trusted notation identity (notation-go,
// a test CA) says the image is not affected; the same document unsigned,
// signed by an untrusted CA, about another CVE, about another image, or
// saying under_investigation, suppresses nothing and the image is denied.
// Real registries of both kinds, real SARIF, the real config file path.
func TestVEX(t *testing.T) {
	report, err := os.ReadFile(filepath.Join("..", "..", "verifier", "vulnreport", "testdata", "trivy-log4j.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	criticals := []string{"CVE-2021-44228", "CVE-2021-45046"}
	now := time.Now()
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			signer := testbed.NewNotationSigner(t)
			rogue := testbed.NewNotationSigner(t)
			const repo = "vex/app"
			p := testbed.NewPusher(t, reg.Host, repo)
			dir := t.TempDir()
			// attachAs attaches doc to subject with the oras CLI, as
			// artifactType, and returns the manifest's descriptor.
			attachAs := func(artifactType string, subject ocispec.Descriptor, doc []byte) ocispec.Descriptor {
				path := filepath.Join(dir, "vex.json")
				if err := os.WriteFile(path, doc, 0o600); err != nil {
					t.Fatal(err)
				}
				out := testbed.Run(t, nil, "oras", "attach", "--plain-http", "--disable-path-validation", "--format", "json",
					"--artifact-type", artifactType,
					fmt.Sprintf("%s/%s@%s", reg.Host, repo, subject.Digest), path+":"+artifactType)
				var res struct {
					Digest    string `json:"digest"`
					MediaType string `json:"mediaType"`
					Size      int64  `json:"size"`
				}
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("oras attach output %q: %v", out, err)
				}
				d, err := digest.Parse(res.Digest)
				if err != nil {
					t.Fatalf("oras attach output %q: %v", out, err)
				}
				return ocispec.Descriptor{MediaType: res.MediaType, Digest: d, Size: res.Size}
			}
			attachVEX := func(subject ocispec.Descriptor, doc []byte) ocispec.Descriptor {
				return attachAs(vulnreport.VEXMediaType, subject, doc)
			}
			purl := func(img ocispec.Descriptor) string {
				return fmt.Sprintf("pkg:oci/app@%s?repository_url=%s/%s", strings.Replace(img.Digest.String(), ":", "%3A", 1), reg.Host, repo)
			}
			// image pushes an image with a signed critical report and, when
			// vex is not nil, the VEX document vex(image), signed by by.
			image := func(tag string, vex func(img ocispec.Descriptor) []byte, by *testbed.NotationSigner) {
				img := p.Image(tag, tag)
				signer.Sign(p, img)
				m := p.ArtifactManifest(img, vulnreport.MediaType, vulnreport.MediaType, report)
				m.Annotations = map[string]string{ocispec.AnnotationCreated: now.UTC().Format(time.RFC3339)}
				signer.Sign(p, p.Manifest(ocispec.MediaTypeImageManifest, m, ""))
				if vex == nil {
					return
				}
				d := attachVEX(img, vex(img))
				if by != nil {
					by.Sign(p, d)
				}
			}
			other := p.Image("other", "other")
			notAffected := func(img ocispec.Descriptor) []byte {
				return openVEX(purl(img), vulnreport.VEXNotAffected, criticals...)
			}
			image("no-vex", nil, nil)
			image("vex", notAffected, signer)
			image("vex-by-reference", func(img ocispec.Descriptor) []byte {
				return openVEX(fmt.Sprintf("%s/%s@%s", reg.Host, repo, img.Digest), vulnreport.VEXFixed, criticals...)
			}, signer)
			image("vex-unsigned", notAffected, nil)
			image("vex-untrusted", notAffected, rogue)
			image("vex-other-cve", func(img ocispec.Descriptor) []byte {
				return openVEX(purl(img), vulnreport.VEXNotAffected, "CVE-2021-44228", "CVE-2099-0001")
			}, signer)
			image("vex-other-product", func(ocispec.Descriptor) []byte {
				return openVEX(purl(other), vulnreport.VEXNotAffected, criticals...)
			}, signer)
			image("vex-investigating", func(img ocispec.Descriptor) []byte {
				return openVEX(purl(img), vulnreport.VEXUnderInvestigation, criticals...)
			}, signer)
			// CycloneDX VEX, beside a signed CycloneDX SBOM that is no VEX.
			cdx := func(tag, state string) {
				img := p.Image(tag, tag)
				signer.Sign(p, img)
				m := p.ArtifactManifest(img, vulnreport.MediaType, vulnreport.MediaType, report)
				m.Annotations = map[string]string{ocispec.AnnotationCreated: now.UTC().Format(time.RFC3339)}
				signer.Sign(p, p.Manifest(ocispec.MediaTypeImageManifest, m, ""))
				signer.Sign(p, attachAs(vulnreport.CycloneDXMediaType, img, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"log4j-core","purl":"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}`)))
				var vulns []string
				for _, c := range criticals {
					vulns = append(vulns, fmt.Sprintf(`{"id":%q,"analysis":{"state":%q,"justification":"code_not_reachable","detail":"JNDI lookups are disabled"},"affects":[{"ref":"urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#app"}]}`, c, state))
				}
				doc := fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79","version":1,"metadata":{"timestamp":%q,"component":{"bom-ref":"app","type":"container","name":"app","purl":%q}},"vulnerabilities":[%s]}`,
					now.UTC().Format(time.RFC3339), purl(img), strings.Join(vulns, ","))
				signer.Sign(p, attachAs(vulnreport.CycloneDXMediaType, img, []byte(doc)))
			}
			cdx("cdx", "not_affected")
			cdx("cdx-in-triage", "in_triage")

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
  - {name: vulns, type: vulnreport, vulnreport: {deniedSeverities: [critical], maxAge: 24h, vex: {trustedBy: [notation], cycloneDX: true}}}
policy:
  scopes:
    - name: all
      repositories: ["*"]
      require:
        - artifactType: application/vnd.cncf.notary.signature
        - artifactType: application/sarif+json
          require: [{artifactType: application/vnd.cncf.notary.signature}]
`, signer.CAFile))

			tests := []struct {
				tag     string
				allowed bool
				want    string
				// ignored is what Details["vexIgnored"] says, if anything.
				ignored string
			}{
				{"no-vex", false, "CVE-2021-44228", ""},
				{"vex", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"vex-by-reference", true, "CVE-2021-45046 fixed by VEX", ""},
				{"vex-unsigned", false, "CVE-2021-44228", "unsigned"},
				{"vex-untrusted", false, "CVE-2021-44228", "no trusted signature"},
				{"vex-other-cve", false, "1 finding denied: CVE-2021-45046", ""},
				{"vex-other-product", false, "2 findings denied", ""},
				{"vex-investigating", false, "2 findings denied", ""},
				{"cdx", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"cdx-in-triage", false, "2 findings denied", ""},
			}
			for _, tt := range tests {
				t.Run(tt.tag, func(t *testing.T) {
					code, out, stderr := vouchRun(t, "verify", "-o", "json", "--verify-all", "--config", cfg, reg.Host+"/"+repo+":"+tt.tag)
					var doc vouch.Reports
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatalf("exit %d: %v\n%s", code, err, stderr)
					}
					r := doc.Subjects[0]
					if (r.Verdict == vouch.Allowed) != tt.allowed || (code == exitAllowed) != tt.allowed {
						t.Fatalf("exit %d, verdict %s: %s\n%s", code, r.Verdict, r.Reason, out)
					}
					// The report's own reason says what VEX did.
					sarif := findResult(t, r.Root, vulnreport.MediaType, "vulns")
					t.Logf("%s: %s", r.Verdict, sarif.Reason)
					if !strings.Contains(sarif.Reason, tt.want) {
						t.Fatalf("the report's result does not say %q: %s", tt.want, sarif.Reason)
					}
					ignored, _ := json.Marshal(sarif.Details["vexIgnored"])
					if tt.ignored != "" && !strings.Contains(string(ignored), tt.ignored) || tt.ignored == "" && sarif.Details["vexIgnored"] != nil {
						t.Fatalf("vexIgnored is %s, want it to say %q", ignored, tt.ignored)
					}
					if tt.allowed {
						listed, _ := json.Marshal(sarif.Details["suppressedFindings"])
						for _, want := range []string{`"status":"`, `"document":"sha256:`, `"trustedBy":"notation"`} {
							if !strings.Contains(string(listed), want) {
								t.Fatalf("suppressed findings do not show %s: %s", want, listed)
							}
						}
					}
				})
			}
		})
	}
}

// findResult returns the result of verifier on the referrer of root of
// the artifact type.
func findResult(t *testing.T, root *vouch.Node, artifactType, verifier string) vouch.Result {
	t.Helper()
	for _, n := range root.Referrers {
		if n.ArtifactType != artifactType {
			continue
		}
		for _, res := range n.Results {
			if res.Verifier == verifier {
				return res
			}
		}
	}
	t.Fatalf("no %s result on a %s referrer", verifier, artifactType)
	return vouch.Result{}
}

// cycloneDXVEX writes a CycloneDX 1.6 VEX document about product (its
// metadata.component, bom-ref "app") with one vulnerability per id, each
// analysed as state.
func cycloneDXVEX(product, state string, vulns ...string) []byte {
	const serial = "3e671687-395b-41f5-a30f-a58921a69b79"
	var vs []string
	for _, v := range vulns {
		vs = append(vs, fmt.Sprintf(`{"id":%q,"analysis":{"state":%q,"justification":"code_not_reachable","detail":"JNDI lookups are disabled"},"affects":[{"ref":"urn:cdx:%s/1#app"}]}`, v, state, serial))
	}
	return []byte(fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:%s","version":1,"metadata":{"timestamp":%q,"component":{"bom-ref":"app","type":"container","name":"app","purl":%q}},"vulnerabilities":[%s]}`,
		serial, time.Now().UTC().Format(time.RFC3339), product, strings.Join(vs, ",")))
}

// vexRego is a Rego policy for `cosign verify-attestation --policy` that
// asks what vouch's VEX check asks of one attestation: that it says, of
// each of cves, not_affected or fixed for product (OpenVEX's statements,
// or CycloneDX's analysed vulnerabilities whose affects name the
// document's component, product).
func vexRego(product string, cves ...string) string {
	list, _ := json.Marshal(cves)
	return fmt.Sprintf(`package signature

import rego.v1

openvex(cve) if {
	some s in input.predicate.statements
	s.vulnerability.name == cve
	s.status in {"not_affected", "fixed"}
	some p in s.products
	p["@id"] == %[1]q
}

cyclonedx(cve) if {
	input.predicate.metadata.component.purl == %[1]q
	some v in input.predicate.vulnerabilities
	v.id == cve
	v.analysis.state in {"not_affected", "false_positive", "resolved", "resolved_with_pedigree"}
	some a in v.affects
	endswith(a.ref, "#app")
}

covered(cve) if openvex(cve)

covered(cve) if cyclonedx(cve)

allow if {
	every cve in %[2]s {
		covered(cve)
	}
}
`, product, list)
}

// TestVEXAttestation: VEX as cosign attestations, made by the real cosign
// CLIs: v2.6.5 in its .att tag and v3 as a Sigstore bundle referrer, of
// OpenVEX (`cosign attest --type openvex`) and of CycloneDX VEX (`cosign
// attest --type cyclonedx`, with vex.cycloneDX). Signed by the trusted key
// they suppress the critical findings; signed by another key, unsigned
// (an in-toto statement attached by the oras CLI), about another image or
// about another CVE, they suppress nothing, nor does a CycloneDX SBOM
// attestation without analysed vulnerabilities. The same holds for a scan
// that is itself a cosign vulnerability attestation (`cosign attest --type
// vuln`, a SARIF log in scanner.result), and for OpenVEX and CycloneDX VEX
// referrers signed by cosign v3 (its signature bundle a referrer of the
// document). Both registry kinds.
//
// Each verdict on one VEX attestation is cross-checked with `cosign
// verify-attestation --type openvex|cyclonedx --policy vex.rego`, the Rego
// policy (vexRego) asking what vouch asks: that the attestation, signed by
// the trusted key, says not_affected or fixed of both critical CVEs for
// this image. cosign cannot judge the scans in vulnerability attestations
// against VEX in another one, nor the VEX referrer signed on its own.
func TestVEXAttestation(t *testing.T) {
	report, err := os.ReadFile(filepath.Join("..", "..", "verifier", "vulnreport", "testdata", "trivy-log4j.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	criticals := []string{"CVE-2021-44228", "CVE-2021-45046"}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "HOME=" + dir, "COSIGN_EXPERIMENTAL=0"}
			run := func(bin string, args ...string) {
				t.Helper()
				if out, err := testbed.RunErr(env, testbed.Bin(t, bin), args...); err != nil {
					t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
				}
			}
			key, other := filepath.Join(dir, "cosign"), filepath.Join(dir, "other")
			run("cosign", "generate-key-pair", "--output-key-prefix", key)
			run("cosign", "generate-key-pair", "--output-key-prefix", other)
			// Key-signed bundles without log entries need nothing in a
			// trusted root, but cosign v3 verifies bundles only with one.
			emptyRoot := filepath.Join(dir, "trusted_root.json")
			if err := os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			const repo = "vexatt/app"
			p := testbed.NewPusher(t, reg.Host, repo)
			elsewhere := p.Image("elsewhere", "elsewhere")
			purl := func(img ocispec.Descriptor) string {
				return fmt.Sprintf("pkg:oci/app@%s", strings.Replace(img.Digest.String(), ":", "%3A", 1))
			}
			// crossCheck holds, per tag, the cosign command that judges the
			// same question as vouch, without the reference.
			type crossCheck struct {
				bin  string
				args []string
			}
			crossChecks := map[string]crossCheck{}
			// withReport pushes an image with a critical report.
			withReport := func(tag string) ocispec.Descriptor {
				img := p.Image(tag, tag)
				m := p.ArtifactManifest(img, vulnreport.MediaType, vulnreport.MediaType, report)
				m.Annotations = map[string]string{ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339)}
				p.Manifest(ocispec.MediaTypeImageManifest, m, "")
				return img
			}
			// attest pushes an image with a critical report and the VEX
			// attestation doc(img) (cosign attest --type typ), made by bin
			// with key k.
			attest := func(tag, bin, k, typ string, doc func(img ocispec.Descriptor) []byte) {
				img := withReport(tag)
				vex := filepath.Join(dir, tag+".vex.json")
				if err := os.WriteFile(vex, doc(img), 0o600); err != nil {
					t.Fatal(err)
				}
				args := []string{"attest", "--key", k + ".key", "--type", typ, "--predicate", vex, "--tlog-upload=false", "--allow-http-registry"}
				if bin == "cosign3" {
					args = append(args, "--use-signing-config=false")
				}
				run(bin, append(args, fmt.Sprintf("%s/%s@%s", reg.Host, repo, img.Digest))...)
				policy := filepath.Join(dir, tag+".rego")
				if err := os.WriteFile(policy, []byte(vexRego(purl(img), criticals...)), 0o600); err != nil {
					t.Fatal(err)
				}
				check := []string{"verify-attestation", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--type", typ, "--policy", policy}
				if bin == "cosign3" {
					check = append(check, "--trusted-root", emptyRoot)
				}
				crossChecks[tag] = crossCheck{bin, check}
			}
			openvex := func(product func(img ocispec.Descriptor) string, vulns ...string) func(ocispec.Descriptor) []byte {
				return func(img ocispec.Descriptor) []byte {
					return openVEX(product(img), vulnreport.VEXNotAffected, vulns...)
				}
			}
			cdx := func(state string) func(ocispec.Descriptor) []byte {
				return func(img ocispec.Descriptor) []byte { return cycloneDXVEX(purl(img), state, criticals...) }
			}
			attest("v2", "cosign", key, "openvex", openvex(purl, criticals...))
			attest("v3", "cosign3", key, "openvex", openvex(purl, criticals...))
			attest("v2-untrusted", "cosign", other, "openvex", openvex(purl, criticals...))
			attest("v3-untrusted", "cosign3", other, "openvex", openvex(purl, criticals...))
			attest("v2-other-product", "cosign", key, "openvex", openvex(func(ocispec.Descriptor) string { return purl(elsewhere) }, criticals...))
			attest("v3-other-product", "cosign3", key, "openvex", openvex(func(ocispec.Descriptor) string { return purl(elsewhere) }, criticals...))
			attest("v2-other-cve", "cosign", key, "openvex", openvex(purl, "CVE-2021-44228", "CVE-2099-0001"))
			attest("v3-other-cve", "cosign3", key, "openvex", openvex(purl, "CVE-2021-44228", "CVE-2099-0001"))
			attest("cdx-v2", "cosign", key, "cyclonedx", cdx("not_affected"))
			attest("cdx-v3", "cosign3", key, "cyclonedx", cdx("resolved"))
			attest("cdx-v3-untrusted", "cosign3", other, "cyclonedx", cdx("not_affected"))
			attest("cdx-v3-in-triage", "cosign3", key, "cyclonedx", cdx("in_triage"))
			attest("cdx-v3-sbom", "cosign3", key, "cyclonedx", func(ocispec.Descriptor) []byte {
				return []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"log4j-core","purl":"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}`)
			})
			// The same OpenVEX statement unsigned: an in-toto statement
			// attached with the oras CLI, as an unsigned attestation is.
			{
				img := withReport("unsigned")
				stmt, err := json.Marshal(map[string]any{
					"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://openvex.dev/ns",
					"subject":   []any{map[string]any{"name": "app", "digest": map[string]string{"sha256": img.Digest.Encoded()}}},
					"predicate": json.RawMessage(openVEX(purl(img), vulnreport.VEXNotAffected, criticals...)),
				})
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "unsigned.intoto.json")
				if err := os.WriteFile(path, stmt, 0o600); err != nil {
					t.Fatal(err)
				}
				testbed.Run(t, nil, "oras", "attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/vnd.in-toto+json",
					fmt.Sprintf("%s/%s@%s", reg.Host, repo, img.Digest), path+":application/vnd.in-toto+json")
				policy := filepath.Join(dir, "unsigned.rego")
				if err := os.WriteFile(policy, []byte(vexRego(purl(img), criticals...)), 0o600); err != nil {
					t.Fatal(err)
				}
				crossChecks["unsigned"] = crossCheck{"cosign3", []string{"verify-attestation", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry",
					"--type", "openvex", "--policy", policy, "--trusted-root", emptyRoot}}
			}
			// The scan itself as a cosign vulnerability attestation (its
			// scanner.result the SARIF log), beside the OpenVEX one.
			vuln := filepath.Join(dir, "vuln.json")
			if err := os.WriteFile(vuln, []byte(fmt.Sprintf(`{"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.74.0","version":"0.74.0","result":%s},"metadata":{"scanStartedOn":%q,"scanFinishedOn":%q}}`,
				report, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))), 0o600); err != nil {
				t.Fatal(err)
			}
			scanned := func(tag, bin string, withVEX bool) {
				img := p.Image(tag, tag)
				offline := []string{"--key", key + ".key", "--tlog-upload=false", "--allow-http-registry"}
				if bin == "cosign3" {
					offline = append(offline, "--use-signing-config=false")
				}
				ref := fmt.Sprintf("%s/%s@%s", reg.Host, repo, img.Digest)
				run(bin, append(append([]string{"attest", "--type", "vuln", "--predicate", vuln}, offline...), ref)...)
				if withVEX {
					vex := filepath.Join(dir, tag+".vex.json")
					if err := os.WriteFile(vex, openVEX(purl(img), vulnreport.VEXNotAffected, criticals...), 0o600); err != nil {
						t.Fatal(err)
					}
					run(bin, append(append([]string{"attest", "--type", "openvex", "--predicate", vex}, offline...), ref)...)
				}
			}
			scanned("scan-v2", "cosign", true)
			scanned("scan-v3", "cosign3", true)
			scanned("scan-no-vex", "cosign", false)
			// An OpenVEX and a CycloneDX VEX referrer (oras attach) signed
			// by cosign v3, whose signature bundle is a referrer of the VEX
			// document.
			signedReferrer := func(tag, artifactType string, doc func(img ocispec.Descriptor) []byte) {
				img := withReport(tag)
				path := filepath.Join(dir, tag+".json")
				if err := os.WriteFile(path, doc(img), 0o600); err != nil {
					t.Fatal(err)
				}
				out := testbed.Run(t, nil, "oras", "attach", "--plain-http", "--disable-path-validation", "--format", "go-template", "--template", "{{.digest}}",
					"--artifact-type", artifactType, fmt.Sprintf("%s/%s@%s", reg.Host, repo, img.Digest), path+":"+artifactType)
				run("cosign3", "sign", "--key", key+".key", "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry",
					fmt.Sprintf("%s/%s@%s", reg.Host, repo, strings.TrimSpace(out)))
			}
			signedReferrer("signed-referrer", vulnreport.VEXMediaType, openvex(purl, criticals...))
			signedReferrer("cdx-signed-referrer", vulnreport.CycloneDXMediaType, cdx("not_affected"))

			cfg := filepath.Join(dir, "vouch.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
verifiers:
  - {name: cosign, type: cosign, cosign: {keys: {files: [%q]}, ignoreTlogUnsafe: true, attestations: {predicateTypes: [openvex, cyclonedx, vuln]}}}
  - {name: vulns, type: vulnreport, vulnreport: {deniedSeverities: [critical], vex: {trustedBy: [cosign], cycloneDX: true}}}
policy:
  scopes:
    - name: all
      repositories: ["*"]
      require:
        - anyOf:
            - artifactType: application/sarif+json
            - predicateType: %s
`, key+".pub", vulnreport.PredicateVuln)), 0o600); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				tag     string
				allowed bool
				want    string
				// ignored is what Details["vexIgnored"] says, if anything.
				ignored string
			}{
				{"v2", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"v3", true, "CVE-2021-45046 not_affected by VEX", ""},
				{"v2-untrusted", false, "2 findings denied", "no matching key"},
				{"v3-untrusted", false, "2 findings denied", "no matching key"},
				{"unsigned", false, "2 findings denied", "no trusted signature"},
				{"v2-other-product", false, "2 findings denied", ""},
				{"v3-other-product", false, "2 findings denied", ""},
				{"v2-other-cve", false, "1 finding denied: CVE-2021-45046", ""},
				{"v3-other-cve", false, "1 finding denied: CVE-2021-45046", ""},
				{"cdx-v2", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"cdx-v3", true, "CVE-2021-45046 fixed by VEX", ""},
				{"cdx-v3-untrusted", false, "2 findings denied", "no matching key"},
				{"cdx-v3-in-triage", false, "2 findings denied", ""},
				{"cdx-v3-sbom", false, "2 findings denied", ""},
				{"scan-v2", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"scan-v3", true, "CVE-2021-45046 not_affected by VEX", ""},
				{"scan-no-vex", false, "2 findings denied", ""},
				{"signed-referrer", true, "CVE-2021-44228 not_affected by VEX", ""},
				{"cdx-signed-referrer", true, "CVE-2021-45046 not_affected by VEX", ""},
			}
			for _, tt := range tests {
				t.Run(tt.tag, func(t *testing.T) {
					code, out, stderr := vouchRun(t, "verify", "-o", "json", "--verify-all", "--config", cfg, reg.Host+"/"+repo+":"+tt.tag)
					var doc vouch.Reports
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatalf("exit %d: %v\n%s", code, err, stderr)
					}
					r := doc.Subjects[0]
					var sarif vouch.Result
					if strings.HasPrefix(tt.tag, "scan-") {
						sarif = findScan(t, r.Root)
					} else {
						sarif = findResult(t, r.Root, vulnreport.MediaType, "vulns")
					}
					t.Logf("%s: %s %v", r.Verdict, sarif.Reason, sarif.Details["vexIgnored"])
					if (r.Verdict == vouch.Allowed) != tt.allowed || (code == exitAllowed) != tt.allowed {
						t.Fatalf("exit %d, verdict %s: %s", code, r.Verdict, r.Reason)
					}
					if !strings.Contains(sarif.Reason, tt.want) {
						t.Fatalf("the report's result does not say %q: %s", tt.want, sarif.Reason)
					}
					ignored, _ := json.Marshal(sarif.Details["vexIgnored"])
					if tt.ignored != "" && !strings.Contains(string(ignored), tt.ignored) || tt.ignored == "" && sarif.Details["vexIgnored"] != nil {
						t.Fatalf("vexIgnored is %s, want it to say %q", ignored, tt.ignored)
					}
					c, ok := crossChecks[tt.tag]
					if !ok {
						return
					}
					cout, err := testbed.RunErr(env, testbed.Bin(t, c.bin), append(c.args, fmt.Sprintf("%s/%s:%s", reg.Host, repo, tt.tag))...)
					t.Logf("%s verify-attestation: err=%v", c.bin, err)
					if (err == nil) != tt.allowed {
						t.Errorf("%s verify-attestation ok=%v, vouch allowed=%v\n%s", c.bin, err == nil, tt.allowed, cout)
					}
				})
			}
			// Without vex.cycloneDX, CycloneDX attestations are no VEX.
			t.Run("cdx without vex.cycloneDX", func(t *testing.T) {
				data, err := os.ReadFile(cfg)
				if err != nil {
					t.Fatal(err)
				}
				off := filepath.Join(dir, "no-cdx.yaml")
				if err := os.WriteFile(off, []byte(strings.Replace(string(data), ", cycloneDX: true", "", 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				code, out, stderr := vouchRun(t, "verify", "-o", "json", "--verify-all", "--config", off, reg.Host+"/"+repo+":cdx-v2")
				var doc vouch.Reports
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatalf("exit %d: %v\n%s", code, err, stderr)
				}
				if r := doc.Subjects[0]; r.Verdict != vouch.Denied || code != exitDenied {
					t.Fatalf("exit %d, verdict %s: %s", code, r.Verdict, r.Reason)
				}
			})
		})
	}
}

// findScan returns the vulns verifier's result on the referrer of root
// that carries a vulnerability attestation.
func findScan(t *testing.T, root *vouch.Node) vouch.Result {
	t.Helper()
	for _, n := range root.Referrers {
		for _, res := range n.Results {
			if res.Verifier == "vulns" && res.Outcome != vouch.Skipped {
				return res
			}
		}
	}
	t.Fatal("no vulnerability attestation checked by vulns")
	return vouch.Result{}
}
