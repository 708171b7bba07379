package vouch

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Outcome is what happened to one check or one node.
type Outcome string

// Outcomes of a check. A node's outcome sums up its checks.
const (
	// Passed: the check ran and the artifact satisfies it.
	Passed Outcome = "passed"
	// Failed: the check ran and the artifact does not satisfy it.
	Failed Outcome = "failed"
	// Skipped: nothing checked the node (no verifier handles its type), or
	// the policy chose not to.
	Skipped Outcome = "skipped"
	// Errored: vouch could not check (fetch failed, bad content, limits).
	Errored Outcome = "error"
)

// Result is one verifier's finding on one node.
type Result struct {
	// Verifier names the verifier that produced the result.
	Verifier string `json:"verifier"`
	// Outcome is passed, failed, skipped or error.
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason says why, in words a person can act on.
	Reason string `json:"reason"`
	// Details carries verifier-specific facts (signer, packages, …) for
	// reports and Rego policies. Optional.
	Details map[string]any `json:"details,omitempty"`
	// Claims lists what the verifier found the artifact to claim about its
	// subject, with the outcome of each: a signature of it, or an in-toto
	// attestation of some predicate type. One artifact may claim several
	// things (a cosign ".att" manifest holds an attestation per layer), and
	// artifact types do not tell them apart (cosign v3 attaches signatures
	// and attestations under one type), so policies that ask for "a
	// signature" or "an SLSA provenance" read these. Optional: verifiers of
	// other content leave it empty.
	Claims []Claim `json:"claims,omitempty"`
}

// ClaimKind is what an artifact claims about its subject.
type ClaimKind string

// Kinds of claims.
const (
	// ClaimSignature: the artifact is a signature of its subject.
	ClaimSignature ClaimKind = "signature"
	// ClaimAttestation: the artifact is an in-toto statement about its
	// subject (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md),
	// of the predicate type the claim names.
	ClaimAttestation ClaimKind = "attestation"
)

// Claim is one thing an artifact claims about its subject and what its
// check found. Its predicate type is read from the signed (or, for
// unsigned attestations, the stored) statement, never from annotations.
type Claim struct {
	// Kind is signature or attestation.
	Kind ClaimKind `json:"kind"`
	// PredicateType is the in-toto predicate type of an attestation
	// ("https://slsa.dev/provenance/v1"). Empty for signatures.
	PredicateType string `json:"predicateType,omitempty"`
	// Outcome is passed, failed, skipped or error: passed when one of the
	// artifact's statements of this kind and type passed every check.
	Outcome Outcome `json:"outcome"`
	// Reason says why, as Result.Reason does.
	Reason string `json:"reason,omitempty"`
	// SLSABuildLevel is, for an SLSA provenance, the SLSA Build level
	// (https://slsa.dev/spec/v1.0/levels) it shows: 1 when the provenance
	// names the subject and passes the content checks, 2 when it is also
	// signed by a trusted signer, 3 when its builder is also on the
	// verifier's list of hardened builders. 0 when not shown. Optional.
	SLSABuildLevel int `json:"slsaBuildLevel,omitempty"`
}

// Pass returns a passed Result: the check ran and the artifact satisfies it.
// The executor fills in Verifier.
func Pass(reason string, details map[string]any) Result {
	return Result{Outcome: Passed, Reason: reason, Details: details}
}

// Fail returns a failed Result: the check ran and the artifact does not
// satisfy it, for the reason given. The executor fills in Verifier.
func Fail(reason string, details map[string]any) Result {
	return Result{Outcome: Failed, Reason: reason, Details: details}
}

// Relation says how a node is linked to its parent.
type Relation string

// Relations between a node and its parent.
const (
	// RelSubject marks the root of a report: what the user asked about.
	RelSubject Relation = "subject"
	// RelReferrer marks an artifact whose subject is the parent.
	RelReferrer Relation = "referrer"
	// RelManifest marks a platform manifest of a parent image index.
	RelManifest Relation = "manifest"
)

// Source says how a referrer was found.
type Source string

