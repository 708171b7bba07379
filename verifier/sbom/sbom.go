// Package sbom checks software bills of materials attached to OCI artifacts
// as referrers: SPDX 2.x JSON (read with spdx/tools-golang) and CycloneDX
// JSON (read with CycloneDX/cyclonedx-go). It checks the licenses of the
// packages against a deny-list of SPDX license expressions, the packages
// against a deny-list of names and version ranges (compared by each
// package's ecosystem: see VersionScheme), that every package states a
// license, and the SBOM's age.
//
// # Which license counts
//
// For an SPDX package, its licenseConcluded, or licenseDeclared when the
// conclusion is absent or NOASSERTION. For a CycloneDX component, every
// entry of its licenses (an SPDX expression, a license id, or a license
// name), joined by AND when there are several: each one is taken to apply.
//
// # How a license expression is decided
//
// A license expression (SPDX 2.3 Annex D) is allowed when some choice
// through its ORs avoids every denied license:
//
//   - a license is denied when a deniedLicenses entry covers it (below);
//   - "A AND B" is denied when A or B is: all of them apply;
//   - "A OR B" is denied only when both are: the licensee may pick either.
//
// So with GPL-3.0-only denied, "MIT OR GPL-3.0-only" is allowed (choose
// MIT), "MIT AND GPL-3.0-only" and "(Apache-2.0 AND GPL-3.0-only)" are
// denied, and "(MIT OR GPL-3.0-only) AND Apache-2.0" is allowed.
//
// A denied entry covers a license when:
//
//   - the identifiers are the same, ignoring case, or for LicenseRef- and
//     DocumentRef-…:LicenseRef- references the references are;
//   - versions, from the version ranges of the SPDX license list (as
//     github/go-spdx carries it): "GPL-2.0", "GPL-2.0-only",
//     "GPL-2.0-or-later" and "GPL-2.0+" all name version 2.0 of GPL. A
//     denied "GPL-2.0-only" (or "GPL-2.0") covers version 2.0 however the
//     package qualifies it, so also "GPL-2.0-or-later": vouch does not
//     count "or later" as a way out. A denied "GPL-2.0-or-later" (or
//     "GPL-2.0+") covers version 2.0 and every later version in GPL's
//     range ("GPL-3.0-only" too), but not LGPL or AGPL, which are other
//     licenses. Identifiers in no range ("MIT", "BSD-3-Clause") match
//     only themselves;
//   - exceptions: a denied entry without WITH covers the license with any
//     exception ("GPL-2.0-only" covers "GPL-2.0-only WITH
//     Classpath-exception-2.0"); an entry with WITH covers only that
//     exception.
//
// A license identifier or exception that is on neither the SPDX license
// list nor its exception list ("GPL-3", "Foo-1.0") counts as denied, and
// fails as "unknown license", unless Config.AllowUnparsableLicenses: vouch
// cannot show it is not a denied license under another name. So with any
// deny-list, "MIT OR Foo-1.0" is allowed and "MIT AND Foo-1.0" is not.
// LicenseRef- references are never unknown.
//
// A license that is not a valid expression ("GPL v3", "Apache 2.0", "MIT
// AND") makes its package fail as "unparsable license" while
// deniedLicenses is set, unless Config.AllowUnparsableLicenses. A package
// without a license (none, NOASSERTION, NONE) passes the deniedLicenses
// check and fails only Config.RequireLicenses.
package sbom

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/maxage"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/verifier/internal/intoto"
	"github.com/vouch-project/vouch/verifier/internal/layer"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
)

// Media types and artifact types of the SBOMs this package reads. A
// CycloneDX type may carry a version parameter
// ("application/vnd.cyclonedx+json;version=1.6").
const (
	MediaTypeSPDX      = "application/spdx+json"
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
)

// DefaultName is the verifier's name in reports when New gets "".
const DefaultName = "sbom"

// MaxListed bounds the offending packages that a Result's Details list;
// Details["moreOffendingPackages"] counts the rest.
const MaxListed = 20

// MaxPackageList bounds the packages that Details["packageList"] lists
// when Config.ListPackages is set, and MaxListBytes the text of their
// entries as JSON; Details["morePackageList"] counts the rest.
// An entry of a syft SBOM takes about 200 bytes, so both bounds are
// reached near 5,000 packages: a listing adds at most about 1 MiB to a
// report and to its cached verdict.
const (
	MaxPackageList = 5000
	MaxListBytes   = 1 << 20
)

