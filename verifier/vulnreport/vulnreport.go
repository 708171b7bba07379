// Package vulnreport checks vulnerability reports attached to OCI artifacts
// as referrers: SARIF 2.1.0 logs (application/sarif+json) as Trivy and
// Grype write them. It denies findings by severity and by vulnerability
// id, and reports older than a maximum age.
//
// # Severity
//
// SARIF has no severity field of its own; scanners put it in several
// places, and vouch takes the highest that any of them gives:
//
//   - the "security-severity" property of the result's rule (or of the
//     result), a CVSS score that both Trivy and Grype write, mapped as
//     GitHub code scanning maps it: 9.0 and over critical, 7.0 high, 4.0
//     medium, over 0 low;
//   - a severity tag in the rule's properties (Trivy: "CRITICAL");
//   - "Severity: X" in the result's message or the rule's help text
//     (Trivy, Grype), and "a X vulnerability" in the message or the rule's
//     short description (Grype), where X is critical, high, medium, low
//     or negligible (counted as low).
//
// A finding with none of these is "unknown". Taking the highest matters:
// a scanner may write a vendor severity of critical beside a lower CVSS
// score, and a deny-list of critical must catch it.
//
// # Age
//
// A report's time is when its scans ended (runs[].invocations[].endTimeUtc,
// else startTimeUtc; of several runs the earliest). Trivy and Grype write
// no invocations, so when no run has a time the artifact manifest's
// annotation org.opencontainers.image.created (which `oras attach` sets)
// is used instead; Config.CreatedAnnotation changes or disables that.
//
// # Suppressions
//
// A result whose suppressions (SARIF 2.1.0 §3.27.23, §3.35) include one
// that is accepted (status "accepted", or no status) and none under review
// or rejected is suppressed: it is not counted against the deny-lists, and
// the Result lists it in Details["suppressedFindings"] and counts it in the
// reason. Whoever writes the report could leave the finding out instead, so
// honouring suppressions trusts its author no further; require a signature
// on the report to know who that is.
//
// # VEX
//
// With Config.VEX, the OpenVEX 0.2.0 documents attached to the subject
// (referrers of artifact type VEXMediaType) whose signature one of the
// verifiers VEXConfig.TrustedBy names passes suppress findings too: the
// latest statement about a finding's vulnerability and this image (its
// digest, as a pkg:oci purl or a repository@digest reference) suppresses
// it when its status is not_affected or fixed. OpenVEX attestations
// (PredicateOpenVEX, in cosign's .att tag, an in-toto referrer or a
// Sigstore bundle) count when a trust verifier passes them with a claim of
// their predicate type; with VEXConfig.CycloneDX, so do the analysed
// vulnerabilities of signed CycloneDX referrers. The verifier looks the
// documents and their signatures up itself, as it checks the report,
// because sibling referrers are verified independently of each other.
package vulnreport

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vouch-project/vouch/internal/maxage"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/verifier/internal/intoto"
	"github.com/vouch-project/vouch/verifier/internal/layer"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
)

// MediaType is the media type and artifact type of a SARIF log.
const MediaType = "application/sarif+json"

// DefaultName is the verifier's name in reports when New gets "".
const DefaultName = "vulnreport"

// DefaultCreatedAnnotation is the manifest annotation whose time stands in
// for a report that records none.
const DefaultCreatedAnnotation = ocispec.AnnotationCreated

// NoAnnotation, as Config.CreatedAnnotation, uses only the times inside the
// report.
const NoAnnotation = "none"

// MaxListed bounds the denied findings, and the suppressed ones, that a
// Result's Details list; Details["moreDeniedFindings"] and
// Details["moreSuppressedFindings"] count the rest.
const MaxListed = 20

// MaxFindingList bounds the findings that Details["findingList"] lists when
// Config.ListFindings is set, and MaxListBytes the text of their entries
// as JSON; Details["moreFindingList"] counts the rest.
const (
	MaxFindingList = 5000
	MaxListBytes   = 1 << 20
)