// Ways a referrer is discovered.
const (
	// SourceReferrersAPI: the OCI 1.1 referrers API, or oras-go's fallback
	// to the "sha256-<hex>" referrers tag when the registry lacks the API.
	SourceReferrersAPI Source = "referrers"
	// SourceTagSchema: the "sha256-<hex>" referrers tag, read in addition to
	// the API.
	SourceTagSchema Source = "tag-schema"
	// SourceCosignTag: cosign's "sha256-<hex>.sig" / ".att" / ".sbom" tags.
	SourceCosignTag Source = "cosign-tag"
	// SourceIndexAttestation: an attestation manifest that the parent's
	// image index lists for it (BuildKit's layout, BuildKitAttestationType).
	SourceIndexAttestation Source = "index-attestation"
)

// Node is one artifact in a report tree.
type Node struct {
	// Relation links the node to its parent.
	Relation Relation `json:"relation"`
	// Source says how a referrer was found; empty for subjects and manifests.
	Source Source `json:"source,omitempty"`
	// MediaType is the manifest's media type.
	MediaType string `json:"mediaType"`
	// ArtifactType is taken from the fetched manifest (artifactType, else its
	// config media type), never from a registry's index alone.
	ArtifactType string `json:"artifactType,omitempty"`
	// Digest identifies the manifest.
	Digest digest.Digest `json:"digest"`
	// Size is the manifest's size in bytes.
	Size int64 `json:"size"`
	// Platform is the platform an index lists a manifest for.
	Platform *ocispec.Platform `json:"platform,omitempty"`
	// Annotations are the manifest's annotations, when it has any.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Outcome sums up Results: failed if any failed, else error if any erred,
	// else passed if any passed, else skipped.
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason explains Outcome.
	Reason string `json:"reason,omitempty"`
	// Results holds each verifier's finding on this node.
	Results []Result `json:"results,omitempty"`
	// Referrers are the artifacts whose subject is this node.
	Referrers []*Node `json:"referrers,omitempty"`
	// Manifests are the platform manifests of an image index, each walked as
	// a subject in its own right.
	Manifests []*Node `json:"manifests,omitempty"`
}

// ShortDigest is d's algorithm and the first 12 hex digits of its value,
// for display ("sha256:0123456789ab").
func ShortDigest(d digest.Digest) string {
	s := d.String()
	if s == "" {
		return "(no digest)"
	}
	algo, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) <= 12 {
		return s
	}
	return algo + ":" + hex[:12]
}

// DisplayType names n's type for people: its artifact type, or for
// subjects and platform manifests its media type (which says image or
// index), else whichever of the two is set. It is "" when neither is, and
// callers choose the placeholder.
func (n *Node) DisplayType() string {
	t := n.ArtifactType
	if t == "" || n.Relation == RelSubject || n.Relation == RelManifest {
		t = n.MediaType
	}
	if t == "" {
		t = n.ArtifactType
	}
	return t
}

// Walk calls fn for n and every node below it, parents first, with the
// depth of each (0 for n).
func (n *Node) Walk(fn func(node *Node, depth int)) {
	n.walk(fn, 0)
}

func (n *Node) walk(fn func(*Node, int), depth int) {
	fn(n, depth)
	for _, c := range n.Manifests {
		c.walk(fn, depth+1)
	}
	for _, c := range n.Referrers {
		c.walk(fn, depth+1)
	}
}

// Count returns the number of nodes in the tree below and including n.
func (n *Node) Count() int {
	count := 0
	n.Walk(func(*Node, int) { count++ })
	return count
}

// Verdict is the answer for one subject.
type Verdict string

// Verdicts.
const (
	// Allowed: the policy is satisfied.
	Allowed Verdict = "allowed"
	// Denied: the policy is not satisfied; Reason says which requirement.
	Denied Verdict = "denied"
	// Undecided: vouch could not decide (registry unreachable, limits,
	// broken trust material). Fail closed: an admission gate denies it.
	Undecided Verdict = "undecided"
)

