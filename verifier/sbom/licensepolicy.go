package sbom

// This file holds the deniedLicenses rules: a deny-list of SPDX licenses
// and how it matches the license expressions that license.go parses.

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
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
	// family is the license's version range on the SPDX license list
	// ("range:GPL-1.0" for every GPL version), or the lower-cased
	// identifier without "-or-later" and "+" when it is in no range.
	family string
	// version is the position of the identifier's version in its range
	// (GPL-1.0 0, GPL-2.0 1, GPL-3.0 2); -1 outside a range.
	version int
	// orLater is "+" or "-or-later".
	orLater bool
	// exception is the lower-cased WITH exception, or "".
	exception string
}

// rangePos is where an identifier sits in the SPDX license list's version
// ranges.
type rangePos struct {
	family  string
	version int
}

// licenseRanges indexes go-spdx's version ranges of the SPDX license list
// by upper-cased identifier: GPL-2.0 and GPL-2.0-only share a version, and
// GPL-3.0 follows them in the same family. Built on first use, not at
// start-up.
var licenseRanges = sync.OnceValue(func() map[string]rangePos {
	m := map[string]rangePos{}
	for _, r := range spdxlicenses.LicenseRanges() {
		if len(r) == 0 || len(r[0]) == 0 {
			continue
		}
		family := "range:" + r[0][0]
		for v, group := range r {
			for _, id := range group {
				m[strings.ToUpper(id)] = rangePos{family: family, version: v}
			}
		}
	}
	return m
})

func keyOf(t *licenseTerm) licenseKey {
	k := licenseKey{exception: strings.ToLower(t.exception), version: -1}
	if isLicenseRef(t.id) {
		k.ref = strings.ToLower(t.id)
		return k
	}
	id := strings.ToUpper(t.id)
	k.orLater = t.plus
	if s, ok := strings.CutSuffix(id, "-OR-LATER"); ok {
		id, k.orLater = s, true
	}
	pos, ok := licenseRanges()[id]
	if !ok {
		if s, only := strings.CutSuffix(id, "-ONLY"); only {
			pos, ok = licenseRanges()[s]
		}
	}
	if ok {
		k.family, k.version = pos.family, pos.version
	} else {
		k.family = strings.ToLower(id)
	}
	return k
}

// denies reports whether the denied license d covers the package's license
// term k.
//
// Identifiers match case-insensitively and references exactly (but for
// case). Versions come from the SPDX license list's version ranges. A
// denied version matches the same version of the same license, with or
// without "-only", "-or-later" or "+" on the package's side:
// "GPL-2.0-only" denies "GPL-2.0", "GPL-2.0-only" and "GPL-2.0-or-later"
// (vouch does not count "or later" as a way out). A denied "-or-later" or
// "+" also denies every later version in the range: "GPL-2.0-or-later"
// denies "GPL-3.0-only". A denied license without WITH denies the license
// with any exception; with WITH, only with that exception.
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
	if dk.orLater {
		return k.version >= dk.version
	}
	return k.version == dk.version
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
			if u := t.unknown(); len(u) > 0 {
				return nil, fmt.Errorf("%s: %q is not on the SPDX license list %s; write an SPDX identifier (https://spdx.org/licenses/) or a LicenseRef-", name, u[0], LicenseListVersion())
			}
			p.denied = append(p.denied, deniedLicense{text: t.String(), key: keyOf(t)})
		}
	}
	return p, nil
}

// check returns the licenses of l that make it denied, and the licenses
// not on the SPDX license list that keep it from being shown allowed; both
// nil when l is allowed: when some choice through its ORs avoids every
// denied license. An AND is denied when any of its operands is; an OR only
// when all are. An unknown license counts as denied (vouch cannot show it
// is not a denied one under another name) unless allowUnknown.
func (p *licensePolicy) check(l *License, allowUnknown bool) (denied, unknown []string) {
	if p == nil || len(p.denied) == 0 || l == nil {
		return nil, nil
	}
	denied, unknown = p.deniedBy(l.root, allowUnknown)
	slices.Sort(denied)
	slices.Sort(unknown)
	return slices.Compact(denied), slices.Compact(unknown)
}

func (p *licensePolicy) deniedBy(n licenseNode, allowUnknown bool) (denied, unknown []string) {
	switch n := n.(type) {
	case *licenseTerm:
		k := keyOf(n)
		for _, d := range p.denied {
			if d.denies(k) {
				return []string{n.String()}, nil
			}
		}
		if !allowUnknown {
			return nil, n.unknown()
		}
	case *licenseOp:
		for _, a := range n.args {
			d, u := p.deniedBy(a, allowUnknown)
			if n.op == opOr && d == nil && u == nil {
				return nil, nil
			}
			denied, unknown = append(denied, d...), append(unknown, u...)
		}
	}
	return denied, unknown
}