// maxDetail bounds each string that Details quote from the report.
const maxDetail = 256

// reasonListed is how many denied findings the reason names.
const reasonListed = 3

// clockSkew is how far in the future a report time may be before it counts
// as wrong rather than as another machine's clock.
const clockSkew = 5 * time.Minute

// Config is the `vulnreport:` section of a verifier in vouch's config file.
//
// +kubebuilder:object:generate=true
type Config struct {
	// DeniedSeverities lists the severities that no finding may have:
	// critical, high, medium, low, unknown (a finding for which the report
	// gives no severity). See the package documentation for how a
	// finding's severity is read. Optional; default none.
	DeniedSeverities []string `json:"deniedSeverities,omitempty"`
	// DeniedCVEs lists vulnerability ids that no finding may have, matched
	// ignoring case against the CVE and GHSA ids in each result's rule id
	// ("CVE-2021-44228" matches Trivy's rule "CVE-2021-44228" and Grype's
	// "CVE-2021-44228-log4j-core"), or against the whole rule id for other
	// ids ("AVD-DS-0002"). Optional; default none.
	DeniedCVEs []string `json:"deniedCVEs,omitempty"`
	// MaxAge is how old the report may be: a Go duration ("168h") or whole
	// days ("7d", "1d12h"). A report without a time then fails. Optional;
	// default no limit.
	MaxAge string `json:"maxAge,omitempty"`
	// CreatedAnnotation names the artifact manifest annotation whose RFC
	// 3339 time is the report's time when no run records one; "none" uses
	// only the times inside the report. Optional; default
	// "org.opencontainers.image.created".
	CreatedAnnotation string `json:"createdAnnotation,omitempty"`
	// ListFindings puts every finding of the report into the result's
	// details as "findingList" (id, rule, severity, score, level,
	// package, version, message, suppressed), one per rule and package,
	// for a Rego or CEL policy to decide on; at most MaxFindingList
	// findings and MaxListBytes of their text, "moreFindingList" counting
	// the rest. Optional; default false: the details count the findings
	// by severity and list only the denied and suppressed ones, which
	// keeps reports and cached verdicts small.
	ListFindings bool `json:"listFindings,omitempty"`
	// VEX makes the verifier read the OpenVEX documents attached to the
	// subject (application/vnd.openvex+json referrers) that a trusted
	// signature vouches for: a statement not_affected or fixed for the
	// image takes the matching findings out of the deny-lists. Optional;
	// default VEX documents are not read.
	VEX *VEXConfig `json:"vex,omitempty"`
}

// Validate checks c; errors name the field by its path below prefix, such
// as prefix+".deniedSeverities[0]: ...".
func (c *Config) Validate(prefix string) error {
	_, err := c.compile(prefix)
	return err
}

type policy struct {
	severities map[Severity]bool
	cves       map[string]bool
	maxAge     time.Duration
	annotation string
	list       bool
	vex        *VEXConfig
}

var idRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/+-]*$`) })

func (c *Config) compile(prefix string) (*policy, error) {
	if c == nil {
		return nil, errors.New(prefix + ": no configuration")
	}
	p := &policy{severities: map[Severity]bool{}, cves: map[string]bool{}, annotation: c.CreatedAnnotation, list: c.ListFindings}
	for i, s := range c.DeniedSeverities {
		sev, ok := ParseSeverity(s)
		if !ok || strings.EqualFold(strings.TrimSpace(s), "negligible") || strings.EqualFold(strings.TrimSpace(s), "moderate") {
			return nil, fmt.Errorf("%s.deniedSeverities[%d]: %q is not a severity (critical, high, medium, low or unknown)", prefix, i, s)
		}
		p.severities[sev] = true
	}
	for i, id := range c.DeniedCVEs {
		id = strings.TrimSpace(id)
		if !idRe().MatchString(id) {
			return nil, fmt.Errorf("%s.deniedCVEs[%d]: %q is not a vulnerability id such as CVE-2021-44228", prefix, i, c.DeniedCVEs[i])
		}
		p.cves[strings.ToUpper(id)] = true
	}
	if c.MaxAge != "" {
		var err error
		if p.maxAge, err = maxage.Parse(c.MaxAge); err != nil {
			return nil, fmt.Errorf("%s.maxAge: %v", prefix, err)
		}
	}
	if c.VEX != nil {
		if len(c.VEX.TrustedBy) == 0 {
			return nil, fmt.Errorf("%s.vex.trustedBy: name at least one signature verifier: a VEX document counts only when one of them passes its signature", prefix)
		}
		for i, n := range c.VEX.TrustedBy {
			if strings.TrimSpace(n) == "" {
				return nil, fmt.Errorf("%s.vex.trustedBy[%d]: empty verifier name", prefix, i)
			}
		}
		p.vex = c.VEX
	}
	switch a := strings.TrimSpace(c.CreatedAnnotation); {
	case a == "":
		p.annotation = DefaultCreatedAnnotation
	case strings.EqualFold(a, NoAnnotation):
		p.annotation = ""
	case strings.ContainsAny(a, " \t\n"):
		return nil, fmt.Errorf("%s.createdAnnotation: %q is not an annotation key", prefix, c.CreatedAnnotation)
	default:
		p.annotation = a
	}
	return p, nil
}

// Verifier checks SARIF vulnerability reports. It is safe for concurrent
// use.
type Verifier struct {
	name   string
	policy *policy
	// vexTrust are the verifiers that Config.VEX.TrustedBy names (Link).
	vexTrust []vouch.Verifier
	// attestations is whether one of vexTrust checks attestations, so
	// that OpenVEX attestations are looked for.
	attestations bool
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

// Handles reports whether artifactType is SARIF's, with or without media
// type parameters, or an attestation manifest whose statements may carry a
// vulnerability scan (intoto.Handles).
func (v *Verifier) Handles(artifactType string) bool {
	return isSARIF(artifactType) || intoto.Handles(artifactType)
}

// PredicateVuln is the predicate type of cosign's vulnerability
// attestations (`cosign attest --type vuln`): a scan whose scanner.result
// vouch reads when it is a SARIF log.
const PredicateVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"

// vulnPredicate is the part of a cosign vulnerability predicate read here.
type vulnPredicate struct {
	Scanner struct {
		Result json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanFinishedOn string `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// verifyAttestation checks the SARIF logs in the vulnerability predicates
// of an attestation manifest's statements by the same rules as an attached
// report; who signed them is the cosign verifier's to check. Each must name
// the subject and pass; an attestation without one is skipped.
func (v *Verifier) verifyAttestation(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	stmts, err := intoto.Read(ctx, req.Manifest, req.Repository.Fetch)
	if err != nil {
		return vouch.Result{}, err
	}
	var vex func(*Report) map[string]any
	if slices.ContainsFunc(stmts, func(s intoto.Statement) bool { return s.Problem == "" && s.PredicateType == PredicateVuln }) {
		if vex, err = v.vexFor(ctx, req); err != nil {
			return vouch.Result{}, err
		}
	}
	var results []vouch.Result
	for _, s := range stmts {
		if s.Problem != "" || s.PredicateType != PredicateVuln {
			continue
		}
		res := v.checkPredicate(req, s, vex)
		if res.Details == nil {
			res.Details = map[string]any{}
		}
		res.Details["layer"], res.Details["predicateType"] = s.Layer, s.PredicateType
		results = append(results, res)
	}
	if len(results) == 0 {
		return vouch.Result{Outcome: vouch.Skipped, Reason: "no vulnerability scan (" + PredicateVuln + ") in the attestation"}, nil
	}
	best := results[0]
	for _, r := range results[1:] {
		if r.Outcome == vouch.Failed && best.Outcome != vouch.Failed {
			best = r
		}
	}
	best.Claims = []vouch.Claim{{Kind: vouch.ClaimAttestation, PredicateType: PredicateVuln, Outcome: best.Outcome, Reason: best.Reason}}
	return best, nil
}

