package sbom

import (
	"errors"
	"fmt"
	"time"

	"github.com/vouch-project/vouch/internal/maxage"
)

// Config is the `sbom:` section of a verifier in vouch's config file.
//
// +kubebuilder:object:generate=true
type Config struct {
	// DeniedLicenses lists SPDX licenses that no package may be bound by:
	// identifiers ("GPL-3.0-only", "AGPL-3.0-or-later", "GPL-2.0+"),
	// references ("LicenseRef-Proprietary"), a license WITH an exception,
	// or several joined by OR. Identifiers and exceptions must be on the
	// SPDX license list (LicenseListVersion). A package is denied when
	// every choice through the ORs of its license expression includes a
	// denied license or one not on the SPDX list; see the package
	// documentation for how versions and exceptions match. Optional;
	// default none.
	DeniedLicenses []string `json:"deniedLicenses,omitempty"`
	// AllowUnparsableLicenses lets a package whose license is not a valid
	// SPDX expression ("GPL v3", "Apache 2.0"), or names a license not on
	// the SPDX license list ("GPL-3", "Foo-1.0"), pass the deniedLicenses
	// check. Optional; default false: such a package fails as "unparsable
	// license" or "unknown license", since vouch cannot show that it
	// avoids the denied licenses. Has no effect without deniedLicenses.
	AllowUnparsableLicenses bool `json:"allowUnparsableLicenses,omitempty"`
	// RequireLicenses fails every package that states no license: none at
	// all, NOASSERTION or NONE. What the SBOM describes (the scanned image
	// itself), files and operating systems are exempt (Package.Licensable).
	// Optional; default false.
	RequireLicenses bool `json:"requireLicenses,omitempty"`
	// DeniedPackages lists packages that must not be present: "NAME" (any
	// version), "NAME@VERSION" (that version), "NAME@<VERSION",
	// "NAME@<=VERSION", "NAME@>VERSION", "NAME@>=VERSION", or comparisons
	// joined by commas ("log4j-core@>=2.0.0,<2.17.1"). NAME matches the
	// package name, ignoring case; a package URL without version
	// ("pkg:maven/org.apache.logging.log4j/log4j-core@<2.17.1") matches the
	// package's purl instead. Versions compare by the rules of the
	// package's ecosystem, which its purl type names (VersionScheme:
	// Debian, RPM, semver, PEP 440, Maven), else as CompareVersions says;
	// a package with no version, or one its ecosystem cannot read, matches
	// any version constraint. Optional; default none.
	DeniedPackages []string `json:"deniedPackages,omitempty"`
	// MaxAge is how old the SBOM may be, from its creation time (SPDX
	// creationInfo.created, CycloneDX metadata.timestamp): a Go duration
	// ("720h", "36h30m") or whole days ("30d", "7d12h"). An SBOM without a
	// readable creation time then fails. Optional; default no limit.
	MaxAge string `json:"maxAge,omitempty"`
	// ListPackages puts every package of the SBOM into the result's
	// details as "packageList" (name, version, purl, license, ecosystem),
	// for a Rego or CEL policy to decide on; at most MaxPackageList
	// packages and MaxListBytes of their text, "morePackageList" counting
	// the rest. Optional; default false: the details count the packages
	// and list only the offending ones, which keeps reports and cached
	// verdicts small.
	ListPackages bool `json:"listPackages,omitempty"`
}

// Validate checks c; errors name the field by its path below prefix, such
// as prefix+".deniedLicenses[1]: ...".
func (c *Config) Validate(prefix string) error {
	_, err := c.compile(prefix)
	return err
}

// policy is a Config checked and compiled.
type policy struct {
	licenses        *licensePolicy
	packages        []deniedPackage
	maxAge          time.Duration
	requireLicenses bool
	allowUnparsable bool
	listPackages    bool
}

func (c *Config) compile(prefix string) (*policy, error) {
	if c == nil {
		return nil, errors.New(prefix + ": no configuration")
	}
	p := &policy{requireLicenses: c.RequireLicenses, allowUnparsable: c.AllowUnparsableLicenses, listPackages: c.ListPackages}
	var err error
	if p.licenses, err = newLicensePolicy(c.DeniedLicenses, prefix+".deniedLicenses"); err != nil {
		return nil, err
	}
	for i, e := range c.DeniedPackages {
		d, err := parseDeniedPackage(e)
		if err != nil {
			return nil, fmt.Errorf("%s.deniedPackages[%d]: %v", prefix, i, err)
		}
		p.packages = append(p.packages, d)
	}
	if c.MaxAge != "" {
		if p.maxAge, err = maxage.Parse(c.MaxAge); err != nil {
			return nil, fmt.Errorf("%s.maxAge: %v", prefix, err)
		}
	}
	return p, nil
}
