package cosign_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// TestCosign3CLI signs and attests with the real cosign v3 (built into the
// testbed as cosign3) as users run it, offline with a key: what it pushes
// by default, Sigstore bundles as OCI 1.1 referrers for `sign` and
// `attest` alike, alone and mixed with cosign 2.6.5's tag layout, on both
// registry kinds. Each verdict of vouch's Executor, under a policy that
// requires a signature and, where the case says, an attestation of one
// predicate type, is cross-checked with `cosign verify` or `cosign
// verify-attestation` (with a CUE --policy for the builder check vouch's
// predicate fields make, and Rego ones for the sbom verifier's licence
// deny-list on SPDX and CycloneDX SBOM attestations), where cosign can
// judge the same question; where it judges otherwise, the case says why.
// An unsigned provenance is an in-toto statement attached by the oras CLI.
//
// Keyless signing needs Fulcio and Rekor, which cannot run here: it is
// covered by the library-made bundles of TestVerifier. cosign v3 refuses
// --tlog-upload=false while its TUF signing config is in use, so every
// signing command here adds --use-signing-config=false.
func TestCosign3CLI(t *testing.T) {
	ctx := context.Background()
	v3bin, v2bin := testbed.Bin(t, "cosign3"), testbed.Bin(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "COSIGN_PASSWORD=", "COSIGN_YES=true", "XDG_CONFIG_HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf")}
	key, other := filepath.Join(dir, "cosign"), filepath.Join(dir, "other")
	testbed.Run(t, env, "cosign3", "generate-key-pair", "--output-key-prefix", key)
	testbed.Run(t, env, "cosign3", "generate-key-pair", "--output-key-prefix", other)
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	sbomFile := write("sbom.spdx.json", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0",
	  "documentNamespace":"https://example.com/app","creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: test"]},"packages":[]}`)
	provenance := write("provenance.json", `{"buildDefinition":{"buildType":"https://builder.test/type","externalParameters":{}},
	  "runDetails":{"builder":{"id":"https://builder.test/v1"}}}`)
	evil := write("evil.json", `{"buildDefinition":{"buildType":"https://builder.test/type","externalParameters":{}},
	  "runDetails":{"builder":{"id":"https://evil.test"}}}`)
	// What vouch's predicate check asks, as a CUE policy for cosign
	// verify-attestation --policy.
	builderPolicy := write("builder.cue", `predicate: runDetails: builder: id: "https://builder.test/v1"`+"\n")
	// Key-signed bundles without log entries need nothing in a trusted
	// root, but cosign verifies bundles only with one.
	emptyRoot := write("trusted_root.json", `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)

	v, err := cosign.New("cosign", cosign.Config{
		Keys:             cosign.PEMSource{Files: []string{key + ".pub"}},
		IgnoreTlogUnsafe: true,
		Attestations: &cosign.Attestations{
			PredicateTypes: []string{"spdxjson", "cyclonedx"},
			Predicates:     []cosign.Predicate{{Type: "slsaprovenance1", Fields: map[string]string{"runDetails.builder.id": "https://builder.test/v1"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sbom verifier checks the SBOM predicates of the same attestations
	// by its rules, beside the cosign verifier's check of their signer.
	sv, err := sbom.New("sbom", sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}})
	if err != nil {
		t.Fatal(err)
	}
	gplSBOM := write("gpl.spdx.json", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0",
	  "documentNamespace":"https://example.com/gpl","creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: test"]},
	  "packages":[{"name":"readline","SPDXID":"SPDXRef-readline","versionInfo":"8.2","downloadLocation":"NOASSERTION","licenseConcluded":"GPL-3.0-only"}]}`)
	cdxSBOM := func(license string) string {
		return write("app-"+license+".cdx.json", `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
	  "metadata":{"timestamp":"2024-01-01T00:00:00Z","component":{"bom-ref":"app","type":"container","name":"app"}},
	  "components":[{"bom-ref":"readline","type":"library","name":"readline","version":"8.2","licenses":[{"license":{"id":"`+license+`"}}]}]}`)
	}
	gplCDX, mitCDX := cdxSBOM("GPL-3.0-only"), cdxSBOM("MIT")
	// What the sbom verifier's deniedLicenses asks of these SBOMs, as Rego
	// policies for cosign verify-attestation --policy.
	spdxLicenses := write("spdx-licenses.rego", `package signature

import rego.v1

denied if {
	some p in input.predicate.packages
	p.licenseConcluded == "GPL-3.0-only"
}

allow if not denied
`)
	cdxLicenses := write("cdx-licenses.rego", `package signature

import rego.v1

denied if {
	some c in input.predicate.components
	some l in c.licenses
	l.license.id == "GPL-3.0-only"
}

allow if not denied
`)
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	signature := policy.Requirement{Kind: "signature"}
	policies := map[string][]policy.Requirement{
		"signature":            {signature},
		"signature+provenance": {signature, {PredicateType: cosign.PredicateSLSAv1}},
		"signature+sbom":       {signature, {PredicateType: cosign.PredicateSPDX}},
		"signature+cdx":        {signature, {PredicateType: cosign.PredicateCycloneDX}},
	}
	vouchVerdict := func(t *testing.T, ref, name string) (bool, string) {
		t.Helper()
		pol, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: name, Repositories: []string{"*"}, Require: policies[name]}}}, []string{"cosign", "sbom"})
		if err != nil {
			t.Fatal(err)
		}
		exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v, sv}, Policy: pol, Discovery: vouch.Discovery{CosignTags: true}}
		r, err := exec.Verify(ctx, testbed.Ref(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		return r.Verdict == vouch.Allowed, r.Reason
	}

	offline := []string{"--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry"}
	sign3 := func(k string) []string { return append([]string{"sign", "--key", k + ".key"}, offline...) }
	attest3 := func(k, typ, pred string) []string {
		return append([]string{"attest", "--key", k + ".key", "--type", typ, "--predicate", pred}, offline...)
	}
	sign2 := []string{"sign", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry"}
	attest2 := []string{"attest", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--type", "spdxjson", "--predicate", sbomFile}
	attest2As := func(typ, pred string) []string {
		return []string{"attest", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--type", typ, "--predicate", pred}
	}
	verify3 := []string{"verify", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--trusted-root", emptyRoot}
	attested3 := func(typ string) []string {
		return []string{"verify-attestation", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--trusted-root", emptyRoot, "--type", typ}
	}
	// In a mixture, cosign (2.6.5 as well as v3) turns to the bundle format
	// as soon as it finds a bundle referrer: to check the tag layout, tell
	// cosign v3 to read it.
	legacy := []string{"--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--new-bundle-format=false"}
	verify2 := append([]string{"verify"}, legacy...)
	attested2 := append([]string{"verify-attestation", "--type", "spdxjson"}, legacy...)
	attested2As := func(typ string, more ...string) []string {
		return append(append([]string{"verify-attestation", "--type", typ}, legacy...), more...)
	}
	// unsignedProvenance attaches an unsigned in-toto statement of the
	// provenance about the image with the oras CLI, as an attestation
	// whose signing was left out looks.
	unsignedProvenance := func(t *testing.T, ref string, d digest.Digest) {
		stmt := filepath.Join(t.TempDir(), "provenance.intoto.json")
		if err := os.WriteFile(stmt, statement(t, cosign.PredicateSLSAv1, d, map[string]any{
			"buildDefinition": map[string]any{"buildType": "https://builder.test/type", "externalParameters": map[string]any{}},
			"runDetails":      map[string]any{"builder": map[string]any{"id": "https://builder.test/v1"}},
		}), 0o600); err != nil {
			t.Fatal(err)
		}
		testbed.Run(t, nil, "oras", "attach", "--plain-http", "--disable-path-validation", "--artifact-type", cosign.InTotoType, ref, stmt+":"+cosign.MediaTypeInToto)
	}

	type step struct {
		bin  string
		args []string
	}
	// check is one verdict: vouch under the named policy, and the cosign
	// commands that judge the same question, all of which succeed when
	// vouch allows, unless differs says cosign judges otherwise, and why.
	type check struct {
		policy  string
		cosign  []step
		allowed bool
		reason  string // a substring of vouch's reason
		differs string
	}
	cases := []struct {
		name string
		push []step
		// attach, when set, pushes after push.
		attach func(t *testing.T, ref string, d digest.Digest)
		check  []check
	}{{
		name: "v3 sign",
		push: []step{{v3bin, sign3(key)}},
		check: []check{
			{"signature", []step{{v3bin, verify3}}, true, "signature verified", ""},
			{"signature+provenance", []step{{v3bin, verify3}, {v3bin, attested3("slsaprovenance1")}}, false, "no attestation of predicate type " + cosign.PredicateSLSAv1 + " found", ""},
		},
	}, {
		name:  "v3 sign, untrusted key",
		push:  []step{{v3bin, sign3(other)}},
		check: []check{{"signature", []step{{v3bin, verify3}}, false, "no matching key", ""}},
	}, {
		name: "v3 sign and attest provenance",
		push: []step{{v3bin, sign3(key)}, {v3bin, attest3(key, "slsaprovenance1", provenance)}},
		check: []check{
			{"signature+provenance", []step{{v3bin, verify3}, {v3bin, append(attested3("slsaprovenance1"), "--policy", builderPolicy)}}, true, "attestation of predicate type " + cosign.PredicateSLSAv1 + " verified", ""},
			{"signature+sbom", []step{{v3bin, verify3}, {v3bin, attested3("spdxjson")}}, false, "no attestation of predicate type " + cosign.PredicateSPDX + " found", ""},
		},
	}, {
		name:  "v3 provenance by an untrusted key",
		push:  []step{{v3bin, sign3(key)}, {v3bin, attest3(other, "slsaprovenance1", provenance)}},
		check: []check{{"signature+provenance", []step{{v3bin, verify3}, {v3bin, attested3("slsaprovenance1")}}, false, "no matching key", ""}},
	}, {
		name: "v3 provenance from another builder",
		push: []step{{v3bin, sign3(key)}, {v3bin, attest3(key, "slsaprovenance1", evil)}},
		check: []check{{"signature+provenance", []step{{v3bin, verify3}, {v3bin, append(attested3("slsaprovenance1"), "--policy", builderPolicy)}}, false,
			"predicate field runDetails.builder.id is https://evil.test, want https://builder.test/v1", ""}},
	}, {
		name: "v3 provenance alone",
		push: []step{{v3bin, attest3(key, "slsaprovenance1", provenance)}},
		check: []check{{"signature+provenance", []step{{v3bin, verify3}, {v3bin, attested3("slsaprovenance1")}}, false, "no signature found",
			"cosign verify accepts the provenance bundle as the image's signature (its payload type is https://slsa.dev/provenance/v1)"}},
	}, {
		name: "v3 SBOM attestation with a denied license",
		push: []step{{v3bin, sign3(key)}, {v3bin, attest3(key, "spdxjson", gplSBOM)}},
		check: []check{{"signature+sbom", []step{{v3bin, verify3}, {bin: v3bin, args: append(attested3("spdxjson"), "--policy", spdxLicenses)}}, false,
			"sbom: SPDX-2.3 SBOM of 1 package: 1 of 1 package fails the policy: readline 8.2 (denied license GPL-3.0-only)", ""}},
	}, {
		name:  "v3 SBOM attestation within the rules",
		push:  []step{{v3bin, sign3(key)}, {v3bin, attest3(key, "spdxjson", sbomFile)}},
		check: []check{{"signature+sbom", []step{{v3bin, verify3}, {bin: v3bin, args: append(attested3("spdxjson"), "--policy", spdxLicenses)}}, true, "attestation of predicate type " + cosign.PredicateSPDX + " verified", ""}},
	}, {
		name: "v2 SBOM attestation with a denied license, tag layout",
		push: []step{{bin: v2bin, args: sign2}, {bin: v2bin, args: attest2As("spdxjson", gplSBOM)}},
		check: []check{{"signature+sbom", []step{{bin: v2bin, args: verify2}, {bin: v2bin, args: attested2As("spdxjson", "--policy", spdxLicenses)}}, false,
			"denied license GPL-3.0-only", ""}},
	}, {
		name: "v3 CycloneDX SBOM attestation with a denied license",
		push: []step{{bin: v3bin, args: sign3(key)}, {bin: v3bin, args: attest3(key, "cyclonedx", gplCDX)}},
		check: []check{{"signature+cdx", []step{{v3bin, verify3}, {bin: v3bin, args: append(attested3("cyclonedx"), "--policy", cdxLicenses)}}, false,
			"CycloneDX-1.6 SBOM of 2 components: 1 of 2 components fails the policy: readline 8.2 (denied license GPL-3.0-only)", ""}},
	}, {
		name: "v3 CycloneDX SBOM attestation within the rules",
		push: []step{{bin: v3bin, args: sign3(key)}, {bin: v3bin, args: attest3(key, "cyclonedx", mitCDX)}},
		check: []check{{"signature+cdx", []step{{v3bin, verify3}, {bin: v3bin, args: append(attested3("cyclonedx"), "--policy", cdxLicenses)}}, true,
			"attestation of predicate type " + cosign.PredicateCycloneDX + " verified", ""}},
	}, {
		name: "v2 attest provenance, tag layout",
		push: []step{{bin: v2bin, args: sign2}, {bin: v2bin, args: attest2As("slsaprovenance1", provenance)}},
		check: []check{{"signature+provenance", []step{{bin: v2bin, args: verify2}, {bin: v2bin, args: attested2As("slsaprovenance1", "--policy", builderPolicy)}}, true,
			"attestation of predicate type " + cosign.PredicateSLSAv1 + " verified", ""}},
	}, {
		name: "v2 provenance from another builder, tag layout",
		push: []step{{bin: v2bin, args: sign2}, {bin: v2bin, args: attest2As("slsaprovenance1", evil)}},
		check: []check{{"signature+provenance", []step{{bin: v2bin, args: verify2}, {bin: v2bin, args: attested2As("slsaprovenance1", "--policy", builderPolicy)}}, false,
			"predicate field runDetails.builder.id is https://evil.test, want https://builder.test/v1", ""}},
	}, {
		name:   "unsigned provenance (oras attach)",
		push:   []step{{bin: v3bin, args: sign3(key)}},
		attach: unsignedProvenance,
		check: []check{{"signature+provenance", []step{{v3bin, verify3}, {bin: v3bin, args: append(attested3("slsaprovenance1"), "--policy", builderPolicy)}}, false,
			"not checked: cosign: unsigned attestation", ""}},
	}, {
		name: "v2 sign in the tag layout, v3 attest provenance",
		push: []step{{v2bin, sign2}, {v3bin, attest3(key, "slsaprovenance1", provenance)}},
		check: []check{
			{"signature+provenance", []step{{v3bin, verify2}, {v3bin, attested3("slsaprovenance1")}}, true, "", ""},
		},
	}, {
		name: "v2 sign and attest an SBOM in the tag layout, v3 sign",
		push: []step{{v2bin, sign2}, {v2bin, attest2}, {v3bin, sign3(key)}},
		check: []check{
			{"signature+sbom", []step{{v3bin, verify2}, {v3bin, verify3}, {v3bin, attested2}}, true, "attestation of predicate type " + cosign.PredicateSPDX + " verified", ""},
			{"signature+provenance", []step{{v3bin, attested3("slsaprovenance1")}}, false, "no attestation of predicate type " + cosign.PredicateSLSAv1 + " found", ""},
		},
	}, {
		name: "v2 sign by an untrusted key, v3 sign",
		push: []step{{v2bin, append([]string{"sign", "--key", other + ".key"}, sign2[3:]...)}, {v3bin, sign3(key)}},
		check: []check{
			{"signature", []step{{v3bin, verify3}}, true, "signature verified", ""},
		},
	}}

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := "cosign3/cli" + string(rune('a'+i))
					img := testbed.NewPusher(t, reg.Host, repo).Image("", reg.Name+" cosign3 CLI "+c.name)
					ref := reg.Host + "/" + repo + "@" + img.Digest.String()
					for _, s := range c.push {
						if out, err := testbed.RunErr(env, s.bin, append(s.args, ref)...); err != nil {
							t.Fatalf("%s %s: %v\n%s", filepath.Base(s.bin), strings.Join(s.args, " "), err, out)
						}
					}
					if c.attach != nil {
						c.attach(t, ref, img.Digest)
					}
					for _, ch := range c.check {
						cosignOK := true
						for _, s := range ch.cosign {
							out, err := testbed.RunErr(env, s.bin, append(s.args, ref)...)
							t.Logf("%s %s: err=%v", filepath.Base(s.bin), s.args[0], err)
							if err != nil {
								cosignOK = false
								t.Logf("%s", out)
							}
						}
						allowed, reason := vouchVerdict(t, ref, ch.policy)
						t.Logf("vouch %s: allowed=%v: %s", ch.policy, allowed, reason)
						switch {
						case ch.differs != "" && cosignOK == ch.allowed:
							t.Errorf("%s: cosign ok=%v, and no longer differs from vouch: %s", ch.policy, cosignOK, ch.differs)
						case ch.differs == "" && cosignOK != ch.allowed:
							t.Errorf("%s: cosign ok=%v, want %v", ch.policy, cosignOK, ch.allowed)
						case ch.differs != "":
							t.Logf("%s: cosign differs from vouch, as expected: %s", ch.policy, ch.differs)
						}
						if allowed != ch.allowed || !strings.Contains(reason, ch.reason) {
							t.Errorf("%s: vouch allowed=%v %q, want %v containing %q", ch.policy, allowed, reason, ch.allowed, ch.reason)
						}
					}
				})
			}
		})
	}
}