// checkPredicate checks one vulnerability statement; vex, when not nil,
// applies the subject's VEX documents to its report.
func (v *Verifier) checkPredicate(req *vouch.VerifyRequest, s intoto.Statement, vex func(*Report) map[string]any) vouch.Result {
	if want := req.Subject.Digest.String(); !s.Names(want) {
		return vouch.Fail(fmt.Sprintf("the vulnerability attestation is about %s, not the subject %s", untrusted.Text(strings.Join(s.Subjects, ", "), 512), want), nil)
	}
	var p vulnPredicate
	if err := json.Unmarshal(s.Predicate, &p); err != nil {
		return vouch.Fail("malformed vulnerability predicate: "+untrusted.Text(err.Error(), 512), nil)
	}
	if len(p.Scanner.Result) == 0 {
		return vouch.Fail("the vulnerability predicate has no scanner.result", nil)
	}
	rep, err := ParseSARIF(p.Scanner.Result)
	if err != nil {
		return vouch.Fail("the vulnerability predicate's scanner.result is not a SARIF 2.1.0 log that vouch reads (write it with a SARIF output, such as trivy --format sarif): "+untrusted.Text(err.Error(), 512), nil)
	}
	// Without run times, the scan's finish time stands for the report's,
	// as the annotation would for an attached report.
	var annotations map[string]string
	if v.policy.annotation != "" && p.Metadata.ScanFinishedOn != "" {
		annotations = map[string]string{v.policy.annotation: p.Metadata.ScanFinishedOn}
	}
	return withVEX(v.Check, rep, annotations, vex)
}

// withVEX applies vex (when not nil) to rep, checks it with check, and adds
// what vex says of the VEX documents to the result's details.
func withVEX(check func(*Report, map[string]string, time.Time) vouch.Result, rep *Report, annotations map[string]string, vex func(*Report) map[string]any) vouch.Result {
	var details map[string]any
	if vex != nil {
		details = vex(rep)
	}
	res := check(rep, annotations, time.Now())
	for k, val := range details {
		if res.Details == nil {
			res.Details = map[string]any{}
		}
		res.Details[k] = val
	}
	return res
}

// vexFor returns the function that applies the VEX documents of
// req.Subject to a report, or nil when the verifier reads no VEX.
func (v *Verifier) vexFor(ctx context.Context, req *vouch.VerifyRequest) (func(*Report) map[string]any, error) {
	if v.policy.vex == nil {
		return nil, nil
	}
	if len(v.vexTrust) == 0 {
		return nil, errors.New("vex.trustedBy: the verifiers it names were not linked (Link)")
	}
	docs, ignored, err := v.findVEX(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("VEX documents: %w", err)
	}
	digests := []string{req.Subject.Digest.String()}
	if d := req.Reference.Digest.String(); d != "" && d != digests[0] {
		digests = append(digests, d)
	}
	return func(rep *Report) map[string]any {
		return applyVEX(rep, docs, ignored, req.Reference.Name(), digests)
	}, nil
}

func isSARIF(mediaType string) bool {
	base, _, _ := strings.Cut(mediaType, ";")
	return strings.EqualFold(strings.TrimSpace(base), MediaType)
}