// maxDetail bounds each string that Details quote from the SBOM.
const maxDetail = 256

// reasonListed is how many offending packages the reason names.
const reasonListed = 3

// clockSkew is how far in the future a creation time may be before it
// counts as wrong rather than as another machine's clock.
const clockSkew = 5 * time.Minute

// Verifier checks SPDX and CycloneDX SBOMs. It is safe for concurrent use.
type Verifier struct {
	name   string
	policy *policy
}

// New builds the verifier named name (DefaultName when empty) from c.
func New(name string, c Config) (*Verifier, error) {
	if name == "" {
		name = DefaultName
	}
	p, err := c.compile(name)
	if err != nil {
		return nil, err
	}
	return &Verifier{name: name, policy: p}, nil
}

// Name returns the verifier's name in reports.
func (v *Verifier) Name() string { return v.name }

// Handles reports whether artifactType is SPDX JSON or CycloneDX JSON,
// with or without media type parameters, or an attestation manifest whose
// statements may carry an SBOM predicate (intoto.ArtifactTypes).
func (v *Verifier) Handles(artifactType string) bool {
	return formatOf(artifactType) != "" || intoto.Handles(artifactType)
}

// Predicate types of in-toto statements whose predicate is an SBOM: what
// `cosign attest --type spdxjson` and `--type cyclonedx` write, and
// BuildKit's SBOM attestations.
const (
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
)

// predicateFormat returns the SBOM format of a predicate type, or "".
// CycloneDX's predicate type may name a version
// ("https://cyclonedx.org/bom/v1.6").
func predicateFormat(t string) string {
	switch {
	case t == PredicateSPDX || strings.HasPrefix(t, PredicateSPDX+"/"):
		return FormatSPDX
	case t == PredicateCycloneDX || strings.HasPrefix(t, PredicateCycloneDX+"/"):
		return FormatCycloneDX
	}
	return ""
}

// verifyAttestation checks the SBOM predicates of the statements in an
// attestation manifest by the same rules as an attached SBOM. It does not
// check who signed them (the cosign verifier does, on the same node). Each
// SBOM statement must name the subject and pass; the result's claims say
// so per predicate type. A manifest without SBOM statements (a provenance,
// a signature bundle) is skipped.
func (v *Verifier) verifyAttestation(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	stmts, err := intoto.Read(ctx, req.Manifest, req.Repository.Fetch)
	if err != nil {
		return vouch.Result{}, err
	}
	type outcome struct {
		res vouch.Result
		pt  string
	}
	var checked []outcome
	for _, s := range stmts {
		format := predicateFormat(s.PredicateType)
		if s.Problem != "" || format == "" {
			continue
		}
		res := v.checkPredicate(req, s, format)
		res.Details["layer"] = s.Layer
		res.Details["predicateType"] = s.PredicateType
		checked = append(checked, outcome{res, s.PredicateType})
	}
	if len(checked) == 0 {
		return vouch.Result{Outcome: vouch.Skipped, Reason: "no SBOM predicate (" + PredicateSPDX + " or " + PredicateCycloneDX + ") in the attestation"}, nil
	}
	// The first failure is the result, else the first SBOM; every SBOM
	// statement is a claim of its predicate type, failed if one failed.
	best := checked[0].res
	claims := map[string]int{}
	var out []vouch.Claim
	for _, c := range checked {
		if c.res.Outcome == vouch.Failed && best.Outcome != vouch.Failed {
			best = c.res
		}
		i, ok := claims[c.pt]
		if !ok {
			claims[c.pt] = len(out)
			out = append(out, vouch.Claim{Kind: vouch.ClaimAttestation, PredicateType: c.pt, Outcome: c.res.Outcome, Reason: c.res.Reason})
			continue
		}
		if c.res.Outcome == vouch.Failed && out[i].Outcome != vouch.Failed {
			out[i].Outcome, out[i].Reason = c.res.Outcome, c.res.Reason
		}
	}
	best.Claims = out
	if len(checked) > 1 {
		best.Details["sboms"] = len(checked)
	}
	return best, nil
}

