package sbom

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzVerifier checks whatever the fuzzed parsers accept, with every check
// on.
func fuzzVerifier(f *testing.F) *Verifier {
	v, err := New("fuzz", Config{
		DeniedLicenses:  []string{"GPL-3.0-only", "AGPL-3.0-or-later", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-X"},
		DeniedPackages:  []string{"log4j-core@<2.17.1", "pkg:npm/left-pad", "busybox"},
		RequireLicenses: true,
		MaxAge:          "30d",
		ListPackages:    true,
	})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files for %s: %v", pattern, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func fuzzCheck(t *testing.T, v *Verifier, doc *Document) {
	res := v.Check(doc, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	if res.Outcome == "" || res.Reason == "" {
		t.Fatalf("result without outcome or reason: %+v", res)
	}
	list, _ := res.Details["packageList"].([]any)
	more, _ := res.Details["morePackageList"].(int)
	data, err := json.Marshal(list)
	if err != nil || len(data) > MaxListBytes || len(list)+more != len(doc.Packages) {
		t.Fatalf("packageList of %d entries (%d bytes, %v), %d more, for %d packages", len(list), len(data), err, more, len(doc.Packages))
	}
}

// FuzzParseSPDX feeds arbitrary bytes to the SPDX reader (vouch's checks
// around spdx/tools-golang's JSON loader), which reads what anyone who can
// push to a repository attaches to an image.
func FuzzParseSPDX(f *testing.F) {
	addSeeds(f, "*.spdx.json")
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","creationInfo":null,"packages":[{"SPDXID":"SPDXRef-a","hasFiles":["SPDXRef-f"]}],"documentDescribes":["SPDXRef-a"],"files":[{"SPDXID":"SPDXRef-f"}]}`))
	f.Add([]byte(`{"spdxVersion":"SPDX-2.1","SPDXID":"SPDXRef-DOCUMENT","relationships":[{"spdxElementId":"DocumentRef-x:SPDXRef-y","relatedSpdxElement":"NOASSERTION","relationshipType":"DESCRIBED_BY"}]}`))
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseSPDX(data)
		if err != nil {
			return
		}
		if doc.Format != FormatSPDX {
			t.Fatalf("format %q", doc.Format)
		}
		fuzzCheck(t, v, doc)
	})
}

// FuzzParseCycloneDX feeds arbitrary bytes to the CycloneDX reader.
func FuzzParseCycloneDX(f *testing.F) {
	addSeeds(f, "*.cdx.json")
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"tools":[{"name":"t"}],"component":{"name":"c","components":[{"name":"d","licenses":[{"expression":"MIT OR (GPL-3.0-only"}]}]}}}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.7","components":[{"name":"x","licenses":[{"license":{"name":"A B"}},{"license":{"id":"MIT"}}]}]}`))
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseCycloneDX(data)
		if err != nil {
			return
		}
		if doc.Format != FormatCycloneDX {
			t.Fatalf("format %q", doc.Format)
		}
		fuzzCheck(t, v, doc)
	})
}

// FuzzParseLicense feeds arbitrary strings to the SPDX license expression
// parser: whatever parses must print in a canonical form that parses back
// to itself and decides the same way.
func FuzzParseLicense(f *testing.F) {
	for _, s := range []string{
		"MIT", "MIT OR Apache-2.0", "(MIT AND (GPL-2.0+ WITH Classpath-exception-2.0 OR ISC))",
		"DocumentRef-a:LicenseRef-b AND LicenseRef-c", "GPL v3", "((", "mit and gpl-3.0-or-later",
		"GPL-2.0-only WITH AdditionRef-x", strings.Repeat("(", 70) + "MIT" + strings.Repeat(")", 70),
	} {
		f.Add(s)
	}
	policy, err := newLicensePolicy([]string{"GPL-3.0-only", "GPL-2.0+", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-X"}, "deniedLicenses")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLicense(s)
		if err != nil {
			if l != nil {
				t.Fatal("a license and an error")
			}
			return
		}
		canonical := l.String()
		again, err := ParseLicense(canonical)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canonical, s, err)
		}
		if again.String() != canonical {
			t.Fatalf("canonical form %q of %q parses to %q", canonical, s, again)
		}
		for _, allow := range []bool{false, true} {
			d1, u1 := policy.check(l, allow)
			d2, u2 := policy.check(again, allow)
			if a, b := strings.Join(d1, ",")+";"+strings.Join(u1, ","), strings.Join(d2, ",")+";"+strings.Join(u2, ","); a != b {
				t.Fatalf("%q denied by %q, its canonical form %q by %q", s, a, canonical, b)
			}
			if allow && len(u1) > 0 {
				t.Fatalf("%q: unknown %q although unknown licenses are allowed", s, u1)
			}
		}

		if len(l.Licenses()) == 0 {
			t.Fatalf("%q parses but names no license", s)
		}
	})
}

// FuzzCompareVersion feeds arbitrary versions, from SBOMs and deny rules,
// to each version scheme: no input may crash the comparison, a version
// equals itself, and swapping the two versions flips the answer.
func FuzzCompareVersion(f *testing.F) {
	for _, s := range [][2]string{
		{"1:1.2.13.dfsg-1", "2.0"}, {"1.0~rc1-1", "1.0-1"}, {"3.0.7-27.el9", "1:3.0.7-27.el9"}, {"1.0^git1", "1.0~rc1"},
		{"1.0.0-alpha.beta", "1.0.0-alpha.1"}, {"go1.22.3", "v1.2.3+incompatible"}, {"1!2.0.post1.dev3+local.7", "2.0rc1"},
		{"1-sp.1", "1.0-SNAPSHOT"}, {"", "1"}, {"99999999999999999999999", "1"},
	} {
		f.Add(uint8(0), s[0], s[1])
	}
	schemes := []VersionScheme{SchemeGeneric, SchemeDebian, SchemeRPM, SchemeSemver, SchemePEP440, SchemeMaven}
	f.Fuzz(func(t *testing.T, which uint8, a, b string) {
		s := schemes[int(which)%len(schemes)]
		ab, errAB := CompareVersionsBy(s, a, b)
		ba, errBA := CompareVersionsBy(s, b, a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("%s: %q vs %q: error %v one way, %v the other", s, a, b, errAB, errBA)
		}
		for _, err := range []error{errAB, errBA} {
			if err != nil && strings.Contains(err.Error(), "panicked") {
				t.Fatalf("%s: %q vs %q: %v", s, a, b, err)
			}
		}
		if errAB != nil {
			return
		}
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("%s: %q vs %q = %d, swapped = %d", s, a, b, ab, ba)
		}
		if c, err := CompareVersionsBy(s, a, a); err != nil || c != 0 {
			t.Fatalf("%s: %q vs itself = %d, %v", s, a, c, err)
		}
	})
}