// Verify checks the SARIF log that req.Artifact holds: the manifest's
// layer of media type application/sarif+json, or its only layer; for an
// attestation manifest, the SARIF logs of its cosign vulnerability
// predicates (PredicateVuln), and an attestation without one is skipped. The layer
// is fetched through req.Repository, bounded by the store's max-blob-bytes.
//
// Outcomes: Passed when no finding is denied and the report is young
// enough; Failed with the denied findings, the report's age, or what is
// malformed about it (bad JSON, nesting over MaxJSONDepth, no runs, a
// failed scan). An error is returned when the log cannot be fetched.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	if !isSARIF(req.Artifact.ArtifactType) && intoto.Handles(req.Artifact.ArtifactType) {
		return v.verifyAttestation(ctx, req)
	}
	layer, reason := pickLayer(req.Manifest)
	if reason != "" {
		return vouch.Fail(reason, nil), nil
	}
	data, err := req.Repository.Fetch(ctx, layer)
	if err != nil {
		return vouch.Result{}, fmt.Errorf("fetch vulnerability report %s: %w", layer.Digest, err)
	}
	rep, err := ParseSARIF(data)
	if err != nil {
		return vouch.Fail("malformed SARIF report: "+untrusted.Text(err.Error(), 512), map[string]any{"layer": layer.Digest.String()}), nil
	}
	vex, err := v.vexFor(ctx, req)
	if err != nil {
		return vouch.Result{}, err
	}
	return withVEX(v.Check, rep, req.Manifest.Annotations, vex), nil
}

// pickLayer finds the SARIF layer of m, else its only layer (layer.Pick
// with layer.OnlyLayer), or says why there is none.
func pickLayer(m ocispec.Manifest) (ocispec.Descriptor, string) {
	l, matched, ok := layer.Pick(m.Layers, isSARIF, layer.OnlyLayer)
	switch {
	case ok:
		return l, ""
	case len(m.Layers) == 0:
		return ocispec.Descriptor{}, "the artifact has no layer: there is no report to check"
	case matched > 1:
		return ocispec.Descriptor{}, fmt.Sprintf("the artifact has %d SARIF layers; vouch checks an artifact that holds one", matched)
	}
	return ocispec.Descriptor{}, fmt.Sprintf("none of the artifact's %d layers has media type %s", len(m.Layers), MediaType)
}