// Report is the verdict on one subject and the graph behind it.
type Report struct {
	// Subject is the reference as the user gave it.
	Subject string `json:"subject"`
	// Reference is the normalised reference, pinned to the resolved digest
	// when resolution succeeded.
	Reference string `json:"reference"`
	// Verdict is allowed, denied or undecided.
	Verdict Verdict `json:"verdict"`
	// Reason explains the verdict in one or a few sentences.
	Reason string `json:"reason"`
	// Mode is the policy mode that applied (enforce, warn, audit). Optional.
	Mode Mode `json:"mode,omitempty"`
	// Waived is true when the policy's requirements were not met but the
	// mode (warn or audit) allowed the subject; Reason says what failed.
	Waived bool `json:"waived,omitempty"`
	// Root is the subject's node; nil when it could not be resolved.
	Root *Node `json:"graph,omitempty"`
}

// ReportVersion is the version of the JSON report format; it changes only
// when a field changes meaning or goes away.
const ReportVersion = "vouch.report/v1"

// Reports is the JSON document `vouch verify -o json` prints.
type Reports struct {
	// Version is ReportVersion.
	Version string `json:"version"`
	// Verdict is allowed only when every subject is allowed; undecided when
	// any is undecided and none denied.
	Verdict Verdict `json:"verdict"`
	// Subjects holds one report per subject, in the order given.
	Subjects []*Report `json:"subjects"`
}

// Summarize combines per-subject reports into one document.
func Summarize(reports []*Report) *Reports {
	out := &Reports{Version: ReportVersion, Verdict: Allowed, Subjects: reports}
	for _, r := range reports {
		switch r.Verdict {
		case Denied:
			out.Verdict = Denied
		case Undecided:
			if out.Verdict != Denied {
				out.Verdict = Undecided
			}
		}
	}
	if len(reports) == 0 {
		out.Verdict = Undecided
	}
	return out
}

// summarizeResults sets n.Outcome and n.Reason from n.Results.
func (n *Node) summarizeResults() {
	counts := map[Outcome]int{}
	var first = map[Outcome]string{}
	for _, r := range n.Results {
		counts[r.Outcome]++
		if _, ok := first[r.Outcome]; !ok {
			first[r.Outcome] = fmt.Sprintf("%s: %s", r.Verifier, r.Reason)
		}
	}
	for _, o := range []Outcome{Failed, Errored, Passed, Skipped} {
		if counts[o] > 0 {
			n.Outcome, n.Reason = o, first[o]
			return
		}
	}
	n.Outcome = Skipped
	if n.Reason == "" {
		t := n.ArtifactType
		if t == "" {
			t = "(none)"
		}
		n.Reason = "no verifier handles artifact type " + t
	}
}

// Restrict returns a copy of the tree below n as it would be had only the
// verifiers that keep accepts run: each node keeps only their results, and
// its Outcome and Reason are summed up again from those, as the Executor
// sums them up. A node that has no results at all (not verified yet,
// skipped, or errored before any verifier ran, as a manifest that could
// not be fetched) is copied as it is. orig maps each copy to its original.
// Policies that share one walk but not their trust (policy.All) each
// decide on the restriction to their own verifiers.
func (n *Node) Restrict(keep func(verifier string) bool) (view *Node, orig map[*Node]*Node) {
	orig = map[*Node]*Node{}
	return n.restrict(keep, orig), orig
}

func (n *Node) restrict(keep func(string) bool, orig map[*Node]*Node) *Node {
	if n == nil {
		return nil
	}
	c := *n
	orig[&c] = n
	if len(n.Results) > 0 {
		c.Results = nil
		for _, r := range n.Results {
			if keep(r.Verifier) {
				c.Results = append(c.Results, r)
			}
		}
		c.Reason = ""
		c.summarizeResults()
	}
	c.Referrers = restrictAll(n.Referrers, keep, orig)
	c.Manifests = restrictAll(n.Manifests, keep, orig)
	return &c
}

func restrictAll(nodes []*Node, keep func(string) bool, orig map[*Node]*Node) []*Node {
	if nodes == nil {
		return nil
	}
	out := make([]*Node, len(nodes))
	for i, m := range nodes {
		out[i] = m.restrict(keep, orig)
	}
	return out
}