// checkPredicate checks one SBOM statement.
func (v *Verifier) checkPredicate(req *vouch.VerifyRequest, s intoto.Statement, format string) vouch.Result {
	if want := req.Subject.Digest.String(); !s.Names(want) {
		got := strings.Join(s.Subjects, ", ")
		if got == "" {
			got = "no subject"
		}
		return vouch.Fail(fmt.Sprintf("the SBOM attestation is about %s, not the subject %s", untrusted.Text(got, 512), want), map[string]any{})
	}
	var (
		doc *Document
		err error
	)
	if format == FormatSPDX {
		doc, err = ParseSPDX(s.Predicate)
	} else {
		doc, err = ParseCycloneDX(s.Predicate)
	}
	if err != nil {
		return vouch.Fail(fmt.Sprintf("malformed %s SBOM in the attestation's predicate: %s", format, untrusted.Text(err.Error(), 512)), map[string]any{})
	}
	res := v.Check(doc, time.Now())
	if res.Details == nil {
		res.Details = map[string]any{}
	}
	return res
}

// formatOf returns the SBOM format that a media type names, or "".
func formatOf(mediaType string) string {
	base, _, _ := strings.Cut(mediaType, ";")
	switch strings.ToLower(strings.TrimSpace(base)) {
	case MediaTypeSPDX:
		return FormatSPDX
	case MediaTypeCycloneDX:
		return FormatCycloneDX
	}
	return ""
}

// Verify checks the SBOM that req.Artifact holds: the manifest's layer of an
// SBOM media type, or its only layer when none has one (the artifact type
// then says the format). For an attestation manifest (a Sigstore bundle,
// cosign's .att, an in-toto referrer), it checks the SPDX and CycloneDX
// predicates of its statements instead, by the same rules; an attestation
// without one is skipped. The layer is fetched through req.Repository,
// bounded by the store's max-blob-bytes.
//
// Outcomes: Passed when every configured check passes; Failed with the
// offending packages, the SBOM's age, or what is malformed about it (bad
// JSON, an unsupported version, nesting over MaxJSONDepth). An error is
// returned when the SBOM cannot be fetched.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	if formatOf(req.Artifact.ArtifactType) == "" && intoto.Handles(req.Artifact.ArtifactType) {
		return v.verifyAttestation(ctx, req)
	}
	layer, format, reason := pickLayer(req.Manifest, req.Artifact.ArtifactType)
	if reason != "" {
		return vouch.Fail(reason, nil), nil
	}
	data, err := req.Repository.Fetch(ctx, layer)
	if err != nil {
		return vouch.Result{}, fmt.Errorf("fetch SBOM %s: %w", layer.Digest, err)
	}
	var doc *Document
	if format == FormatSPDX {
		doc, err = ParseSPDX(data)
	} else {
		doc, err = ParseCycloneDX(data)
	}
	if err != nil {
		return vouch.Fail(fmt.Sprintf("malformed %s SBOM: %s", format, untrusted.Text(err.Error(), 512)), map[string]any{"layer": layer.Digest.String()}), nil
	}
	return v.Check(doc, time.Now()), nil
}

// pickLayer finds the SBOM layer of m and its format, or says why there is
// none: the one layer of an SBOM media type, else the only layer, whose
// format the artifact type then names (layer.Pick with layer.OnlyLayer).
func pickLayer(m ocispec.Manifest, artifactType string) (ocispec.Descriptor, string, string) {
	l, matched, ok := layer.Pick(m.Layers, func(t string) bool { return formatOf(t) != "" }, layer.OnlyLayer)
	switch {
	case ok:
	case len(m.Layers) == 0:
		return ocispec.Descriptor{}, "", "the artifact has no layer: there is no SBOM to check"
	case matched > 1:
		return ocispec.Descriptor{}, "", fmt.Sprintf("the artifact has %d SBOM layers; vouch checks an artifact that holds one", matched)
	default:
		return ocispec.Descriptor{}, "", fmt.Sprintf("none of the artifact's %d layers has an SBOM media type (%s or %s)", len(m.Layers), MediaTypeSPDX, MediaTypeCycloneDX)
	}
	format := formatOf(l.MediaType)
	if format == "" {
		format = formatOf(artifactType)
	}
	if format == "" {
		return ocispec.Descriptor{}, "", fmt.Sprintf("neither the layer's media type %q nor the artifact type %q names an SBOM format", l.MediaType, artifactType)
	}
	return l, format, ""
}

