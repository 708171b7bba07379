package cosign_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/verifier/cosign"
)

// inDir resolves the relative paths of c against dir, as vouch's config
// package does for a config file in dir: files keep their written names.
func inDir(dir string, c cosign.Config) cosign.Config {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, src := range []*cosign.PEMSource{&c.Keys, &c.CertificateRoots} {
		src.Names = src.Files
		src.Files = make([]string, len(src.Names))
		for i, p := range src.Names {
			src.Files[i] = abs(p)
		}
	}
	c.TrustedRoot = abs(c.TrustedRoot)
	return c
}

func TestConfigValidate(t *testing.T) {
	keys := cosign.PEMSource{Files: []string{"cosign.pub"}}
	roots := cosign.PEMSource{PEM: "-----BEGIN CERTIFICATE-----"}
	alice := []cosign.Identity{{Issuer: "https://issuer.test", Subject: "alice@example.com"}}
	cases := []struct {
		name string
		c    cosign.Config
		want string // "" for valid; else a substring of the error
	}{
		{"key config", cosign.KeyConfig([]string{"cosign.pub"}), ""},
		{"provenance", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{BuilderIDRegExp: "^https://github.com/"}}}, ""},
		{"provenance checking nothing", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{}}}, "cosign.attestations.provenance: names nothing to check"},
		{"provenance regexp", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Provenance: &cosign.Provenance{SourceRefRegExp: "("}}}, "cosign.attestations.provenance.sourceRefRegExp: "},
		{"keys logged in Rekor", cosign.Config{Keys: keys, TrustedRoot: "trusted_root.json"}, ""},
		{"keyless", cosign.Config{TrustedRoot: "trusted_root.json", Identities: alice}, ""},
		{"keyless without SCTs", cosign.Config{TrustedRoot: "trusted_root.json", Identities: alice, IgnoreSCTUnsafe: true}, ""},
		{"roots", cosign.Config{CertificateRoots: roots, Identities: []cosign.Identity{{IssuerRegExp: ".*", SubjectRegExp: "@acme\\.com$"}}, IgnoreTlogUnsafe: true}, ""},
		{"attestations", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{
			PredicateTypes: []string{"spdxjson", "https://example.com/custom/v1"},
			Fields:         map[string]string{"builder.id": "x"},
			Predicates:     []cosign.Predicate{{Type: "slsaprovenance1", FieldsRegExp: map[string]string{"runDetails.builder.id": "^https://"}}},
		}}, ""},

		{"nothing", cosign.Config{}, "verifiers[0].cosign: nothing to trust: set keys, certificateRoots or trustedRoot"},
		{"no tlog trust", cosign.Config{Keys: keys}, "verifiers[0].cosign.trustedRoot: required to check transparency-log (Rekor) evidence; for signatures made with --tlog-upload=false set ignoreTlogUnsafe: true"},
		{"empty key path", cosign.Config{Keys: cosign.PEMSource{Files: []string{" "}}, IgnoreTlogUnsafe: true}, "verifiers[0].cosign.keys.files[0]: empty path"},
		{"roots without identities", cosign.Config{CertificateRoots: roots, IgnoreTlogUnsafe: true}, "verifiers[0].cosign.identities: required to trust certificates"},
		{"trusted root without identities", cosign.Config{TrustedRoot: "trusted_root.json"}, "verifiers[0].cosign.identities: required to trust certificates"},
		{"identities without certificates", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Identities: alice}, "verifiers[0].cosign.identities: certificates need certificateRoots or trustedRoot"},
		{"identity without issuer", cosign.Config{TrustedRoot: "r", Identities: []cosign.Identity{{Subject: "a"}}}, "verifiers[0].cosign.identities[0]: needs issuer or issuerRegExp"},
		{"identity without subject", cosign.Config{TrustedRoot: "r", Identities: []cosign.Identity{{Issuer: "a"}}}, "verifiers[0].cosign.identities[0]: needs subject or subjectRegExp"},
		{"bad regexp", cosign.Config{TrustedRoot: "r", Identities: []cosign.Identity{{Issuer: "a", SubjectRegExp: "("}}}, "verifiers[0].cosign.identities[0].subjectRegExp: error parsing regexp"},
		{"SCTs without trusted root", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, IgnoreSCTUnsafe: true}, "verifiers[0].cosign.ignoreSCTUnsafe: applies only to keyless signatures checked against trustedRoot"},
		{"empty annotation key", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Annotations: map[string]string{"": "x"}}, "verifiers[0].cosign.annotations: empty key"},
		{"bad predicate type", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{PredicateTypes: []string{"sbom"}}},
			`verifiers[0].cosign.attestations.predicateTypes[0]: "sbom" is neither a URI nor a cosign --type name (custom, cyclonedx, link, openvex, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, vuln)`},
		{"predicate without type", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Predicates: []cosign.Predicate{{}}}}, "verifiers[0].cosign.attestations.predicates[0].type: required"},
		{"predicate twice", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Predicates: []cosign.Predicate{{Type: "spdx"}, {Type: "https://spdx.dev/Document"}}}},
			"verifiers[0].cosign.attestations.predicates[1].type: https://spdx.dev/Document is checked twice"},
		{"bad field path", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Fields: map[string]string{"builder..id": "x"}}}, `verifiers[0].cosign.attestations.fields["builder..id"]: empty segment in dotted path`},
		{"bad field regexp", cosign.Config{Keys: keys, IgnoreTlogUnsafe: true, Attestations: &cosign.Attestations{Predicates: []cosign.Predicate{{Type: "vuln", FieldsRegExp: map[string]string{"scanner.uri": "["}}}}},
			`verifiers[0].cosign.attestations.predicates[0].fieldsRegExp["scanner.uri"]: error parsing regexp`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.c.Validate("verifiers[0].cosign")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestNewReadsTrust(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "cosign", "ecdsa")
	f := newFakeSigstore(t, dir)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	certPEM := string(f.issue(t, "https://issuer.test", "a@example.com", false).pem())
	cases := []struct {
		name string
		c    cosign.Config
		want string
	}{
		{"key file and inline key", cosign.Config{Keys: cosign.PEMSource{Files: []string{"cosign.pub"}, PEM: string(k.pubPEM)}, IgnoreTlogUnsafe: true}, ""},
		{"trusted root", cosign.Config{TrustedRoot: "trusted_root.json", Identities: []cosign.Identity{{Issuer: "i", Subject: "s"}}}, ""},
		{"missing key file", cosign.KeyConfig([]string{"missing.pub"}), "cosign.keys.files[0]: open " + filepath.Join(dir, "missing.pub")},
		{"certificate as key", cosign.KeyConfig([]string{write("cert.pem", certPEM)}), `cosign.keys.files[0] (cert.pem): PEM block 0: a "CERTIFICATE" block is not a public key (want PUBLIC KEY)`},
		{"not PEM", cosign.KeyConfig([]string{write("junk.pub", "junk")}), "cosign.keys.files[0] (junk.pub): no PEM block found"},
		{"trailing junk", cosign.KeyConfig([]string{write("trailing.pub", string(k.pubPEM)+"junk")}), "trailing data that is not PEM"},
		{"key as root", cosign.Config{CertificateRoots: cosign.PEMSource{PEM: string(k.pubPEM)}, Identities: []cosign.Identity{{Issuer: "i", Subject: "s"}}, IgnoreTlogUnsafe: true},
			`cosign.certificateRoots.pem: PEM block 0 is a "PUBLIC KEY", not a CERTIFICATE`},
		{"bad trusted root", cosign.Config{TrustedRoot: write("bad_root.json", `{"mediaType":"x"}`), Identities: []cosign.Identity{{Issuer: "i", Subject: "s"}}}, "cosign.trustedRoot: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := cosign.New("", inDir(dir, c.c))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestHandles(t *testing.T) {
	dir := t.TempDir()
	newKey(t, dir, "cosign", "ecdsa")
	quick, err := cosign.New("", cosign.KeyConfig([]string{filepath.Join(dir, "cosign.pub")}))
	if err != nil {
		t.Fatal(err)
	}
	att := cosign.KeyConfig([]string{"cosign.pub"})
	att.Attestations = &cosign.Attestations{}
	withAtt, err := cosign.New("att", inDir(dir, att))
	if err != nil {
		t.Fatal(err)
	}
	if quick.Name() != cosign.DefaultName || withAtt.Name() != "att" {
		t.Errorf("names %q, %q", quick.Name(), withAtt.Name())
	}
	for _, c := range []struct {
		typ           string
		quick, attest bool
	}{
		{cosign.SignatureType, true, true},
		{cosign.BundleV01Type, true, true},
		{cosign.BundleV02Type, true, true},
		{cosign.BundleV03Type, true, true},
		{cosign.AttestationType, false, true},
		{cosign.InTotoType, false, true},
		{"application/vnd.cncf.notary.signature", false, false},
		{"", false, false},
	} {
		if got := quick.Handles(c.typ); got != c.quick {
			t.Errorf("KeyConfig: Handles(%q) = %v", c.typ, got)
		}
		if got := withAtt.Handles(c.typ); got != c.attest {
			t.Errorf("with attestations: Handles(%q) = %v", c.typ, got)
		}
	}
}

func TestPredicateType(t *testing.T) {
	for name, want := range map[string]string{
		"slsaprovenance":                   cosign.PredicateSLSAv02,
		"slsaprovenance1":                  cosign.PredicateSLSAv1,
		"spdxjson":                         cosign.PredicateSPDX,
		"cyclonedx":                        cosign.PredicateCycloneDX,
		"vuln":                             cosign.PredicateVuln,
		"https://example.com/predicate/v1": "https://example.com/predicate/v1",
	} {
		got, err := cosign.PredicateType(name)
		if err != nil || got != want {
			t.Errorf("PredicateType(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := cosign.PredicateType("not a uri"); err == nil {
		t.Error("PredicateType accepted a name that is neither a URI nor a cosign --type")
	}
}
