package sbom

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"
)

// deniedPackage is one entry of Config.DeniedPackages.
type deniedPackage struct {
	text string
	// name is the lower-cased package name, or for a purl entry the
	// lower-cased purl without version, qualifiers and subpath.
	name string
	purl bool
	// scheme is the version scheme a purl entry's type names; "" for a
	// name entry, whose packages' purls say.
	scheme VersionScheme
	// constraints all hold for a denied version; none means every version.
	constraints []versionConstraint
}

type versionConstraint struct {
	op      string // "=", "<", "<=", ">", ">="
	version string
}

// parseDeniedPackage parses "name", "name@1.2.3", "name@<1.2.0",
// "name@>=1.0,<1.2" or the same with a purl ("pkg:maven/org.x/y@<2").
func parseDeniedPackage(entry string) (deniedPackage, error) {
	s := strings.TrimSpace(entry)
	d := deniedPackage{text: s}
	if s == "" {
		return d, fmt.Errorf("empty entry")
	}
	name, constraint, hasAt := s, "", false
	if strings.HasPrefix(strings.ToLower(s), "pkg:") {
		if strings.ContainsAny(s, "?#") {
			return d, fmt.Errorf("%q: purl qualifiers (?…) and subpaths (#…) are not supported in a denied package", entry)
		}
		d.purl = true
		if i := strings.LastIndex(s, "@"); i > strings.LastIndex(s, "/") {
			name, constraint, hasAt = s[:i], s[i+1:], true
		}
		name = normalizePURL(name)
		if !strings.Contains(name, "/") || strings.HasSuffix(name, "/") || strings.HasPrefix(name, "pkg:/") {
			return d, fmt.Errorf("%q: a purl names a type and a package (pkg:TYPE/[NAMESPACE/]NAME)", entry)
		}
	} else if i := strings.LastIndex(s, "@"); i > 0 {
		// i > 0: npm's "@scope/name" starts with "@".
		name, constraint, hasAt = s[:i], s[i+1:], true
	}
	d.name = strings.ToLower(strings.TrimSpace(name))
	if strings.Trim(d.name, "@") == "" {
		return d, fmt.Errorf("%q: no package name", entry)
	}
	constraint = strings.TrimSpace(constraint)
	if hasAt && constraint == "" {
		return d, fmt.Errorf("%q: nothing after \"@\"; write NAME, NAME@VERSION or NAME@<VERSION", entry)
	}
	if constraint == "" {
		return d, nil
	}
	for _, part := range strings.Split(constraint, ",") {
		part = strings.TrimSpace(part)
		op := "="
		for _, o := range []string{"<=", ">=", "==", "<", ">", "="} {
			if rest, ok := strings.CutPrefix(part, o); ok {
				op, part = o, strings.TrimSpace(rest)
				break
			}
		}
		if op == "==" {
			op = "="
		}
		if part == "" || strings.ContainsAny(part, " <>=!") || !isAlnum(part[0]) {
			return d, fmt.Errorf("%q: %q is not a version constraint (VERSION, =VERSION, <VERSION, <=VERSION, >VERSION or >=VERSION, joined by commas)", entry, constraint)
		}
		d.constraints = append(d.constraints, versionConstraint{op: op, version: part})
	}
	if d.purl {
		typ, _, _ := strings.Cut(strings.TrimPrefix(d.name, "pkg:"), "/")
		d.scheme = schemeOfType[typ]
		if d.scheme == "" {
			d.scheme = SchemeGeneric
		}
		for _, c := range d.constraints {
			// Comparing the version with itself parses it by the scheme.
			if _, err := CompareVersionsBy(d.scheme, c.version, c.version); err != nil {
				return d, fmt.Errorf("%q: %v", entry, err)
			}
		}
	}
	return d, nil
}

