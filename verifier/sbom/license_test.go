package sbom

import (
	"strings"
	"testing"
)

func TestParseLicense(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want is the canonical form, or "error: …" (a substring)
	}{
		{"MIT", "MIT"},
		{"  MIT  ", "MIT"},
		{"MIT OR Apache-2.0", "MIT OR Apache-2.0"},
		{"mit or apache-2.0", "mit OR apache-2.0"},
		{"(MIT)", "MIT"},
		{"((MIT OR Apache-2.0))", "MIT OR Apache-2.0"},
		{"MIT AND BSD-3-Clause OR GPL-2.0-only", "MIT AND BSD-3-Clause OR GPL-2.0-only"},
		{"MIT AND (BSD-3-Clause OR GPL-2.0-only)", "MIT AND (BSD-3-Clause OR GPL-2.0-only)"},
		{"(MIT OR Apache-2.0) OR ISC", "MIT OR Apache-2.0 OR ISC"},
		{"GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"},
		{"GPL-2.0+ WITH Bison-exception-2.2 OR MIT", "GPL-2.0+ WITH Bison-exception-2.2 OR MIT"},
		{"GPL-2.0-or-later", "GPL-2.0-or-later"},
		{"LicenseRef-Proprietary", "LicenseRef-Proprietary"},
		{"DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2", "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2"},
		{"(Apache-2.0 AND GPL-2.0-only)", "Apache-2.0 AND GPL-2.0-only"},
		{"MIT\tAND\nISC", "MIT AND ISC"},

		{"", "error: empty"},
		{"   ", "error: empty"},
		{"GPL v3", "error: unexpected \"v3\""},
		{"Apache 2.0", "error: unexpected \"2.0\""},
		{"MIT AND", "error: expression ends"},
		{"AND MIT", "error: unexpected operator AND"},
		{"MIT OR OR ISC", "error: unexpected operator OR"},
		{"(MIT", "error: missing )"},
		{"MIT)", "error: unexpected \")\""},
		{"()", "error: unexpected )"},
		{"MIT WITH", "error: WITH must be followed"},
		{"(MIT OR ISC) WITH Foo-exception", "error: WITH must follow a single license"},
		{"MIT WITH A WITH B", "error: unexpected \"WITH\""},
		{"LicenseRef-X WITH Classpath-exception-2.0", "error: WITH cannot follow the license reference"},
		{"LicenseRef-X+", "error: cannot take \"+\""},
		{"MIT/Apache", "error: is not a license identifier"},
		{"GNU GPL", "error: unexpected"},
		{"MIT OR NOASSERTION", "error: NOASSERTION may only stand alone"},
		{"NONE", "error: NONE may only stand alone"},
		{strings.Repeat("(", 65) + "MIT" + strings.Repeat(")", 65), "error: nested deeper than 64"},
		{strings.Repeat("(", 64) + "MIT" + strings.Repeat(")", 64), "MIT"},
	} {
		l, err := ParseLicense(tc.in)
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil {
				t.Errorf("ParseLicense(%q) = %q, want an error with %q", tc.in, l, want)
			} else if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseLicense(%q) error %q, want it to contain %q", tc.in, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLicense(%q): %v", tc.in, err)
			continue
		}
		if got := l.String(); got != tc.want {
			t.Errorf("ParseLicense(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// The canonical form parses to itself.
		again, err := ParseLicense(l.String())
		if err != nil || again.String() != l.String() {
			t.Errorf("canonical form %q does not parse back to itself: %v, %q", l, err, again)
		}
	}
}

