package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
)

// unmet explains each requirement of reqs that node's referrers do not
// meet; nil when all are met.
func unmet(reqs []Requirement, node *vouch.Node) []vouch.Explanation {
	var out []vouch.Explanation
	for _, r := range reqs {
		if e := r.explain(node); e != nil {
			out = append(out, *e)
		}
	}
	return out
}

// reasons returns the short reasons of explanations.
func reasons(explanations []vouch.Explanation) []string {
	out := make([]string, 0, len(explanations))
	for _, e := range explanations {
		out = append(out, e.Reason)
	}
	return out
}

// explain says why r is not met by node's referrers, or returns nil.
// Nothing is built for a requirement that is met: Decide runs after each
// node that passes (vouch.Settler), mostly on requirements that are met.
func (r Requirement) explain(node *vouch.Node) *vouch.Explanation {
	var e *vouch.Explanation
	if len(r.AnyOf) > 0 {
		alts := make([]*vouch.Explanation, 0, len(r.AnyOf))
		for _, alt := range r.AnyOf {
			ae := alt.explain(node)
			if ae == nil {
				return nil
			}
			alts = append(alts, ae)
		}
		var whys, names, wants []string
		e = &vouch.Explanation{}
		for _, ae := range alts {
			whys, names, wants = append(whys, ae.Reason), append(names, ae.Requirement), append(wants, ae.Wanted)
			for _, f := range ae.Found {
				addFinding(e, f)
			}
			e.FoundOmitted += ae.FoundOmitted
		}
		e.Requirement = "one of: " + strings.Join(names, " | ")
		e.Wanted = "one of: " + strings.Join(wants, "; or ")
		return r.unmetAt(e, node, "none of the alternatives is met: "+strings.Join(whys, " / "))
	}
	var (
		candidates []*vouch.Node
		findings   [][]finding
	)
	for _, c := range node.Referrers {
		if r.ArtifactType != "" && c.ArtifactType != r.ArtifactType {
			continue
		}
		if fs, ok := r.findings(c); ok {
			candidates, findings = append(candidates, c), append(findings, fs)
		}
	}
	what := r.wanted()
	if len(candidates) == 0 {
		if r.Optional {
			return nil
		}
		// What the node has instead, and why none of it counts.
		var found []string
		for _, o := range node.Referrers {
			why := r.notCandidate(o)
			e = withFinding(e, vouch.Finding{Digest: o.Digest, ArtifactType: o.ArtifactType, Outcome: o.Outcome, Signer: signer(o), Reason: why})
			found = append(found, fmt.Sprintf("%s (%s)", describe(o), why))
		}
		reason := fmt.Sprintf("no %s found", what)
		if len(found) > 0 {
			reason += fmt.Sprintf("; found instead %s: %s", plural(len(found), "referrer"), list(found, "; "))
		}
		return r.unmetAt(e, node, reason)
	}
	whys := make([]string, len(candidates))
	good := 0
	for i, c := range candidates {
		if whys[i] = r.satisfiedBy(c, findings[i]); whys[i] == "" {
			good++
		}
	}
	if r.Match == MatchAll && good == len(candidates) || r.Match != MatchAll && good > 0 {
		return nil
	}
	var bad []string
	for i, c := range candidates {
		why := whys[i]
		if why == "" {
			continue
		}
		o, _ := outcome(c, findings[i])
		if len(r.Verifiers) == 0 && r.claimKind() == "" {
			o = c.Outcome
		}
		who := signer(c)
		e = withFinding(e, vouch.Finding{Digest: c.Digest, ArtifactType: c.ArtifactType, Outcome: o, Signer: who, Reason: why})
		item := vouch.ShortDigest(c.Digest)
		if who != "" && !strings.Contains(why, who) {
			item += fmt.Sprintf(" by %q", who)
		}
		bad = append(bad, item+" "+why)
	}
	if r.Match == MatchAll {
		return r.unmetAt(e, node, fmt.Sprintf("all %s must verify, %d of %d do not: %s", what, len(bad), len(candidates), list(bad, "; ")))
	}
	return r.unmetAt(e, node, fmt.Sprintf("no %s verified (%d found, none verifies): %s", what, len(bad), list(bad, "; ")))
}

// unmetAt completes e (nil: a new one) as the explanation of r on node,
// with the short reason given.
func (r Requirement) unmetAt(e *vouch.Explanation, node *vouch.Node, reason string) *vouch.Explanation {
	if e == nil {
		e = &vouch.Explanation{}
	}
	e.Node, e.NodeType, e.Reason = node.Digest, node.DisplayType(), reason
	if e.Requirement == "" {
		e.Requirement, e.Wanted = r.wanted(), r.satisfaction()
	}
	return e
}