// matches reports whether p is denied by d, and why in words.
func (d deniedPackage) matches(p *Package) (string, bool) {
	if d.purl {
		if p.PURL == "" || normalizePURL(p.PURL) != d.name {
			return "", false
		}
	} else if !strings.EqualFold(p.Name, d.name) {
		return "", false
	}
	if len(d.constraints) == 0 {
		return "denied package " + d.text, true
	}
	if p.Version == "" {
		// Fail closed: nothing shows the package is outside the range.
		return "denied package " + d.text + " (version unknown)", true
	}
	scheme := d.scheme
	if !d.purl {
		scheme = SchemeOf(p.PURL)
	}
	version := packageVersion(p, scheme)
	for _, c := range d.constraints {
		cmp, err := CompareVersionsBy(scheme, version, c.version)
		if err != nil {
			// Fail closed: a version its ecosystem cannot read might be
			// in the range.
			return fmt.Sprintf("denied package %s, not comparable: %v", d.text, err), true
		}
		ok := false
		switch c.op {
		case "=":
			ok = cmp == 0
		case "<":
			ok = cmp < 0
		case "<=":
			ok = cmp <= 0
		case ">":
			ok = cmp > 0
		case ">=":
			ok = cmp >= 0
		}
		if !ok {
			return "", false
		}
	}
	return fmt.Sprintf("denied package %s, compared as %s versions", d.text, scheme), true
}

// normalizePURL lower-cases a package URL and drops its version,
// qualifiers and subpath, so that "pkg:Maven/org.x/y@1.0?type=jar" and
// "pkg:maven/org.x/y" compare equal.
func normalizePURL(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	// The version follows the last "@" after the last "/"
	// ("pkg:npm/%40scope/name@1.0").
	if i := strings.LastIndex(p, "@"); i > strings.LastIndex(p, "/") {
		p = p[:i]
	}
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	return strings.ToLower(strings.TrimSuffix(p, "/"))
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// CompareVersions compares two version strings the way most ecosystems
// order them, returning -1, 0 or 1: SchemeGeneric, for packages whose
// ecosystem has no scheme of its own (CompareVersionsBy has them). It is
// semver-ish, not any one scheme:
//
//   - a leading "v" before a digit is ignored;
//   - a version is split into runs of digits and runs of letters; other
//     characters only separate them ("1.2.3-rc.1" → 1 2 3 rc 1);
//   - runs compare pairwise: numbers numerically, letters
//     case-insensitively, and a number sorts after letters;
//   - when one version runs out, a following letter run makes the longer
//     one a pre-release, sorting before ("1.0-rc1" < "1.0"), except the
//     post-release markers r, p, pl, patch, post and rev (Alpine's
//     "1.36.1-r2", OpenSSH's "9.6p1"), which sort after ("1.36.1" <
//     "1.36.1-r2"); a following number makes the longer one later
//     ("1.0" < "1.0.1"), except zeros ("1.2" equals "1.2.0").
func CompareVersions(a, b string) int {
	ta, tb := versionTokens(a), versionTokens(b)
	for i := 0; i < len(ta) || i < len(tb); i++ {
		if i >= len(ta) {
			return -tailSign(tb[i:])
		}
		if i >= len(tb) {
			return tailSign(ta[i:])
		}
		if c := compareToken(ta[i], tb[i]); c != 0 {
			return c
		}
	}
	return 0
}

// tailSign is how a version compares with its own prefix when the runs
// after the prefix are tail: equal when they are all zeros ("1.2.0" and
// "1.2"), else later (1) when the first non-zero run is a number or a
// post-release marker, earlier (-1) when it is a pre-release word.
func tailSign(tail []string) int {
	for _, t := range tail {
		if isDigits(t) && strings.Trim(t, "0") == "" {
			continue
		}
		if isDigits(t) || postRelease[t] {
			return 1
		}
		return -1
	}
	return 0
}

var postRelease = map[string]bool{"r": true, "p": true, "pl": true, "patch": true, "post": true, "rev": true}

func compareToken(x, y string) int {
	dx, dy := isDigits(x), isDigits(y)
	switch {
	case dx && dy:
		x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
		if len(x) != len(y) {
			return cmp.Compare(len(x), len(y))
		}
		return strings.Compare(x, y)
	case dx:
		return 1
	case dy:
		return -1
	}
	px, py := postRelease[x], postRelease[y]
	if px != py {
		if px {
			return 1
		}
		return -1
	}
	return strings.Compare(x, y)
}

func isDigits(s string) bool {
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// versionTokens splits v into lower-cased runs of digits and of letters.
func versionTokens(v string) []string {
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	var out []string
	i := 0
	for i < len(v) {
		c := v[i]
		var class func(byte) bool
		switch {
		case c >= '0' && c <= '9':
			class = func(b byte) bool { return b >= '0' && b <= '9' }
		case c >= 'a' && c <= 'z':
			class = func(b byte) bool { return b >= 'a' && b <= 'z' }
		default:
			i++
			continue
		}
		j := i
		for j < len(v) && class(v[j]) {
			j++
		}
		out = append(out, v[i:j])
		i = j
	}
	return out
}
