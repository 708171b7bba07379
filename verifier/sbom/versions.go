package sbom

// This file compares package versions by the rules of the package's
// ecosystem, which its package URL's type names.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	pep440 "github.com/aquasecurity/go-pep440-version"
	debversion "github.com/knqyf263/go-deb-version"
	rpmversion "github.com/knqyf263/go-rpm-version"
	mvnversion "github.com/masahiro331/go-mvn-version"
	"github.com/package-url/packageurl-go"
)

// VersionScheme names the rules by which two versions of a package are
// ordered.
type VersionScheme string

// The version schemes vouch knows, and the purl types that select them.
const (
	// SchemeDebian is dpkg's order (Debian Policy §5.6.12): an epoch
	// before ":", the upstream version, a revision after the last "-";
	// "~" sorts before anything, even the end of the version. purl type
	// deb.
	SchemeDebian VersionScheme = "Debian"
	// SchemeRPM is rpmvercmp's order: an epoch, version and release; "~"
	// sorts before and "^" after the end of the version. purl type rpm.
	SchemeRPM VersionScheme = "RPM"
	// SchemeSemver is Semantic Versioning 2.0.0 precedence: pre-release
	// identifiers compare numerically or lexically, build metadata is
	// ignored. A leading "v" is allowed and a missing minor or patch
	// counts as 0. purl types npm, cargo and golang (whose standard
	// library's "go1.22.3" reads as 1.22.3).
	SchemeSemver VersionScheme = "semver"
	// SchemePEP440 is Python's order (PEP 440): epochs, dev, pre-, post-
	// and local releases. purl type pypi.
	SchemePEP440 VersionScheme = "PEP 440"
	// SchemeMaven is Maven's ComparableVersion order: qualifiers alpha <
	// beta < milestone < rc < snapshot < release < sp; any string is a
	// version, and a leading "v" before a digit is ignored. purl type
	// maven.
	SchemeMaven VersionScheme = "Maven"
	// SchemeGeneric is CompareVersions, for packages whose ecosystem is
	// unknown or has no scheme of its own here (apk, gem, nuget, …).
	SchemeGeneric VersionScheme = "generic"
)

// schemeOfType maps purl types (https://github.com/package-url/purl-spec)
// to the scheme their versions follow.
var schemeOfType = map[string]VersionScheme{
	"deb":    SchemeDebian,
	"rpm":    SchemeRPM,
	"npm":    SchemeSemver,
	"cargo":  SchemeSemver,
	"golang": SchemeSemver,
	"pypi":   SchemePEP440,
	"maven":  SchemeMaven,
}

// SchemeOf returns the version scheme of a package URL's type
// ("pkg:deb/debian/zlib1g@1:1.2.13" → SchemeDebian), SchemeGeneric when
// the purl is empty, does not parse or has a type without a scheme.
func SchemeOf(purl string) VersionScheme {
	if purl == "" {
		return SchemeGeneric
	}
	p, err := packageurl.FromString(purl)
	if err != nil {
		return SchemeGeneric
	}
	if s, ok := schemeOfType[strings.ToLower(p.Type)]; ok {
		return s
	}
	return SchemeGeneric
}

// maxVersionLen bounds a version string that a scheme parses; versions
// come from SBOMs anyone can attach.
const maxVersionLen = 256

// CompareVersionsBy compares versions a and b under scheme s, returning
// -1, 0 or 1. It returns an error naming the version that is not valid
// under s; SchemeGeneric and SchemeMaven order any string.
func CompareVersionsBy(s VersionScheme, a, b string) (c int, err error) {
	for _, v := range []string{a, b} {
		if len(v) > maxVersionLen {
			return 0, fmt.Errorf("version %q… is longer than %d bytes", v[:32], maxVersionLen)
		}
	}
	if s == SchemeGeneric || s == "" {
		return CompareVersions(a, b), nil
	}
	// The parsers are third-party code reading outside input: a panic
	// becomes an error, never a crash.
	err = guard(string(s)+" version comparison", func() error {
		var err error
		c, err = compareBy(s, a, b)
		return err
	})
	return c, err
}

