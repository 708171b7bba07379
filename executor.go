package vouch

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultConcurrency bounds the graph's I/O and verification steps that run
// at once for one Executor call.
const DefaultConcurrency = 8

// Discovery chooses where referrers are looked for besides the store's own
// Referrers listing (the OCI referrers API, or its tag-schema fallback).
type Discovery struct {
	// CosignTags also looks up cosign's "sha256-<hex>.sig" and
	// "sha256-<hex>.att" tags for each subject (not for nested referrers).
	// Costs up to two requests per subject. Optional; default false.
	CosignTags bool
	// TagSchema also reads the "sha256-<hex>" referrers tag when the store
	// lists referrers by the API, merging what older clients pushed there.
	// Costs one request per node. Optional; default false.
	TagSchema bool
	// LeafTypes lists artifact types whose own referrers are not looked up:
	// signatures, which nothing refers to in practice, so that verifying a
	// signed image costs no request per signature beyond its manifest and
	// blob. Optional; nil means DefaultLeafTypes(), an empty slice none.
	LeafTypes []string
	// ArtifactType, when set, keeps only direct referrers of that type (and,
	// below them, everything). The type is read from each fetched manifest;
	// registries' own filters are not trusted.
	ArtifactType string
}

// Executor walks a subject's graph (subject → referrers → nested referrers,
// and the platform manifests of an index), runs the verifiers on each node,
// and asks the policy for a verdict. It is safe for concurrent use.
type Executor struct {
	// Store opens repositories. Required.
	Store Store
	// Verifiers check nodes; each node is checked by every verifier that
	// handles its artifact type. Optional: with none, the graph is walked
	// and every node is skipped.
	Verifiers []Verifier
	// Policy decides. Required for Verify.
	Policy Policy
	// Limits bound the walk; zero fields take their defaults.
	Limits Limits
	// Concurrency bounds the steps running at once; default
	// DefaultConcurrency.
	Concurrency int
	// Discovery adds referrer sources and filters.
	Discovery Discovery
	// VerifyAll runs every verifier on every referrer even after a policy
	// that implements Settler has settled the verdict. Optional; by default
	// verification stops there and the referrers left are reported skipped.
	VerifyAll bool
}

// FetchReferencer is the optional Repository capability of resolving a tag
// or digest and fetching the manifest in one request.
type FetchReferencer interface {
	FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error)
}

// Screener is an optional Policy capability: deciding on a subject from its
// reference alone, before any I/O. Image names are chosen by whoever writes
// a Pod spec, and the host a reference names is the host vouch would call:
// a subject that no policy scope covers is denied without a single request.
type Screener interface {
	// Screen returns the decision that Decide would return on ref whatever
	// its graph, and true; or false when the decision depends on the graph.
	// It must not do I/O.
	Screen(ctx context.Context, ref Reference) (Decision, bool)
}

// Screen returns the report of the verdict on ref that the policy makes
// from the reference alone (it is a Screener and can: no scope covers
// ref), and true; it does no I/O. Verify calls it first; a server calls it
// before it resolves a tag. The report has no graph, and its Reference is
// ref as given.
func (e *Executor) Screen(ctx context.Context, ref Reference) (*Report, bool) {
	s, ok := e.Policy.(Screener)
	if !ok {
		return nil, false
	}
	d, ok := s.Screen(ctx, ref)
	if !ok || (d.Verdict != Allowed && d.Verdict != Denied) {
		return nil, false
	}
	return &Report{Subject: ref.String(), Reference: ref.String(), Verdict: d.Verdict, Reason: d.Reason, Mode: d.Mode, Waived: d.Waived, Explanations: d.Explanations}, true
}

// Verify resolves ref, walks its graph, verifies every node and returns the
// report with the policy's verdict. A policy that decides from the
// reference alone (a Screener: no scope covers ref) decides before any
// I/O. When vouch cannot decide (the registry is unreachable, a limit is
// exceeded, the policy fails) it returns the error together with a report
// whose verdict is Undecided and whose reason says why.
func (e *Executor) Verify(ctx context.Context, ref Reference) (*Report, error) {
	if report, ok := e.Screen(ctx, ref); ok {
		return report, nil
	}
	report := &Report{Subject: ref.String(), Reference: ref.String(), Verdict: Undecided}
	root, pinned, err := e.walk(ctx, ref, true)
	if pinned.Digest != "" {
		report.Reference = pinned.String()
	}
	if err != nil {
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	report.Root = root
	if e.Policy == nil {
		err := errors.New("no policy configured")
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	decision, err := e.Policy.Decide(ctx, pinned, root)
	if err != nil {
		report.Reason = "could not decide: policy: " + err.Error()
		return report, fmt.Errorf("policy: %w", err)
	}
	if decision.Verdict != Allowed && decision.Verdict != Denied {
		err := fmt.Errorf("policy returned verdict %q", decision.Verdict)
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	report.Verdict, report.Reason, report.Mode, report.Waived, report.Explanations = decision.Verdict, decision.Reason, decision.Mode, decision.Waived, decision.Explanations
	return report, nil
}

// Graph resolves ref and walks its graph without verifying: what
// `vouch referrers` shows. It returns the reference pinned to its digest.
func (e *Executor) Graph(ctx context.Context, ref Reference) (*Node, Reference, error) {
	return e.walk(ctx, ref, false)
}