// Check applies the verifier's policy to a parsed report, taking now as
// the current time. annotations are the artifact manifest's, read for the
// report's time when no run records one.
func (v *Verifier) Check(rep *Report, annotations map[string]string, now time.Time) vouch.Result {
	p := v.policy
	scanner := scanners(rep.Runs)
	// The findings that count, and those that an accepted suppression
	// takes out of the policy's reach.
	var counted, suppressed []*Finding
	for i := range rep.Findings {
		if f := &rep.Findings[i]; f.Suppression == nil {
			counted = append(counted, f)
		} else {
			suppressed = append(suppressed, f)
		}
	}
	details := map[string]any{"scanner": scanner, "findings": len(counted)}
	counts := map[string]int{}
	for _, f := range counted {
		counts[f.Severity.String()]++
	}
	bySeverity := map[string]any{}
	for _, s := range severityNames {
		bySeverity[s] = counts[s]
	}
	details["severities"] = bySeverity

	when, source, timeProblem := p.reportTime(rep, annotations)
	if !when.IsZero() {
		details["scanned"] = when.UTC().Format(time.RFC3339)
		details["timeSource"] = source
	}

	// Denied findings, one per rule and package (a scanner reports a
	// vulnerability once per location).
	type denial struct {
		f   *Finding
		why string
	}
	var denied []denial
	seen := map[string]bool{}
	for _, f := range counted {
		why := p.denies(f)
		if why == "" {
			continue
		}
		key := findingKey(f)
		if seen[key] {
			continue
		}
		seen[key] = true
		denied = append(denied, denial{f, why})
	}
	suppressedNote := p.listSuppressed(details, counted, suppressed)
	if p.list {
		listFindings(details, counted, suppressed)
	}

	what := scanner + " report"
	if !when.IsZero() {
		what += " of " + when.UTC().Format(time.RFC3339)
	}
	var reasons []string
	if len(denied) > 0 {
		listed := make([]any, 0, min(len(denied), MaxListed))
		for _, d := range denied[:min(len(denied), MaxListed)] {
			item := map[string]any{"id": untrusted.Text(d.f.ID(), maxDetail), "rule": untrusted.Text(d.f.RuleID, maxDetail), "severity": d.f.Severity.String(), "denied": untrusted.Text(d.why, maxDetail)}
			if d.f.Score > 0 {
				item["score"] = d.f.Score
			}
			if d.f.Package != "" {
				item["package"] = untrusted.Text(d.f.Package, maxDetail)
				item["version"] = untrusted.Text(d.f.Version, maxDetail)
			}
			listed = append(listed, item)
		}
		details["deniedFindings"] = listed
		if rest := len(denied) - len(listed); rest > 0 {
			details["moreDeniedFindings"] = rest
		}
		var names []string
		for _, d := range denied[:min(len(denied), reasonListed)] {
			names = append(names, describe(d.f, d.why))
		}
		r := fmt.Sprintf("%s denied: %s", plural(len(denied), "finding"), strings.Join(names, ", "))
		if rest := len(denied) - len(names); rest > 0 {
			r += fmt.Sprintf(", and %d more", rest)
		}
		reasons = append(reasons, r)
	}

	var ageNote string
	if p.maxAge > 0 {
		limit := maxage.Format(p.maxAge)
		switch {
		case timeProblem != "":
			reasons = append(reasons, timeProblem)
		case when.IsZero():
			where := "no run records when it scanned (runs[].invocations[].endTimeUtc)"
			if p.annotation != "" {
				where += " and the artifact has no " + p.annotation + " annotation"
			}
			reasons = append(reasons, fmt.Sprintf("the report's age cannot be checked against maxAge %s: %s", limit, where))
		case when.After(now.Add(clockSkew)):
			reasons = append(reasons, fmt.Sprintf("the report's time %s (%s) is in the future", when.UTC().Format(time.RFC3339), source))
		default:
			age := max(now.Sub(when), 0)
			if age > p.maxAge {
				reasons = append(reasons, fmt.Sprintf("the report is %s old, over maxAge %s (scanned %s, from %s); scan the image again", maxage.Format(age), limit, when.UTC().Format(time.RFC3339), source))
			} else {
				ageNote = fmt.Sprintf("scanned %s ago, within maxAge %s", maxage.Format(age), limit)
			}
		}
	}

	if len(reasons) > 0 {
		if suppressedNote != "" {
			reasons = append(reasons, suppressedNote)
		}
		return vouch.Fail(what+": "+strings.Join(reasons, "; "), details)
	}
	summary := fmt.Sprintf("%s (%d critical, %d high, %d medium, %d low, %d unknown)", plural(len(counted), "finding"),
		counts["critical"], counts["high"], counts["medium"], counts["low"], counts["unknown"])
	if len(counted) == 0 {
		summary = "no findings"
	}
	var checked []string
	if suppressedNote != "" {
		checked = append(checked, suppressedNote)
	}
	if len(p.severities) > 0 || len(p.cves) > 0 {
		checked = append(checked, "none denied")
	}
	if ageNote != "" {
		checked = append(checked, ageNote)
	}
	if len(p.severities) == 0 && len(p.cves) == 0 && ageNote == "" {
		checked = append(checked, "no checks configured")
	}
	return vouch.Pass(what+": "+summary+", "+strings.Join(checked, ", "), details)
}

