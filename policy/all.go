package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
)

// Part is one policy of a composition (All): the policy, the verifiers
// whose results it sees, and its name in reasons.
type Part struct {
	// Name labels the part in reasons: "cluster", "tenant VouchConfig
	// team-a/strict". Required.
	Name string
	// Policy decides on the part's view of the tree. Required.
	Policy vouch.Policy
	// Verifiers names the verifiers whose results the part sees. The
	// others' results are removed from its view of the tree, and each
	// node's outcome is summed up again from what is left
	// (vouch.Node.Restrict): another part's verifiers, and the trust they
	// hold, can neither satisfy nor fail this part's requirements.
	// Required: a part with none sees every node unchecked.
	Verifiers []string
}

// All returns the policy that allows a subject only when every part
// allows it, each deciding on its own view of the one graph the Executor
// walked (see Part.Verifiers). It is how a tenant's requirements are added
// to the cluster's in the tenant's namespace (config.Compose).
//
// The decision:
//   - Verdict: denied when a part denies, else allowed. A part's mode can
//     waive only its own requirements: a part in warn or audit mode allows
//     where it would deny, and that changes nothing about the others.
//   - Reason: each denying part's reason, or when allowed every part's,
//     prefixed by the part's name ("cluster: scope \"default\": ...;
//     tenant VouchConfig team-a/strict: ..."), in the parts' order.
//   - Waived: allowed, and some part allowed only by waiving.
//   - Mode: enforce when denied; when waived, warn if a waiving part's mode
//     is warn, else audit (so that a server warns whenever a part asks it
//     to); otherwise the strictest of the parts' modes (enforce, then warn,
//     then audit).
//
// With no part, Decide returns an error (vouch cannot decide: fail
// closed). A part's error is Decide's, naming the part.
//
// The policy is a vouch.Settler that settles only when every part does on
// its own view; a part whose policy is not a Settler never settles, so
// neither does All.
func All(parts ...Part) vouch.Policy {
	ps := slices.Clone(parts)
	for i := range ps {
		ps[i].Verifiers = slices.Clone(ps[i].Verifiers)
	}
	return allPolicy{parts: ps}
}

type allPolicy struct {
	parts []Part
}

// view returns p's view of root and the map back to root's nodes.
func (p Part) view(root *vouch.Node) (*vouch.Node, map[*vouch.Node]*vouch.Node) {
	return root.Restrict(func(v string) bool { return slices.Contains(p.Verifiers, v) })
}

// Decide implements vouch.Policy.
func (a allPolicy) Decide(ctx context.Context, ref vouch.Reference, root *vouch.Node) (vouch.Decision, error) {
	if len(a.parts) == 0 {
		return vouch.Decision{}, errors.New("no policy to apply: a composition needs a part")
	}
	if root == nil {
		return vouch.Decision{}, fmt.Errorf("no graph to decide on")
	}
	ds := make([]vouch.Decision, len(a.parts))
	for i, p := range a.parts {
		view, _ := p.view(root)
		d, err := p.Policy.Decide(ctx, ref, view)
		if err != nil {
			return vouch.Decision{}, fmt.Errorf("%s: %w", p.Name, err)
		}
		ds[i] = d
	}
	return combine(a.parts, ds)
}

// Screen implements vouch.Screener: the composition decides from the
// reference alone when a part that can denies (a cluster policy with no
// scope for the subject), or when every part decides so and allows.
func (a allPolicy) Screen(ctx context.Context, ref vouch.Reference) (vouch.Decision, bool) {
	if len(a.parts) == 0 {
		return vouch.Decision{}, false
	}
	var (
		parts           []Part
		ds              []vouch.Decision
		unknown, denied bool
	)
	for _, p := range a.parts {
		s, ok := p.Policy.(vouch.Screener)
		if !ok {
			unknown = true
			continue
		}
		d, ok := s.Screen(ctx, ref)
		if !ok {
			unknown = true
			continue
		}
		denied = denied || d.Verdict == vouch.Denied
		parts, ds = append(parts, p), append(ds, d)
	}
	if unknown && !denied {
		return vouch.Decision{}, false
	}
	d, err := combine(parts, ds)
	return d, err == nil
}

// combine is the decision of parts, each of which decided ds[i].
func combine(parts []Part, ds []vouch.Decision) (vouch.Decision, error) {
	var denials, reasons []string
	var denied, waivers []vouch.Explanation
	waived, warn := false, false
	mode := vouch.ModeAudit
	for i, p := range parts {
		d := ds[i]
		reason := p.Name + ": " + d.Reason
		switch d.Verdict {
		case vouch.Denied:
			denials = append(denials, reason)
			denied = append(denied, named(p.Name, d.Explanations)...)
		case vouch.Allowed:
			reasons = append(reasons, reason)
			if d.Waived {
				waived = true
				warn = warn || d.Mode == vouch.ModeWarn
				waivers = append(waivers, named(p.Name, d.Explanations)...)
			}
			mode = stricter(mode, d.Mode)
		default:
			return vouch.Decision{}, fmt.Errorf("%s: verdict %q", p.Name, d.Verdict)
		}
	}
	switch {
	case len(denials) > 0:
		return vouch.Decision{Verdict: vouch.Denied, Mode: vouch.ModeEnforce, Reason: strings.Join(denials, "; "), Explanations: denied}, nil
	case waived && warn:
		mode = vouch.ModeWarn
	case waived:
		mode = vouch.ModeAudit
	}
	return vouch.Decision{Verdict: vouch.Allowed, Mode: mode, Waived: waived, Reason: strings.Join(reasons, "; "), Explanations: waivers}, nil
}

// named returns copies of explanations that name the part they come from.
func named(part string, explanations []vouch.Explanation) []vouch.Explanation {
	out := make([]vouch.Explanation, 0, len(explanations))
	for _, e := range explanations {
		if e.Policy == "" {
			e.Policy = part
		}
		out = append(out, e)
	}
	return out
}

// stricter returns the stricter of two modes: enforce (or none), then
// warn, then audit.
func stricter(a, b vouch.Mode) vouch.Mode {
	rank := func(m vouch.Mode) int {
		switch m {
		case vouch.ModeAudit:
			return 0
		case vouch.ModeWarn:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		if b == "" {
			return vouch.ModeEnforce
		}
		return b
	}
	return a
}

// Settled implements vouch.Settler: every part is settled on its own view,
// the pending nodes of which are the copies of root's pending nodes.
func (a allPolicy) Settled(ctx context.Context, ref vouch.Reference, root *vouch.Node, pending func(*vouch.Node) bool) bool {
	if len(a.parts) == 0 || root == nil {
		return false
	}
	for _, p := range a.parts {
		s, ok := p.Policy.(vouch.Settler)
		if !ok {
			return false
		}
		view, orig := p.view(root)
		if !s.Settled(ctx, ref, view, func(n *vouch.Node) bool { return pending(orig[n]) }) {
			return false
		}
	}
	return true
}
