package sbom

import (
	"errors"
	"strings"
	"testing"
)

// TestCompareVersionsBy checks each scheme on its ecosystem's own
// documented examples. Each chain lists versions in ascending order;
// versions joined by " = " in one step compare equal.
func TestCompareVersionsBy(t *testing.T) {
	for _, tc := range []struct {
		scheme VersionScheme
		source string
		chain  []string
	}{
		// Debian Policy §5.6.12: "~" sorts before anything, even the end
		// of a part ("~~" < "~~a" < "~" < "" < "a"); the epoch wins over
		// everything after it; no revision equals revision 0.
		{SchemeDebian, "Debian Policy 5.6.12", []string{"1.0~~", "1.0~~a", "1.0~", "1.0 = 1.0-0 = 0:1.0", "1.0a", "1.0.0", "1.0.1~rc1-1", "1.0.1-1", "1.0.1-1+deb12u1", "1.0.1-2", "2.0", "1:1.0", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+b1", "2:0.1"}},
		// rpm's rpmvercmp test suite (tests/rpmvercmp.at): an extra
		// segment is newer, numbers are newer than letters, "~" is older
		// and "^" newer than the end of the version.
		{SchemeRPM, "rpm tests/rpmvercmp.at", []string{"1.0~rc1~git123", "1.0~rc1", "1.0~rc2", "1.0 = 1.0", "1.0^git1", "1.0^git2", "1.0a", "1.0.1", "1.01", "2.0", "2.0.1", "2.0.1a", "5.5p1", "5.5p2", "5.5p10", "10xyz", "10.1xyz", "1:1.0-1", "1:1.0-2"}},
		// semver.org §11: precedence of pre-releases; build metadata is
		// ignored (§10).
		{SchemeSemver, "semver 2.0.0 §10, §11", []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0 = v1.0.0 = 1.0.0+build.5 = 1.0", "go1.22.3", "1.22.10", "v2.1.2-0.20241115132648-6f4aee6ccd23", "v2.1.2 = v2.1.2+incompatible", "2.10.0"}},
		// PEP 440's own ordering example ("Summary of permitted suffixes
		// and relative ordering"), then epochs and normalisation.
		{SchemePEP440, "PEP 440", []string{"1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1 = 1.0c1 = 1.0-RC-1", "1.0 = 1.0.0 = v1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1", "2.0", "1!1.0"}},
		// Maven's version order specification (ComparableVersion).
		{SchemeMaven, "Maven version order specification", []string{"1-alpha", "1-a1 = 1-alpha-1", "1-beta", "1-milestone", "1-rc = 1-cr", "1-snapshot", "1 = 1.0 = 1-ga = 1.ga = 1-final = 1-0", "1-sp", "1-sp.1", "1.1", "2.14.1", "2.17.1", "2.17.10"}},
	} {
		t.Run(string(tc.scheme), func(t *testing.T) {
			var prev []string
			for _, step := range tc.chain {
				group := strings.Split(step, " = ")
				for _, a := range group {
					for _, b := range group {
						if c, err := CompareVersionsBy(tc.scheme, a, b); err != nil || c != 0 {
							t.Errorf("%s: %q vs %q = %d, %v; want equal", tc.source, a, b, c, err)
						}
					}
					for _, b := range prev {
						if c, err := CompareVersionsBy(tc.scheme, b, a); err != nil || c != -1 {
							t.Errorf("%s: %q vs %q = %d, %v; want -1", tc.source, b, a, c, err)
						}
						if c, err := CompareVersionsBy(tc.scheme, a, b); err != nil || c != 1 {
							t.Errorf("%s: %q vs %q = %d, %v; want 1", tc.source, a, b, c, err)
						}
					}
				}
				prev = append(prev, group...)
			}
		})
	}
}

func TestCompareVersionsByInvalid(t *testing.T) {
	for _, tc := range []struct {
		scheme  VersionScheme
		version string
		want    string
	}{
		{SchemeDebian, "abc", `"abc" is not a valid Debian version: upstream_version must start with digit`},
		{SchemeDebian, "x:1.0", `"x:1.0" is not a valid Debian version: epoch parse error`},
		{SchemeDebian, "1.0 beta", `"1.0 beta" is not a valid Debian version`},
		{SchemeRPM, "x:1.0", `"x:1.0" is not a valid RPM version: epoch "x" is not a number`},
		{SchemeRPM, "", `"" is not a valid RPM version: no version`},
		{SchemeSemver, "1.2.3.4", `"1.2.3.4" is not a valid semver version`},
		{SchemeSemver, "latest", `"latest" is not a valid semver version`},
		{SchemePEP440, "1.0-foo", `"1.0-foo" is not a valid PEP 440 version`},
		{SchemeMaven, " ", `" " is not a valid Maven version: empty`},
		{SchemeGeneric, strings.Repeat("1", maxVersionLen+1), "is longer than 256 bytes"},
	} {
		_, err := CompareVersionsBy(tc.scheme, "1.0", tc.version)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want %q", tc.scheme, tc.version, err, tc.want)
		}
		var iv *InvalidVersionError
		if tc.scheme != SchemeGeneric && !errors.As(err, &iv) {
			t.Errorf("%s %q: error %T, want an *InvalidVersionError", tc.scheme, tc.version, err)
		}
	}
}

func TestSchemeOf(t *testing.T) {
	for purl, want := range map[string]VersionScheme{
		"pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12": SchemeDebian,
		"pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&epoch=1":           SchemeRPM,
		"pkg:npm/%40angular/core@17.0.0":                                    SchemeSemver,
		"pkg:cargo/serde@1.0.200":                                           SchemeSemver,
		"pkg:golang/github.com/x/y@v1.2.3":                                  SchemeSemver,
		"pkg:pypi/django@5.0rc1":                                            SchemePEP440,
		"pkg:PyPI/django@5.0":                                               SchemePEP440,
		"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar":     SchemeMaven,
		"pkg:apk/alpine/busybox@1.36.1-r29":                                 SchemeGeneric,
		"pkg:gem/rails@7.1.0":                                               SchemeGeneric,
		"":                                                                  SchemeGeneric,
		"not a purl":                                                        SchemeGeneric,
	} {
		if got := SchemeOf(purl); got != want {
			t.Errorf("SchemeOf(%q) = %q, want %q", purl, got, want)
		}
	}
}
