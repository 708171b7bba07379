package sbom

// This file holds the deniedLicenses rules: a deny-list of SPDX licenses
// and how it matches the license expressions that license.go parses.

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// deniedLicense is one license of a deny-list, normalised for matching.
type deniedLicense struct {
	text string
	key  licenseKey
}

// licenseKey is a license term normalised for comparison.
type licenseKey struct {
	// ref is the lower-cased reference for LicenseRef-/DocumentRef- terms;
	// empty for identifiers.
	ref string
	// family is the lower-cased identifier without its version, "-only",
	// "-or-later" and "+" ("gpl" for GPL-2.0-or-later); the whole
	// identifier when it ends in no version ("bsd-3-clause").
	family string
	// version holds the numbers of the version ("2.0" → [2 0]); nil when
	// the identifier has none.
	version []int
	// orLater is "+" or "-or-later".
	orLater bool
	// exception is the lower-cased WITH exception, or "".
	exception string
}

var versionedID = regexp.MustCompile(`^(.+?)-([0-9]+(?:\.[0-9]+)*)$`)

func keyOf(t *licenseTerm) licenseKey {
	k := licenseKey{exception: strings.ToLower(t.exception)}
	id := strings.ToLower(t.id)
	if isLicenseRef(t.id) {
		k.ref = id
		return k
	}
	k.orLater = t.plus
	if s, ok := strings.CutSuffix(id, "-or-later"); ok {
		id, k.orLater = s, true
	} else if s, ok := strings.CutSuffix(id, "-only"); ok {
		id = s
	}
	k.family = id
	if m := versionedID.FindStringSubmatch(id); m != nil {
		k.family = m[1]
		for _, part := range strings.Split(m[2], ".") {
			n, err := strconv.Atoi(part)
			if err != nil || len(part) > 6 {
				// Absurd version numbers: compare the identifier whole.
				k.family, k.version = id, nil
				break
			}
			k.version = append(k.version, n)
		}
	}
	return k
}

// compareVersionNumbers compares dotted version numbers, missing parts
// counting as 0 ("2" equals "2.0").
func compareVersionNumbers(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return 0
}

// denies reports whether the denied license d covers the package's license
// term k.
//
// Identifiers match case-insensitively and references exactly (but for
// case). A denied version matches the same version of the same license,
// with or without "-only", "-or-later" or "+" on the package's side:
// "GPL-2.0-only" denies "GPL-2.0", "GPL-2.0-only" and "GPL-2.0-or-later"
// (vouch has no list of which later versions exist, so it does not count
// "or later" as a way out). A denied "-or-later" or "+" also denies every
// later version: "GPL-2.0-or-later" denies "GPL-3.0-only". A denied
// license without WITH denies the license with any exception; with WITH,
// only with that exception.
func (d deniedLicense) denies(k licenseKey) bool {
	dk := d.key
	if dk.exception != "" && dk.exception != k.exception {
		return false
	}
	if dk.ref != "" || k.ref != "" {
		return dk.ref == k.ref
	}
	if dk.family != k.family {
		return false
	}
	if dk.version == nil || k.version == nil {
		return dk.version == nil && k.version == nil
	}
	c := compareVersionNumbers(k.version, dk.version)
	if dk.orLater {
		return c >= 0
	}
	return c == 0
}

// licensePolicy decides whether a package's license expression is
// allowed.
type licensePolicy struct {
	denied []deniedLicense
}

// newLicensePolicy parses a deny-list. Each entry is a license, a license
// with an exception, or licenses joined by OR (shorthand for listing each);
// AND has no meaning in a deny-list and is refused.
func newLicensePolicy(entries []string, field string) (*licensePolicy, error) {
	p := &licensePolicy{}
	for i, e := range entries {
		name := fmt.Sprintf("%s[%d]", field, i)
		trimmed := strings.TrimSpace(e)
		if strings.EqualFold(trimmed, NoAssertion) || strings.EqualFold(trimmed, NoLicense) {
			return nil, fmt.Errorf("%s: %q is not a license; use requireLicenses to refuse packages without one", name, e)
		}
		l, err := ParseLicense(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an SPDX license expression: %v", name, e, err)
		}
		var terms []*licenseTerm
		switch n := l.root.(type) {
		case *licenseTerm:
			terms = append(terms, n)
		case *licenseOp:
			for _, a := range n.args {
				t, ok := a.(*licenseTerm)
				if n.op != opOr || !ok {
					return nil, fmt.Errorf("%s: %q: a denied entry is one license (with an optional WITH exception), or licenses joined by OR; list licenses that are denied together as separate entries", name, e)
				}
				terms = append(terms, t)
			}
		}
		for _, t := range terms {
			p.denied = append(p.denied, deniedLicense{text: t.String(), key: keyOf(t)})
		}
	}
	return p, nil
}

// check returns the licenses of l that make it denied, or nil when l is
// allowed: when some choice through its ORs avoids every denied license.
// An AND is denied when any of its operands is; an OR only when all are.
func (p *licensePolicy) check(l *License) []string {
	if p == nil || len(p.denied) == 0 || l == nil {
		return nil
	}
	out := p.deniedBy(l.root)
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *licensePolicy) deniedBy(n licenseNode) []string {
	switch n := n.(type) {
	case *licenseTerm:
		k := keyOf(n)
		for _, d := range p.denied {
			if d.denies(k) {
				return []string{n.String()}
			}
		}
		return nil
	case *licenseOp:
		var all []string
		for _, a := range n.args {
			d := p.deniedBy(a)
			if n.op == opOr && d == nil {
				return nil
			}
			all = append(all, d...)
		}
		return all
	}
	return nil
}