// offense is one package that fails the policy.
type offense struct {
	pkg      *Package
	problems []string
}

// Check applies the verifier's policy to a parsed SBOM, taking now as the
// current time for its age. It is what Verify does once the SBOM is read,
// for callers that get SBOMs another way (an attestation's predicate).
func (v *Verifier) Check(doc *Document, now time.Time) vouch.Result {
	p := v.policy
	var offenses []offense
	for i := range doc.Packages {
		pkg := &doc.Packages[i]
		if problems := p.checkPackage(pkg); len(problems) > 0 {
			offenses = append(offenses, offense{pkg: pkg, problems: problems})
		}
	}
	ageProblem, ageNote := p.checkAge(doc, now)

	details := map[string]any{
		"format":   doc.Format + "-" + strings.TrimPrefix(doc.SpecVersion, "SPDX-"),
		"packages": len(doc.Packages),
	}
	if doc.CreatedText != "" {
		details["created"] = untrusted.Text(doc.CreatedText, 64)
	}
	if len(doc.Tools) > 0 {
		tools := make([]any, 0, min(len(doc.Tools), MaxListed))
		for _, tool := range doc.Tools[:min(len(doc.Tools), MaxListed)] {
			tools = append(tools, untrusted.Text(tool, maxDetail))
		}
		details["tools"] = tools
	}
	if p.listPackages {
		listPackages(details, doc.Packages)
	}
	noun := "package"
	if doc.Format == FormatCycloneDX {
		noun = "component"
	}
	what := fmt.Sprintf("%s SBOM of %s", details["format"], plural(len(doc.Packages), noun))

	if len(offenses) == 0 && ageProblem == "" {
		return vouch.Pass(what+": "+p.passNote(ageNote), details)
	}

	var reasons []string
	if len(offenses) > 0 {
		listed := make([]any, 0, min(len(offenses), MaxListed))
		for _, o := range offenses[:min(len(offenses), MaxListed)] {
			listed = append(listed, map[string]any{
				"name":    untrusted.Text(o.pkg.Name, maxDetail),
				"version": untrusted.Text(o.pkg.Version, maxDetail),
				"license": untrusted.Text(o.pkg.License, maxDetail),
				"problem": untrusted.Text(strings.Join(o.problems, "; "), maxDetail),
			})
		}
		details["offendingPackages"] = listed
		if rest := len(offenses) - len(listed); rest > 0 {
			details["moreOffendingPackages"] = rest
		}
		var names []string
		for _, o := range offenses[:min(len(offenses), reasonListed)] {
			names = append(names, fmt.Sprintf("%s (%s)", describe(o.pkg), untrusted.Text(strings.Join(o.problems, "; "), 300)))
		}
		verb := "fail"
		if len(offenses) == 1 {
			verb = "fails"
		}
		r := fmt.Sprintf("%d of %s %s the policy: %s", len(offenses), plural(len(doc.Packages), noun), verb, strings.Join(names, ", "))
		if rest := len(offenses) - len(names); rest > 0 {
			r += fmt.Sprintf(", and %d more", rest)
		}
		reasons = append(reasons, r)
	}
	if ageProblem != "" {
		details["ageProblem"] = ageProblem
		reasons = append(reasons, ageProblem)
	}
	return vouch.Fail(what+": "+strings.Join(reasons, "; "), details)
}

// listPackages puts every package into details["packageList"], within
// MaxPackageList entries and MaxListBytes, and counts the rest in
// details["morePackageList"]. Every field is present, "" when the SBOM
// gives none, so that a policy can read it without checking.
func listPackages(details map[string]any, pkgs []Package) {
	listed := make([]any, 0, min(len(pkgs), MaxPackageList))
	size := 0
	for i := range pkgs {
		pkg := &pkgs[i]
		e := map[string]any{
			"name":      untrusted.Text(pkg.Name, maxDetail),
			"version":   untrusted.Text(pkg.Version, maxDetail),
			"purl":      untrusted.Text(pkg.PURL, maxDetail),
			"license":   untrusted.Text(pkg.License, maxDetail),
			"ecosystem": untrusted.Text(Ecosystem(pkg.PURL), 64),
		}
		// The JSON of the entry, its comma in the list included.
		n := 3
		for k, v := range e {
			n += len(k) + 4 + untrusted.JSONLen(v.(string))
		}
		if len(listed) == MaxPackageList || size+n > MaxListBytes {
			break
		}
		size += n
		listed = append(listed, e)
	}
	details["packageList"] = listed
	if rest := len(pkgs) - len(listed); rest > 0 {
		details["morePackageList"] = rest
	}
}