// TestLicensePolicy is the decision table for denied licenses: each row is
// a deny-list, a package's license expression and the licenses that deny it
// ("" when it is allowed).
func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2.3", "1.2.3", 0},
		{"v1.2.3", "1.2.3", 0},
		{"1.2", "1.2.0", 0},
		{"1.2", "1.2.1", -1},
		{"1.2.0.rc1", "1.2", -1},
		{"1.2.10", "1.2.9", 1},
		{"2.14.1", "2.15.0", -1},
		{"2.0.0-beta9", "2.0.0", -1},
		{"1.0.0-rc.1", "1.0.0-rc.2", -1},
		{"1.0.0-alpha", "1.0.0-beta", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.36.1-r2", "1.36.1", 1},
		{"1.36.1-r2", "1.36.1-r10", -1},
		{"1.36.1-r2", "1.36.2", -1},
		{"9.6p1", "9.6", 1},
		{"3.0.13-r0", "3.0.13-rc1", 1},
		{"0010", "10", 0},
		{"99999999999999999999999", "99999999999999999999998", 1},
		{"", "1", -1},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestDeniedPackages(t *testing.T) {
	log4j := &Package{Name: "log4j-core", Version: "2.14.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar"}
	fixed := &Package{Name: "log4j-core", Version: "2.17.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1"}
	noVersion := &Package{Name: "log4j-core"}
	debEpoch := &Package{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", PURL: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"}
	rpmEpoch := &Package{Name: "openssl", Version: "3.0.7-27.el9", PURL: "pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&epoch=1"}
	scoped := &Package{Name: "@angular/core", Version: "17.0.0", PURL: "pkg:npm/%40angular/core@17.0.0"}
	for _, tc := range []struct {
		entry string
		pkg   *Package
		want  bool
	}{
		{"log4j-core", log4j, true},
		{"LOG4J-Core", log4j, true},
		{"log4j", log4j, false},
		{"log4j-core@2.14.1", log4j, true},
		{"log4j-core@=2.14.1", log4j, true},
		{"log4j-core@v2.14.1", log4j, true},
		{"log4j-core@2.14.0", log4j, false},
		{"log4j-core@<2.15.0", log4j, true},
		{"log4j-core@<2.15.0", fixed, false},
		{"log4j-core@<=2.14.1", log4j, true},
		{"log4j-core@>2.14.1", log4j, false},
		{"log4j-core@>=2.0.0,<2.17.1", log4j, true},
		{"log4j-core@>=2.0.0, <2.17.1", fixed, false},
		{"log4j-core@<2.15.0", noVersion, true},
		{"pkg:maven/org.apache.logging.log4j/log4j-core", log4j, true},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@<2.15.0", log4j, true},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@<2.15.0", fixed, false},
		{"pkg:maven/other/log4j-core", log4j, false},
		{"pkg:maven/org.apache.logging.log4j/log4j-core", noVersion, false},
		{"@angular/core", scoped, true},
		{"@angular/core@<17.1", scoped, true},
		{"pkg:npm/%40angular/core@17.0.0", scoped, true},
		{"pkg:npm/@angular/core", scoped, true},

		// Versions compare by the package's ecosystem, from its purl.
		{"zlib1g@<1.3", debEpoch, false}, // the epoch outranks 1.3
		{"zlib1g@>=1:1.2.13.dfsg-1", debEpoch, true},
		{"pkg:deb/debian/zlib1g@<1:1.2.13.dfsg-1+b1", debEpoch, true},
		{"pkg:deb/debian/zlib1g@<1:1.2.13.dfsg-1~", debEpoch, false}, // "~" sorts before the end
		{"openssl@<1:3.0.7-28.el9", rpmEpoch, true},                  // the purl's epoch qualifier counts
		{"openssl@<3.0.8", rpmEpoch, false},
		{"foo@>1.0", &Package{Name: "foo", Version: "1.0a", PURL: "pkg:rpm/fedora/foo@1.0a"}, true},
		{"django@<2.0a1", &Package{Name: "django", Version: "2.0.dev1", PURL: "pkg:pypi/django@2.0.dev1"}, true},
		{"left-pad@=1.2.3", &Package{Name: "left-pad", Version: "1.2.3+build.5", PURL: "pkg:npm/left-pad@1.2.3"}, true},
		{"left-pad@>=1.0.0-alpha.1", &Package{Name: "left-pad", Version: "1.0.0-alpha.beta", PURL: "pkg:npm/left-pad@1.0.0-alpha.beta"}, true},
		{"log4j-core@<2.15.0", &Package{Name: "log4j-core", Version: "2.15.0-rc1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0-rc1"}, true},
		{"log4j-core@<=2.15", &Package{Name: "log4j-core", Version: "2.15.0.Final", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0.Final"}, true},
		// Fail closed: a version its ecosystem cannot read.
		{"zlib1g@<1.0", &Package{Name: "zlib1g", Version: "latest", PURL: "pkg:deb/debian/zlib1g@latest"}, true},
		{"left-pad@>9", &Package{Name: "left-pad", Version: "1.2.3.4", PURL: "pkg:npm/left-pad@1.2.3.4"}, true},
	} {
		d, err := parseDeniedPackage(tc.entry)
		if err != nil {
			t.Errorf("%q: %v", tc.entry, err)
			continue
		}
		why, got := d.matches(tc.pkg)
		if got && len(d.constraints) > 0 && tc.pkg.Version != "" && !strings.Contains(why, "compared as") && !strings.Contains(why, "not comparable") {
			t.Errorf("%q on %+v: reason %q does not say how versions compared", tc.entry, *tc.pkg, why)
		}
		if got != tc.want {
			t.Errorf("%q on %+v: matched %v (%q), want %v", tc.entry, *tc.pkg, got, why, tc.want)
		}
	}
	for _, bad := range []string{"", "name@", "name@<", "name@<1 2", "name@~1.2", "pkg:maven/x/y?type=jar", "pkg:maven", "@",
		"pkg:deb/debian/zlib1g@<x:1.0", "pkg:npm/left-pad@<1.2.3.4", "pkg:pypi/django@<2.0-beta-gamma"} {
		if _, err := parseDeniedPackage(bad); err == nil {
			t.Errorf("parseDeniedPackage(%q) accepted a malformed entry", bad)
		}
	}
}