// listFindings puts the findings into details["findingList"], one per
// rule and package, the counted ones first, within MaxFindingList entries
// and MaxListBytes, and counts the rest in details["moreFindingList"]. A
// suppressed finding that the report also lists unsuppressed is listed
// once, as not suppressed. Every field is present ("" or 0 when the report
// gives none), so that a policy can read it without checking.
func listFindings(details map[string]any, counted, suppressed []*Finding) {
	listed := make([]any, 0, min(len(counted)+len(suppressed), MaxFindingList))
	seen := map[string]bool{}
	size, rest := 0, 0
	for i, f := range append(append([]*Finding(nil), counted...), suppressed...) {
		key := findingKey(f)
		if seen[key] {
			continue
		}
		seen[key] = true
		if rest > 0 {
			rest++
			continue
		}
		e := map[string]any{
			"id":         untrusted.Text(f.ID(), maxDetail),
			"rule":       untrusted.Text(f.RuleID, maxDetail),
			"severity":   f.Severity.String(),
			"score":      f.Score,
			"level":      untrusted.Text(f.Level, 32),
			"package":    untrusted.Text(f.Package, maxDetail),
			"version":    untrusted.Text(f.Version, maxDetail),
			"message":    untrusted.Text(f.Message, maxDetail),
			"suppressed": i >= len(counted),
		}
		// The JSON of the entry, its comma in the list included; a
		// float64 takes at most 24 bytes, a bool 5.
		n := 3
		for k, v := range e {
			n += len(k) + 4
			switch v := v.(type) {
			case string:
				n += untrusted.JSONLen(v)
			case float64:
				n += 24
			default:
				n += 5
			}
		}
		if len(listed) == MaxFindingList || size+n > MaxListBytes {
			rest++
			continue
		}
		size += n
		listed = append(listed, e)
	}
	details["findingList"] = listed
	if rest > 0 {
		details["moreFindingList"] = rest
	}
}

// findingKey identifies a vulnerability in a package: a scanner reports
// one once per location.
func findingKey(f *Finding) string {
	return f.RuleID + "\x00" + f.Package + "\x00" + f.Version
}

