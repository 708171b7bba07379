// Package policy turns a subject's report tree into a verdict. It holds
// Default, the fail-closed policy vouch applies until a configured policy
// is given; the policy of the config file's policy section (Config), which
// New builds; and All, which composes policies that each decide on their
// own verifiers' results (a cluster's and its tenants').
package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
)

// maxListed bounds how many nodes or reasons one reason sentence names.
const maxListed = 3

// Default returns the fail-closed policy that vouch applies when no policy
// is configured; verifiers names the configured verifiers.
//
// With no verifier every subject is denied. Otherwise a subject is allowed
// when at least one of its direct referrers passed and no node of its graph
// failed, except signatures: one signature that passes vouches for its
// artifact, and its failed sibling signatures are reported but not held
// against it (as `notation verify`, `cosign verify` and Ratify do, and so
// that anyone able to attach a bogus signature cannot deny an image). For
// an image index a verified referrer of the index covers its platform
// manifests, and referrers of the manifests alone do not count.
//
// The policy is a vouch.Settler: once a signature passes, the signatures
// beside it need not be verified.
func Default(verifiers []string) vouch.Policy {
	return defaultPolicy{verifiers: slices.Clone(verifiers)}
}

type defaultPolicy struct {
	verifiers []string
}

// Decide implements vouch.Policy. It returns an error only when root is nil.
func (p defaultPolicy) Decide(_ context.Context, ref vouch.Reference, root *vouch.Node) (vouch.Decision, error) {
	deny := func(reason string) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Denied, Reason: reason, Mode: vouch.ModeEnforce}, nil
	}
	if len(p.verifiers) == 0 {
		return deny("no verifier is configured: vouch allows nothing it has not verified")
	}
	if root == nil {
		return vouch.Decision{}, fmt.Errorf("policy: no artifact graph for %s", ref)
	}

	if failed := failures(root); len(failed) > 0 {
		reason := failed[0]
		if len(failed) > 1 {
			reason += fmt.Sprintf(" (and %d more failed)", len(failed)-1)
		}
		return deny(reason)
	}

	var passed []string
	for _, r := range root.Referrers {
		if r.Outcome == vouch.Passed {
			passed = append(passed, fmt.Sprintf("%s (%s)", describe(r), orNone(r.Reason)))
		}
	}
	if len(passed) > 0 {
		return vouch.Decision{
			Verdict: vouch.Allowed,
			Reason: fmt.Sprintf("%d of %s verified: %s",
				len(passed), plural(len(root.Referrers), "referrer"), list(passed, ", ")),
			Mode: vouch.ModeEnforce,
		}, nil
	}
	return deny("no verified referrer: " + p.found(root))
}

// failures describes every failed node under and including root, parents
// first, each with its reason.
func failures(root *vouch.Node) []string {
	var out []string
	var walk func(n, parent *vouch.Node, onPath map[*vouch.Node]bool)
	walk = func(n, parent *vouch.Node, onPath map[*vouch.Node]bool) {
		if n == nil || onPath[n] {
			return
		}
		onPath[n] = true
		defer delete(onPath, n)
		if n.Outcome == vouch.Failed && !(vouch.IsSignatureNode(n) && parent != nil && hasPassedSignature(parent)) {
			what := describe(n)
			switch {
			case parent == nil:
				what = "subject " + what
			case parent != root:
				what += fmt.Sprintf(" (%s of %s)", n.Relation, describe(parent))
			}
			out = append(out, fmt.Sprintf("%s failed: %s", what, orNone(n.Reason)))
		}
		for _, c := range n.Manifests {
			walk(c, n, onPath)
		}
		for _, c := range n.Referrers {
			walk(c, n, onPath)
		}
	}
	walk(root, nil, map[*vouch.Node]bool{})
	return out
}

// hasPassedSignature reports whether a signature of n passed.
func hasPassedSignature(n *vouch.Node) bool {
	for _, r := range n.Referrers {
		if r.Outcome == vouch.Passed && vouch.IsSignatureNode(r) {
			return true
		}
	}
	return false
}

// Settled implements vouch.Settler: the verdict is settled when the subject
// is allowed and every node still pending is a signature beside one that
// passed, which can change nothing whatever its outcome.
func (p defaultPolicy) Settled(ctx context.Context, ref vouch.Reference, root *vouch.Node, pending func(*vouch.Node) bool) bool {
	if root == nil || !onlySpareSignatures(root, pending) {
		return false
	}
	d, err := p.Decide(ctx, ref, root)
	return err == nil && d.Verdict == vouch.Allowed
}

// onlySpareSignatures reports whether every pending node under n is a
// signature whose artifact already has a passed signature.
func onlySpareSignatures(n *vouch.Node, pending func(*vouch.Node) bool) bool {
	signed := -1 // unknown until a pending referrer asks
	for _, r := range n.Referrers {
		if pending(r) {
			if signed < 0 {
				signed = 0
				if hasPassedSignature(n) {
					signed = 1
				}
			}
			// A pending Sigstore bundle may turn out to be an attestation,
			// whose failure would count.
			if signed == 0 || !vouch.IsSignature(r.ArtifactType) || r.ArtifactType == vouch.SigstoreBundleType {
				return false
			}
		}
		if !onlySpareSignatures(r, pending) {
			return false
		}
	}
	for _, m := range n.Manifests {
		if !onlySpareSignatures(m, pending) {
			return false
		}
	}
	return true
}

// found sums up the subject's direct referrers when none passed, grouped by
// outcome, with the configured verifiers so that a person sees the mismatch.
func (p defaultPolicy) found(root *vouch.Node) string {
	var b strings.Builder
	if len(root.Referrers) == 0 {
		b.WriteString("found no referrers")
	} else {
		fmt.Fprintf(&b, "found %s: ", plural(len(root.Referrers), "referrer"))
		var groups []string
		for _, o := range []vouch.Outcome{vouch.Skipped, vouch.Errored, ""} {
			var reasons []string
			count := 0
			for _, r := range root.Referrers {
				if r.Outcome == o || (o == "" && r.Outcome != vouch.Skipped && r.Outcome != vouch.Errored) {
					count++
					if reason := orNone(r.Reason); !slices.Contains(reasons, reason) {
						reasons = append(reasons, reason)
					}
				}
			}
			if count > 0 {
				name := string(o)
				if o == "" {
					name = "unchecked"
				}
				groups = append(groups, fmt.Sprintf("%d %s (%s)", count, name, list(reasons, "; ")))
			}
		}
		b.WriteString(strings.Join(groups, ", "))
	}
	if len(root.Manifests) > 0 {
		b.WriteString("; for an image index only referrers of the index itself count " +
			"(a signature on the index covers its platform manifests)")
	}
	fmt.Fprintf(&b, "; configured verifiers: %s", strings.Join(p.verifiers, ", "))
	return b.String()
}

// describe names a node by its artifact type (media type for subjects and
// manifests) and short digest.
func describe(n *vouch.Node) string {
	t := n.DisplayType()
	if t == "" {
		t = "artifact"
	}
	return t + " " + vouch.ShortDigest(n.Digest)
}

// list joins up to maxListed items and counts the rest.
func list(items []string, sep string) string {
	if len(items) <= maxListed {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:maxListed], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-maxListed)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orNone(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return reason
}