func compareBy(s VersionScheme, a, b string) (int, error) {
	switch s {
	case SchemeDebian:
		va, err := debversion.NewVersion(a)
		if err != nil {
			return 0, invalidVersion(s, a, err)
		}
		vb, err := debversion.NewVersion(b)
		if err != nil {
			return 0, invalidVersion(s, b, err)
		}
		return sign(va.Compare(vb)), nil
	case SchemeRPM:
		for _, v := range []string{a, b} {
			if err := checkRPM(v); err != nil {
				return 0, invalidVersion(s, v, err)
			}
		}
		return sign(rpmversion.NewVersion(a).Compare(rpmversion.NewVersion(b))), nil
	case SchemeSemver:
		va, err := semver.NewVersion(goRelease(a))
		if err != nil {
			return 0, invalidVersion(s, a, err)
		}
		vb, err := semver.NewVersion(goRelease(b))
		if err != nil {
			return 0, invalidVersion(s, b, err)
		}
		return sign(va.Compare(vb)), nil
	case SchemePEP440:
		va, err := pep440.Parse(a)
		if err != nil {
			return 0, invalidVersion(s, a, err)
		}
		vb, err := pep440.Parse(b)
		if err != nil {
			return 0, invalidVersion(s, b, err)
		}
		return sign(va.Compare(vb)), nil
	case SchemeMaven:
		for _, v := range []string{a, b} {
			if strings.TrimSpace(v) == "" {
				return 0, invalidVersion(s, v, errors.New("empty"))
			}
		}
		a, b = trimV(a), trimV(b)
		va, err := mvnversion.NewVersion(a)
		if err != nil {
			return 0, invalidVersion(s, a, err)
		}
		vb, err := mvnversion.NewVersion(b)
		if err != nil {
			return 0, invalidVersion(s, b, err)
		}
		return sign(va.Compare(vb)), nil
	}
	return 0, fmt.Errorf("unknown version scheme %q", s)
}

// InvalidVersionError reports a version that its scheme's rules cannot
// read.
type InvalidVersionError struct {
	Scheme  VersionScheme
	Version string
	Err     error
}

func (e *InvalidVersionError) Error() string {
	return fmt.Sprintf("%q is not a valid %s version: %v", e.Version, e.Scheme, e.Err)
}

func (e *InvalidVersionError) Unwrap() error { return e.Err }

func invalidVersion(s VersionScheme, v string, err error) error {
	return &InvalidVersionError{Scheme: s, Version: v, Err: err}
}

// checkRPM refuses what rpm's version parser refuses and go-rpm-version
// silently reads as something else: an empty version, a non-numeric
// epoch.
func checkRPM(v string) error {
	v = strings.TrimSpace(v)
	epoch, rest, hasEpoch := strings.Cut(v, ":")
	if !hasEpoch {
		rest = v
	} else if epoch == "" || strings.Trim(epoch, "0123456789") != "" || len(epoch) > 9 {
		return fmt.Errorf("epoch %q is not a number", epoch)
	}
	if rest == "" || strings.HasPrefix(rest, "-") {
		return errors.New("no version")
	}
	return nil
}

// trimV drops a "v" or "V" before a digit ("v2.14.1"), which Maven's order
// would read as a word.
func trimV(v string) string {
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	return v
}

// goRelease reads Go's release versions ("go1.22.3", as SBOMs give the
// standard library's) as semver ("1.22.3").
func goRelease(v string) string {
	if rest, ok := strings.CutPrefix(v, "go"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		return rest
	}
	return v
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// packageVersion is p's version as its scheme reads it: for RPM and
// Debian packages whose purl carries an "epoch" qualifier and whose
// version has none, the epoch is put in front ("1:3.0.7-27.el9"), as
// syft writes RPM purls.
func packageVersion(p *Package, s VersionScheme) string {
	if (s != SchemeRPM && s != SchemeDebian) || strings.Contains(p.Version, ":") {
		return p.Version
	}
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		return p.Version
	}
	if e := u.Qualifiers.Map()["epoch"]; e != "" && e != "0" {
		return e + ":" + p.Version
	}
	return p.Version
}