// listSuppressed puts the suppressed findings into details, one per rule
// and package, those the policy would otherwise deny first, and returns the
// note for the reason ("2 findings suppressed (accepted; 1 would otherwise
// be denied)"), or "" when none is. A suppressed finding that the report also lists unsuppressed (at
// another location) counts, and is not listed.
func (p *policy) listSuppressed(details map[string]any, counted, suppressed []*Finding) string {
	if len(suppressed) == 0 {
		return ""
	}
	countedKeys := make(map[string]bool, len(counted))
	for _, f := range counted {
		countedKeys[findingKey(f)] = true
	}
	type item struct {
		f   *Finding
		why string
	}
	var list []item
	seen := map[string]bool{}
	wouldDeny := 0
	for _, f := range suppressed {
		key := findingKey(f)
		if countedKeys[key] || seen[key] {
			continue
		}
		seen[key] = true
		why := p.denies(f)
		if why != "" {
			wouldDeny++
		}
		list = append(list, item{f, why})
	}
	if len(list) == 0 {
		return ""
	}
	slices.SortStableFunc(list, func(a, b item) int {
		return cmp.Compare(boolRank(a.why == ""), boolRank(b.why == ""))
	})
	listed := make([]any, 0, min(len(list), MaxListed))
	for _, it := range list[:min(len(list), MaxListed)] {
		f := it.f
		entry := map[string]any{"id": untrusted.Text(f.ID(), maxDetail), "rule": untrusted.Text(f.RuleID, maxDetail), "severity": f.Severity.String(),
			"kind": f.Suppression.Kind, "justification": f.Suppression.Justification}
		if f.Score > 0 {
			entry["score"] = f.Score
		}
		if f.Package != "" {
			entry["package"] = untrusted.Text(f.Package, maxDetail)
			entry["version"] = untrusted.Text(f.Version, maxDetail)
		}
		if x := f.Suppression.VEX; x != nil {
			entry["vex"] = map[string]any{"document": x.Document, "status": x.Status, "justification": x.Justification, "impact": x.Impact, "trustedBy": x.TrustedBy, "signature": x.Signature}
		}
		if it.why != "" {
			entry["deniedOtherwise"] = untrusted.Text(it.why, maxDetail)
		}
		listed = append(listed, entry)
	}
	details["suppressed"] = len(list)
	details["suppressedFindings"] = listed
	if rest := len(list) - len(listed); rest > 0 {
		details["moreSuppressedFindings"] = rest
	}
	how := "accepted"
	var byVEX []string
	accepted := 0
	for _, it := range list {
		x := it.f.Suppression.VEX
		if x == nil {
			accepted++
			continue
		}
		if len(byVEX) < reasonListed {
			why := x.Justification
			if why == "" {
				why = x.Impact
			}
			s := fmt.Sprintf("%s %s by VEX %s", untrusted.Text(it.f.ID(), 80), x.Status, vouch.ShortDigest(digest.Digest(x.Document)))
			if why != "" {
				s += " (" + untrusted.Text(why, 120) + ")"
			}
			byVEX = append(byVEX, s)
		}
	}
	if len(byVEX) > 0 {
		how = strings.Join(byVEX, ", ")
		if n := len(list) - accepted - len(byVEX); n > 0 {
			how += fmt.Sprintf(", and %d more by VEX", n)
		}
		if accepted > 0 {
			how += fmt.Sprintf("; %d accepted in the report", accepted)
		}
	}
	if wouldDeny > 0 {
		return fmt.Sprintf("%s suppressed (%s; %d would otherwise be denied)", plural(len(list), "finding"), how, wouldDeny)
	}
	return plural(len(list), "finding") + " suppressed (" + how + ")"
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// denies says why f is denied, or "".
func (p *policy) denies(f *Finding) string {
	for _, id := range append([]string{f.RuleID}, f.IDs...) {
		if p.cves[strings.ToUpper(id)] {
			return "denied id " + untrusted.Text(strings.ToUpper(id), 80)
		}
	}
	if p.severities[f.Severity] {
		return "denied severity " + f.Severity.String()
	}
	return ""
}

// reportTime returns the report's time and where it comes from, or a
// problem with the annotation that should have given it.
func (p *policy) reportTime(rep *Report, annotations map[string]string) (time.Time, string, string) {
	var when time.Time
	for _, r := range rep.Runs {
		if !r.Time.IsZero() && (when.IsZero() || r.Time.Before(when)) {
			when = r.Time
		}
	}
	if !when.IsZero() {
		return when, "the report's invocations", ""
	}
	if p.annotation == "" {
		return time.Time{}, "", ""
	}
	text, ok := annotations[p.annotation]
	if !ok {
		return time.Time{}, "", ""
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(text))
	if err != nil {
		return time.Time{}, "", fmt.Sprintf("the artifact's %s annotation %q is not an RFC 3339 time", p.annotation, untrusted.Text(text, 40))
	}
	return t, "annotation " + p.annotation, ""
}

// scanners names the tools of the runs: "Trivy 0.74.0".
func scanners(runs []Run) string {
	var names []string
	seen := map[string]bool{}
	more := 0
	for _, r := range runs {
		s := untrusted.Text(strings.TrimSpace(r.Tool+" "+r.Version), 80)
		switch {
		case seen[s]:
		case len(names) == reasonListed:
			more++
		default:
			names = append(names, s)
		}
		seen[s] = true
	}
	if more > 0 {
		names = append(names, fmt.Sprintf("%d more scanners", more))
	}
	return strings.Join(names, ", ")
}

func describe(f *Finding, why string) string {
	s := f.ID()
	var facts []string
	if strings.HasPrefix(why, "denied id") {
		facts = append(facts, "denied id")
	}
	sev := f.Severity.String()
	if f.Score > 0 {
		sev += fmt.Sprintf(" %.1f", f.Score)
	}
	facts = append(facts, sev)
	if f.Package != "" {
		facts = append(facts, untrusted.Text(strings.TrimSpace(f.Package+" "+f.Version), 120))
	}
	return untrusted.Text(s, 80) + " (" + strings.Join(facts, ", ") + ")"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