// withFinding adds f to e (nil: a new one) and returns e.
func withFinding(e *vouch.Explanation, f vouch.Finding) *vouch.Explanation {
	if e == nil {
		e = &vouch.Explanation{}
	}
	addFinding(e, f)
	return e
}

// addFinding appends f to e.Found, up to vouch.MaxExplained, and counts
// the rest.
func addFinding(e *vouch.Explanation, f vouch.Finding) {
	if len(e.Found) >= vouch.MaxExplained {
		e.FoundOmitted++
		return
	}
	e.Found = append(e.Found, f)
}

// notCandidate says why referrer o does not count for r at all.
func (r Requirement) notCandidate(o *vouch.Node) string {
	if r.ArtifactType != "" && o.ArtifactType != r.ArtifactType {
		t := o.ArtifactType
		if t == "" {
			t = "none"
		}
		return "artifact type " + t + ", not " + r.ArtifactType
	}
	if len(r.Verifiers) > 0 && len(o.Results) > 0 {
		var others []string
		for _, res := range o.Results {
			if slices.Contains(r.Verifiers, res.Verifier) {
				others = nil
				break
			}
			others = append(others, res.Verifier)
		}
		if len(others) > 0 {
			return fmt.Sprintf("not checked by verifier %s, only by %s", strings.Join(r.Verifiers, " or "), strings.Join(others, ", "))
		}
	}
	var claims []string
	for _, res := range o.Results {
		for _, c := range res.Claims {
			claims = append(claims, claimText(c))
		}
	}
	if len(claims) > 0 {
		return fmt.Sprintf("it is %s, not %s", list(dedupe(claims), ", "), article(r.wanted()))
	}
	if r.claimKind() == vouch.ClaimSignature || len(o.Results) == 0 {
		// A referrer whose verifiers report no claims is a signature when
		// its artifact type is one; otherwise it says what it was.
		return "not " + article(r.wanted()) + ": " + outcomeWhy(o.Outcome, orNone(o.Reason))
	}
	return "no " + r.wanted() + " in it: " + outcomeWhy(o.Outcome, orNone(o.Reason))
}

// claimText names a claim for people: "a signature", "an attestation of
// https://spdx.dev/Document".
func claimText(c vouch.Claim) string {
	if c.Kind == vouch.ClaimAttestation {
		if c.PredicateType == "" {
			return "an attestation"
		}
		s := "an attestation of " + c.PredicateType
		if c.SLSABuildLevel > 0 {
			s += fmt.Sprintf(" showing SLSA Build level %d", c.SLSABuildLevel)
		}
		return s
	}
	return article(string(c.Kind))
}

func article(noun string) string {
	if noun == "" {
		return "anything"
	}
	switch noun[0] {
	case 'a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U':
		return "an " + noun
	}
	return "a " + noun
}

func dedupe(items []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range items {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// signer is the signer a verifier reported for n: a certificate subject
// (details "signer", the notation verifier's), else a certificate identity
// or key name (details "subject" or "key", the cosign verifier's). "" when
// none did.
func signer(n *vouch.Node) string {
	for _, k := range []string{"signer", "subject", "key"} {
		for _, res := range n.Results {
			if s, ok := res.Details[k].(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

// satisfaction says what would satisfy r, for explanations.
func (r Requirement) satisfaction() string {
	var s string
	switch r.claimKind() {
	case "":
		s = "a referrer of artifact type " + r.ArtifactType + " that verifies"
		if len(r.Require) > 0 && len(r.Verifiers) == 0 {
			s = "a referrer of artifact type " + r.ArtifactType + " that verifies (or that no verifier checks)"
		}
	case vouch.ClaimSignature:
		s = "a signature of the subject that verifies against the configured trust (a Notary Project signature, a cosign signature, or a Sigstore bundle)"
	default:
		switch {
		case r.SLSABuildLevel > 0:
			pt := "v0.2 or v1"
			if r.PredicateType != "" {
				pt = r.PredicateType
			}
			s = fmt.Sprintf("an SLSA provenance (%s) of the subject showing SLSA Build level %d or more (1: names the subject and passes the content checks; 2: also signed by a trusted signer; 3: also from a hardened builder)", pt, r.SLSABuildLevel)
		case r.PredicateType != "":
			s = "an in-toto attestation of predicate type " + r.PredicateType + " about the subject that verifies"
		default:
			s = "an in-toto attestation about the subject that verifies"
		}
	}
	if r.ArtifactType != "" && r.claimKind() != "" {
		s += ", in a referrer of artifact type " + r.ArtifactType
	}
	if len(r.Verifiers) > 0 {
		s += ", passed by verifier " + strings.Join(r.Verifiers, " or ") + " and failed by none"
	}
	if r.Match == MatchAll {
		s = "at least one, and every one present: " + s
	}
	if len(r.Require) > 0 {
		s += "; itself with " + describeRequirements(r.Require)
	}
	return s
}