// Ecosystem returns the type of a package URL ("npm", "deb", "maven"), in
// lower case, or "" when purl is not one.
func Ecosystem(purl string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(purl), "pkg:")
	if !ok {
		return ""
	}
	t, _, ok := strings.Cut(strings.TrimLeft(rest, "/"), "/")
	if !ok || t == "" {
		return ""
	}
	return strings.ToLower(t)
}

// checkPackage returns what is wrong with pkg, if anything.
func (p *policy) checkPackage(pkg *Package) []string {
	var problems []string
	lic := strings.TrimSpace(pkg.License)
	unlicensed := lic == "" || strings.EqualFold(lic, NoAssertion) || strings.EqualFold(lic, NoLicense)
	switch {
	case unlicensed:
		if p.requireLicenses && pkg.Licensable() {
			switch {
			case lic == "":
				problems = append(problems, "no license")
			case strings.EqualFold(lic, NoLicense):
				problems = append(problems, "license NONE")
			default:
				problems = append(problems, "license NOASSERTION")
			}
		}
	case len(p.licenses.denied) > 0:
		l, err := ParseLicense(lic)
		if err != nil {
			if !p.allowUnparsable {
				problems = append(problems, fmt.Sprintf("unparsable license %q: %s", untrusted.Text(lic, 80), untrusted.Text(err.Error(), 120)))
			}
			break
		}
		denied, unknown := p.licenses.check(l, p.allowUnparsable)
		if len(denied) > 0 {
			problems = append(problems, "denied license "+strings.Join(denied, ", "))
		}
		if len(unknown) > 0 {
			problems = append(problems, "unknown license "+strings.Join(unknown, ", ")+" (not on the SPDX license list)")
		}
	}
	for _, d := range p.packages {
		if why, ok := d.matches(pkg); ok {
			problems = append(problems, why)
			break
		}
	}
	return problems
}

// checkAge returns a problem with the document's age, or a note for the
// passing reason.
func (p *policy) checkAge(doc *Document, now time.Time) (problem, note string) {
	if p.maxAge == 0 {
		return "", ""
	}
	limit := maxage.Format(p.maxAge)
	switch {
	case strings.TrimSpace(doc.CreatedText) == "":
		return fmt.Sprintf("the SBOM states no creation time, so its age cannot be checked against maxAge %s", limit), ""
	case doc.Created.IsZero():
		return fmt.Sprintf("the SBOM's creation time %q is not an RFC 3339 time, so its age cannot be checked against maxAge %s", untrusted.Text(doc.CreatedText, 60), limit), ""
	case doc.Created.After(now.Add(clockSkew)):
		return fmt.Sprintf("the SBOM's creation time %s is in the future", doc.Created.UTC().Format(time.RFC3339)), ""
	}
	age := now.Sub(doc.Created)
	if age < 0 {
		age = 0
	}
	if age > p.maxAge {
		return fmt.Sprintf("the SBOM is %s old, over maxAge %s (created %s); generate a new one", maxage.Format(age), limit, doc.Created.UTC().Format(time.RFC3339)), ""
	}
	return "", fmt.Sprintf("created %s ago, within maxAge %s", maxage.Format(age), limit)
}

// passNote says what was checked, for a passing reason.
func (p *policy) passNote(ageNote string) string {
	var checked []string
	if len(p.licenses.denied) > 0 {
		checked = append(checked, "no denied license")
	}
	if p.requireLicenses {
		checked = append(checked, "every package licensed")
	}
	if len(p.packages) > 0 {
		checked = append(checked, "no denied package")
	}
	if ageNote != "" {
		checked = append(checked, ageNote)
	}
	if len(checked) == 0 {
		return "well-formed (no checks configured)"
	}
	return strings.Join(checked, ", ")
}

func describe(p *Package) string {
	s := p.Name
	if s == "" {
		s = "(unnamed)"
	}
	if p.Version != "" {
		s += " " + p.Version
	}
	return untrusted.Text(s, 120)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
