package sbom

import (
	"strings"
	"testing"
)

func TestLicensePolicy(t *testing.T) {
	gpl3 := []string{"GPL-3.0-only"}
	for _, tc := range []struct {
		deny    []string
		license string
		want    string
	}{
		// ORs: some choice must avoid every denied license.
		{gpl3, "MIT", ""},
		{gpl3, "GPL-3.0-only", "GPL-3.0-only"},
		{gpl3, "gpl-3.0-ONLY", "gpl-3.0-ONLY"},
		{gpl3, "MIT OR GPL-3.0-only", ""},
		{gpl3, "GPL-3.0-only OR MIT", ""},
		{gpl3, "MIT AND GPL-3.0-only", "GPL-3.0-only"},
		{gpl3, "(Apache-2.0 AND GPL-3.0-only)", "GPL-3.0-only"},
		{gpl3, "(MIT OR GPL-3.0-only) AND Apache-2.0", ""},
		{gpl3, "(MIT AND GPL-3.0-only) OR Apache-2.0", ""},
		{gpl3, "(MIT AND GPL-3.0-only) OR (ISC AND GPL-3.0-or-later)", "GPL-3.0-only, GPL-3.0-or-later"},
		{[]string{"GPL-3.0-only", "MIT"}, "MIT OR GPL-3.0-only", "GPL-3.0-only, MIT"},
		{[]string{"GPL-3.0-only OR MIT"}, "MIT OR GPL-3.0-only", "GPL-3.0-only, MIT"},

		// Deprecated GNU identifiers and "+" name the same versions.
		{gpl3, "GPL-3.0", "GPL-3.0"},
		{gpl3, "GPL-3.0+", "GPL-3.0+"},
		{gpl3, "GPL-3.0-or-later", "GPL-3.0-or-later"},
		{[]string{"GPL-3.0"}, "GPL-3.0-only", "GPL-3.0-only"},
		{[]string{"GPL-2.0+"}, "GPL-2.0-or-later", "GPL-2.0-or-later"},

		// Or later: a denied "-or-later" covers later versions of the same
		// license; "or later" in a package does not escape a denied version.
		{[]string{"GPL-2.0-or-later"}, "GPL-3.0-only", "GPL-3.0-only"},
		{[]string{"GPL-2.0-or-later"}, "GPL-2.0-only", "GPL-2.0-only"},
		{[]string{"GPL-2.0-or-later"}, "GPL-1.0-only", ""},
		{[]string{"GPL-2.0-or-later"}, "LGPL-2.1-only", ""},
		{[]string{"GPL-2.0-or-later"}, "AGPL-3.0-only", ""},
		{[]string{"GPL-2.0+"}, "GPL-3", " unknown: GPL-3"},
		{[]string{"GPL-2.0-only"}, "GPL-2.0-or-later", "GPL-2.0-or-later"},
		{[]string{"GPL-2.0-only"}, "GPL-3.0-only", ""},
		{[]string{"LGPL-2.1-only"}, "LGPL-2.1+", "LGPL-2.1+"},
		{[]string{"Apache-1.0"}, "Apache-2.0", ""},
		{[]string{"Apache-1.0+"}, "Apache-2.0", "Apache-2.0"},

		// Unversioned identifiers match only themselves.
		{[]string{"MIT"}, "MIT-0", ""},
		{[]string{"MIT-0"}, "MIT", ""},
		{[]string{"BSD-3-Clause"}, "BSD-2-Clause", ""},
		{[]string{"BSD-3-Clause"}, "bsd-3-clause", "bsd-3-clause"},
		{[]string{"Artistic-1.0"}, "Artistic-1.0-Perl", ""},

		// Exceptions.
		{[]string{"GPL-2.0-only"}, "GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"},
		{[]string{"GPL-2.0-only WITH Classpath-exception-2.0"}, "GPL-2.0-only", ""},
		{[]string{"GPL-2.0-only WITH Classpath-exception-2.0"}, "GPL-2.0-only WITH classpath-exception-2.0", "GPL-2.0-only WITH classpath-exception-2.0"},
		{[]string{"GPL-2.0-only WITH Classpath-exception-2.0"}, "GPL-2.0-only WITH GCC-exception-3.1", ""},

		// References.
		{[]string{"LicenseRef-Proprietary"}, "LicenseRef-proprietary", "LicenseRef-proprietary"},
		{[]string{"LicenseRef-Proprietary"}, "DocumentRef-x:LicenseRef-Proprietary", ""},
		{[]string{"LicenseRef-Proprietary"}, "Proprietary", " unknown: Proprietary"},
		{[]string{"DocumentRef-x:LicenseRef-P"}, "MIT AND DocumentRef-X:LicenseRef-p", "DocumentRef-X:LicenseRef-p"},

		// Licenses not on the SPDX list count as denied where nothing else
		// is, so that a misspelt denied license cannot pass.
		{gpl3, "GPL3", " unknown: GPL3"},
		{gpl3, "MIT OR GPL3", ""},
		{gpl3, "MIT AND GPL3", " unknown: GPL3"},
		{gpl3, "GPL-3.0-only AND Foo-1.0", "GPL-3.0-only unknown: Foo-1.0"},
		{gpl3, "GPL-2.0-only WITH Foo-exception", " unknown: Foo-exception"},
		{gpl3, "GPL-2.0-only WITH AdditionRef-Foo", ""},
		{gpl3, "LicenseRef-Anything", ""},

		// Nothing denied.
		{nil, "GPL-3.0-only", ""},
	} {
		p, err := newLicensePolicy(tc.deny, "deniedLicenses")
		if err != nil {
			t.Fatalf("%v: %v", tc.deny, err)
		}
		l, err := ParseLicense(tc.license)
		if err != nil {
			t.Fatalf("%q: %v", tc.license, err)
		}
		denied, unknown := p.check(l, false)
		got := strings.Join(denied, ", ")
		if len(unknown) > 0 {
			got += " unknown: " + strings.Join(unknown, ", ")
		}
		if got != tc.want {
			t.Errorf("deny %q, license %q: denied by %q, want %q", tc.deny, tc.license, got, tc.want)
		}
	}
}

func TestLicensePolicyRefuses(t *testing.T) {
	for _, tc := range []struct {
		entry, want string
	}{
		{"MIT AND GPL-3.0-only", "licenses joined by OR"},
		{"(MIT OR ISC) AND GPL-3.0-only", "licenses joined by OR"},
		{"GPL v3", "not an SPDX license expression"},
		{"NOASSERTION", "use requireLicenses"},
		{"", "empty license expression"},
		{"GPL-3", `"GPL-3" is not on the SPDX license list 3.29.0`},
		{"GPL-2.0-only WITH Foo-exception", `"Foo-exception" is not on the SPDX license list`},
	} {
		_, err := newLicensePolicy([]string{"MIT", tc.entry}, "sbom.deniedLicenses")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sbom.deniedLicenses[1]: ") {
			t.Errorf("entry %q: error %v, want one naming sbom.deniedLicenses[1] and saying %q", tc.entry, err, tc.want)
		}
	}
}
